//! Several named adapters on one model: activation, training only the active trainable ones,
//! merge/unmerge, the multi-adapter directory layout, and the errors of each operation.

use crate::common::{fixture, model, probe};
use peftlab::adapter::AdapterOptions;
use peftlab::lab::Model;
use peftlab::model::to_host;
use peftlab::train::StepOptions;
use peftlab::with_lm;

/// Every linear layer's base weight and bias, as host values.
fn base_weights(m: &Model) -> Vec<(String, Vec<f32>, Option<Vec<f32>>)> {
    with_lm!(&m.lm, lm => lm
        .linears()
        .into_iter()
        .map(|(n, l)| {
            let w = to_host(l.dense_weight()).unwrap().1;
            let b = l.bias.clone().map(|b| to_host(b).unwrap().1);
            (n, w, b)
        })
        .collect())
}

fn names(v: &[&str]) -> Vec<String> {
    v.iter().map(|s| s.to_string()).collect()
}

/// tiny-llama with PEFT's LoRA fixture as "a" and its rsLoRA fixture as "b" (both with
/// non-zero B), "a" active.
fn two_loaded() -> Model {
    let mut m = model("tiny-llama");
    m.load_named_adapter(&fixture("adapters/lora"), "a")
        .unwrap();
    m.load_named_adapter(&fixture("adapters/rslora"), "b")
        .unwrap();
    m
}

fn lora(r: usize, seed: u64) -> AdapterOptions {
    AdapterOptions {
        r: Some(r),
        seed,
        init: "gaussian".into(),
        ..Default::default()
    }
}

fn max_diff(a: &[f32], b: &[f32]) -> f64 {
    assert_eq!(a.len(), b.len());
    a.iter()
        .zip(b)
        .map(|(x, y)| f64::from((x - y).abs()))
        .fold(0.0, f64::max)
}

#[test]
fn the_first_adapter_is_active_and_inactive_ones_change_nothing() {
    let (rows, _) = probe("tiny-llama");
    let mut only_a = model("tiny-llama");
    only_a
        .load_named_adapter(&fixture("adapters/lora"), "a")
        .unwrap();
    let want_a = only_a.logits(&rows).unwrap().values_f32();

    let mut m = two_loaded();
    assert_eq!(m.adapters.names(), names(&["a", "b"]));
    assert_eq!(
        m.adapters.active(),
        names(&["a"]),
        "later adapters are added inactive"
    );
    assert!(
        m.logits(&rows).unwrap().values_f32() == want_a,
        "b inactive: bitwise a alone"
    );

    let base = model("tiny-llama").logits(&rows).unwrap().values_f32();
    m.set_active(&[]).unwrap();
    assert!(
        m.logits(&rows).unwrap().values_f32() == base,
        "no active adapter: the base"
    );

    m.set_active(&names(&["a", "b"])).unwrap();
    let ab = m.logits(&rows).unwrap().values_f32();
    m.set_active(&names(&["b", "a"])).unwrap();
    let ba = m.logits(&rows).unwrap().values_f32();
    // The same sum of updates, added in another order: f32 rounding only.
    assert!(max_diff(&ab, &ba) < 1e-5, "{}", max_diff(&ab, &ba));
    assert!(
        max_diff(&ab, &want_a) > 1e-3,
        "b's update shows when both are active"
    );
    let info = m.adapter_info("b").unwrap();
    assert_eq!(info["active"], serde_json::json!(true));
    assert_eq!(info["name"], serde_json::json!("b"));
}

