//! Several named adapters on one model: activation, training only the active trainable ones,
//! merge/unmerge, the multi-adapter directory layout, and the errors of each operation.

use crate::common::{base_weights, fixture, model, probe, rows, tensors};
use peftlab::adapter::combine::CombineOptions;
use peftlab::adapter::AdapterOptions;
use peftlab::lab::Model;
use peftlab::train::StepOptions;

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

/// The PEFT 0.21 multi-adapter fixture (tests/fixtures/adapters/multi, made by make_multi.py):
/// tiny-llama with "default", "other" and "same" loaded from PEFT's save directory.
fn peft_multi() -> (Model, Vec<Vec<u32>>) {
    let mut m = model("tiny-llama");
    let loaded = m.load_adapter(&fixture("adapters/multi/saved")).unwrap();
    assert_eq!(loaded, names(&["default", "other", "same"]));
    let r = tensors("adapters/multi/reference.safetensors");
    let ids = rows(&r["input_ids"])
        .into_iter()
        .map(|row| row.into_iter().map(|t| t as u32).collect())
        .collect();
    (m, ids)
}

/// Max |a − b| of two logits tensors.
fn logits_diff(m: &Model, ids: &[Vec<u32>], want: &peftlab::tensor::HostTensor) -> f64 {
    let got = m.logits(ids).unwrap();
    assert_eq!(got.shape, want.shape);
    max_diff(&got.values_f32(), &want.values_f32())
}

#[test]
fn named_adapters_active_together_match_peft() {
    let (mut m, ids) = peft_multi();
    let r = tensors("adapters/multi/reference.safetensors");
    for (active, key) in [
        (vec![], "logits.base"),
        (vec!["default"], "logits.default"),
        (vec!["other"], "logits.other"),
        (vec!["same"], "logits.same"),
        (vec!["default", "other"], "logits.default+other"),
        (vec!["other", "default"], "logits.default+other"),
    ] {
        m.set_active(&names(&active)).unwrap();
        let d = logits_diff(&m, &ids, &r[key]);
        assert!(d <= 1e-4, "{active:?}: {d}");
    }
    // The two updates together are not either one alone.
    assert!(logits_diff(&m, &ids, &r["logits.default"]) > 1e-3);
}

/// A combination: its fixture name, the weighted sources and the options.
type Case = (&'static str, Vec<(&'static str, f64)>, CombineOptions);

#[test]
fn combine_matches_peft_add_weighted_adapter() {
    let (mut m, ids) = peft_multi();
    let cases: [Case; 3] = [
        (
            "linear",
            vec![("default", 1.0), ("same", -0.5)],
            CombineOptions {
                method: "linear".into(),
                ..Default::default()
            },
        ),
        (
            "cat",
            vec![("default", 1.0), ("other", 0.5)],
            CombineOptions {
                method: "cat".into(),
                ..Default::default()
            },
        ),
        (
            "svd",
            vec![("default", 0.7), ("other", -1.3)],
            CombineOptions::default(),
        ),
    ];
    for (kind, weights, opts) in cases {
        let want = tensors(&format!("adapters/multi/combined_{kind}.safetensors"));
        let weights: Vec<(String, f64)> = weights
            .into_iter()
            .map(|(n, w)| (n.to_string(), w))
            .collect();
        let name = format!("c_{kind}");
        m.combine(&weights, opts.combination().unwrap(), &name)
            .unwrap();
        assert_eq!(
            m.adapter_info(&name).unwrap()["active"],
            serde_json::json!(false)
        );
        m.set_active(&names(&[name.as_str()])).unwrap();
        let d = logits_diff(&m, &ids, &want["logits"]);
        assert!(d <= 1e-4, "{kind}: logits differ by {d}");
        let got = m.adapter_tensors(&name).unwrap();
        let keys = |t: &std::collections::BTreeMap<String, _>| -> Vec<String> {
            t.keys().filter(|k| k.contains("lora_")).cloned().collect()
        };
        assert_eq!(
            keys(&got),
            keys(&want),
            "{kind}: the same modules and tensors"
        );
        if kind != "svd" {
            // Linear and cat are sums and concatenations: the same tensors (svd's factors are
            // defined up to a sign per component; the unit tests compare them that way).
            for (k, t) in &got {
                let (a, b) = (t.values_f32(), want[k].values_f32());
                let scale = b.iter().fold(0f32, |s, x| s.max(x.abs())) as f64;
                assert!(max_diff(&a, &b) <= 1e-5 * scale.max(1e-6), "{kind} {k}");
            }
        }
        let cfg = &m.adapter_info(&name).unwrap();
        let spec: serde_json::Value = serde_json::from_str(
            &std::fs::read_to_string(fixture("adapters/multi/combined.json")).unwrap(),
        )
        .unwrap();
        let new = &spec["combinations"][kind];
        assert_eq!(cfg["r"], new["r"], "{kind}: r");
        assert_eq!(
            cfg["alpha"].as_f64(),
            new["lora_alpha"].as_f64(),
            "{kind}: alpha"
        );
    }
    // Saved, it is a plain PEFT LoRA that loads back with the same logits.
    let dir = tempfile::tempdir().unwrap();
    m.save_named_adapter(dir.path(), "c_cat").unwrap();
    let mut back = model("tiny-llama");
    back.load_named_adapter(&dir.path().join("c_cat"), "x")
        .unwrap();
    m.set_active(&names(&["c_cat"])).unwrap();
    let (a, b) = (m.logits(&ids).unwrap(), back.logits(&ids).unwrap());
    assert!(a.values_f32() == b.values_f32());
    // Combining refuses what PEFT refuses, clearly.
    let e = m
        .combine(
            &[("default".into(), 1.0), ("other".into(), 1.0)],
            CombineOptions {
                method: "linear".into(),
                ..Default::default()
            }
            .combination()
            .unwrap(),
            "bad",
        )
        .unwrap_err()
        .to_string();
    assert!(e.contains("same r") || e.contains("rank"), "{e}");
    assert!(
        m.adapters.get("bad").is_err(),
        "nothing attached on an error"
    );
}