#[test]
fn unmerge_after_merge_gives_back_the_f32_weights_bitwise() {
    let (rows, _) = probe("tiny-llama");
    let mut m = two_loaded();
    m.set_active(&names(&["a", "b"])).unwrap();
    let weights = base_weights(&m);
    let logits = m.logits(&rows).unwrap().values_f32();

    m.merge_adapter().unwrap();
    assert!(base_weights(&m) != weights, "merging changed the weights");
    let merged = m.logits(&rows).unwrap().values_f32();
    assert!(
        max_diff(&merged, &logits) < 1e-4,
        "{}",
        max_diff(&merged, &logits)
    );
    assert_eq!(
        m.adapter_info("a").unwrap()["merged"],
        serde_json::json!(true)
    );
    let labels: Vec<Vec<i64>> = rows
        .iter()
        .map(|r| r.iter().map(|&t| i64::from(t)).collect())
        .collect();
    let e = m
        .train_step(&rows, &labels, &StepOptions::default())
        .unwrap_err();
    assert!(e.to_string().contains("unmerge_adapter"), "{e}");
    assert!(
        m.set_active(&names(&["a"])).is_err(),
        "set_active while merged"
    );
    assert!(m.merge_adapter().is_err(), "merging twice");

    m.unmerge_adapter().unwrap();
    assert!(base_weights(&m) == weights, "bitwise the original weights");
    assert!(
        m.logits(&rows).unwrap().values_f32() == logits,
        "bitwise the same logits"
    );
    assert!(m.unmerge_adapter().is_err(), "nothing left to unmerge");

    // merge_and_unload keeps the merged weights and drops every adapter.
    m.merge_and_unload().unwrap();
    assert!(m.adapters.is_empty());
    assert_eq!(m.all_params(), m.config().num_params());
    let unloaded = m.logits(&rows).unwrap().values_f32();
    assert_eq!(
        unloaded, merged,
        "the same merged weights as merge_adapter's"
    );
}

#[test]
fn training_changes_only_the_active_trainable_adapters() {
    let (rows, _) = probe("tiny-llama");
    let labels: Vec<Vec<i64>> = rows
        .iter()
        .map(|r| r.iter().map(|&t| i64::from(t)).collect())
        .collect();
    let mut m = model("tiny-llama");
    for (name, seed) in [("lang", 1), ("task", 2), ("other", 3)] {
        m.add_named_adapter(name, lora(4, seed)).unwrap();
    }
    m.set_active(&names(&["lang", "task"])).unwrap();
    m.set_trainable("lang", false).unwrap();
    let before: Vec<_> = ["lang", "task", "other"]
        .iter()
        .map(|n| m.adapter_tensors(n).unwrap())
        .collect();
    let o = StepOptions {
        lr: 1e-2,
        ..Default::default()
    };
    let (_, grads) = m.gradients(&rows, &labels).unwrap();
    assert_eq!(
        grads.len(),
        2 * m.adapter_info("task").unwrap()["modules"].as_u64().unwrap() as usize
    );
    assert!(
        grads.keys().all(|k| !k.contains('/')),
        "one trained adapter: plain keys"
    );
    m.train_step(&rows, &labels, &o).unwrap();
    let after: Vec<_> = ["lang", "task", "other"]
        .iter()
        .map(|n| m.adapter_tensors(n).unwrap())
        .collect();
    assert_eq!(
        after[0], before[0],
        "the frozen active adapter is unchanged"
    );
    assert_ne!(after[1], before[1], "the trainable active adapter trained");
    assert_eq!(after[2], before[2], "the inactive adapter is unchanged");
    assert_eq!(
        m.adapter_info("task").unwrap()["steps"],
        serde_json::json!(1)
    );
    assert_eq!(
        m.adapter_info("lang").unwrap()["steps"],
        serde_json::json!(0)
    );

    // Both trainable: both train, and the second's gradient keys name it.
    m.set_trainable("lang", true).unwrap();
    let (_, grads) = m.gradients(&rows, &labels).unwrap();
    let prefixed = grads.keys().filter(|k| k.contains('/')).count();
    assert_eq!(
        prefixed * 2,
        grads.len(),
        "{:?}",
        grads.keys().collect::<Vec<_>>()
    );
    m.train_step(&rows, &labels, &o).unwrap();
    assert_ne!(m.adapter_tensors("lang").unwrap(), before[0]);
    assert_eq!(m.adapter_tensors("other").unwrap(), before[2]);

    // Nothing active and trainable: a clear error.
    m.set_active(&[]).unwrap();
    let e = m.train_step(&rows, &labels, &o).unwrap_err().to_string();
    assert!(e.contains("active and trainable"), "{e}");
}

#[test]
fn a_multi_adapter_directory_round_trips_in_peft_layout() {
    let (rows, _) = probe("tiny-llama");
    let mut m = model("tiny-llama");
    m.load_adapter(&fixture("adapters/lora")).unwrap();
    m.load_named_adapter(&fixture("adapters/dora"), "style")
        .unwrap();
    let dir = tempfile::tempdir().unwrap();
    m.save_adapter(dir.path()).unwrap();
    assert!(
        dir.path().join("adapter_config.json").exists(),
        "default at the top"
    );
    assert!(dir.path().join("style/adapter_model.safetensors").exists());

    let mut back = model("tiny-llama");
    let loaded = back.load_adapter(dir.path()).unwrap();
    assert_eq!(loaded, names(&["default", "style"]));
    assert_eq!(back.adapters.active(), names(&["default"]));
    for n in ["default", "style"] {
        assert_eq!(
            back.adapter_tensors(n).unwrap(),
            m.adapter_tensors(n).unwrap(),
            "{n}"
        );
        assert_eq!(
            back.adapter_info(n).unwrap()["method"],
            m.adapter_info(n).unwrap()["method"]
        );
    }
    m.set_active(&names(&["default", "style"])).unwrap();
    back.set_active(&names(&["default", "style"])).unwrap();
    assert!(back.logits(&rows).unwrap().values_f32() == m.logits(&rows).unwrap().values_f32());
    // One adapter alone goes where PEFT's selected_adapters puts it.
    let one = tempfile::tempdir().unwrap();
    m.save_named_adapter(one.path(), "style").unwrap();
    assert!(one.path().join("style/adapter_config.json").exists());
    assert!(!one.path().join("adapter_config.json").exists());

    // Loading all or nothing: a broken subdirectory leaves the model without any of them.
    std::fs::write(dir.path().join("style/adapter_config.json"), "{").unwrap();
    let mut fresh = model("tiny-llama");
    assert!(fresh.load_adapter(dir.path()).is_err());
    assert!(fresh.adapters.is_empty());
    assert_eq!(fresh.all_params(), fresh.config().num_params());
}

#[test]
fn named_adapter_operations_refuse_bad_requests_clearly() {
    let mut m = model("tiny-llama");
    m.add_named_adapter("a", lora(2, 0)).unwrap();
    let err = |r: Result<(), peftlab::adapter::AdapterError>| r.unwrap_err().to_string();
    assert!(err(m.add_named_adapter("a", lora(2, 0))).contains("exists already"));
    assert!(err(m.add_named_adapter("a/b", lora(2, 0))).contains("'a/b'"));
    assert!(err(m.add_named_adapter("", lora(2, 0))).contains("adapter name"));
    let e = err(m.set_active(&names(&["a", "nope"])));
    assert!(e.contains("'nope'") && e.contains("adapters: a"), "{e}");
    assert!(err(m.set_active(&names(&["a", "a"]))).contains("twice"));
    assert!(err(m.delete_adapter("nope")).contains("'nope'"));
    let e = err(m.add_named_adapter(
        "p",
        AdapterOptions {
            init: "pissa".into(),
            ..lora(2, 0)
        },
    ));
    assert!(e.contains("method: \"pissa\""), "{e}");
    let pissa = AdapterOptions {
        method: "pissa".into(),
        r: Some(2),
        ..Default::default()
    };
    assert!(err(m.add_named_adapter("p", pissa)).contains("PiSSA"));
    let ia3 = AdapterOptions {
        method: "ia3".into(),
        ..Default::default()
    };
    m.add_named_adapter("scale", ia3).unwrap();
    assert!(err(m.set_active(&names(&["a", "scale"]))).contains("IA³"));
    m.set_active(&names(&["scale"])).unwrap();
    m.set_active(&[]).unwrap();
    assert!(err(m.merge_adapter()).contains("no adapter is active"));
    // Deleting restores the model as it was without that adapter.
    let n = m.all_params();
    m.delete_adapter("scale").unwrap();
    assert!(m.all_params() < n);
    assert_eq!(m.adapters.names(), names(&["a"]));
    m.remove_adapter().unwrap();
    assert_eq!(m.all_params(), m.config().num_params());
    assert!(matches!(
        m.remove_adapter(),
        Err(peftlab::adapter::AdapterError::NoAdapter)
    ));
}
