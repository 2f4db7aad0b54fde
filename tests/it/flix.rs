//! FLix (featurized low-rank mixtures): two features, routing by row fields in training,
//! feature-dropout statistics under a seed, an unseen combination at inference, a missing
//! feature, and `export_lora` of a combination reproducing the composed output.

use crate::common;
use common::*;
use peftlab::adapter::AdapterOptions;
use peftlab::train::batch::{drop_features, Example};
use peftlab::train::TrainOptions;
use peftlab::value::Row;
use std::collections::BTreeMap;

fn flix_opts(dropout: f64) -> AdapterOptions {
    let mut features = BTreeMap::new();
    features.insert("lang".to_string(), vec!["de".to_string(), "ur".to_string()]);
    features.insert(
        "task".to_string(),
        vec!["fwd".to_string(), "back".to_string()],
    );
    let mut rank = BTreeMap::new();
    rank.insert("lang".to_string(), 4);
    rank.insert("task".to_string(), 2);
    AdapterOptions {
        method: "flix".into(),
        features: Some(features),
        feature_rank: Some(rank),
        alpha: Some(8.0),
        feature_dropout: dropout,
        seed: 3,
        ..Default::default()
    }
}

fn rows(lang: &str, task: &str, n: usize) -> Vec<Row> {
    let d = peftlab::eval::ui_strings("train", Some(&[lang.to_string()]), None).unwrap();
    d.rows()[..n]
        .iter()
        .map(|r| {
            let mut r = r.clone();
            r.insert("task".into(), task.into());
            r
        })
        .collect()
}

fn b_norm(m: &mut peftlab::lab::Model, key: &str) -> f64 {
    m.adapter_tensors("default")
        .unwrap()
        .iter()
        .filter(|(k, _)| k.contains(key) && k.ends_with("lora_B.weight"))
        .map(|(_, t)| t.values_f64().iter().map(|x| x * x).sum::<f64>())
        .sum::<f64>()
        .sqrt()
}

#[test]
fn training_routes_each_row_to_the_adapters_of_its_features() {
    let mut m = model("tiny-llama");
    m.add_adapter(flix_opts(0.0)).unwrap();
    // Parameters: all-linear, per module r_lang·(in+out)·2 values + r_task·(in+out)·2 values.
    let lora4 = {
        let mut l = model("tiny-llama");
        l.add_adapter(AdapterOptions {
            r: Some(4),
            ..Default::default()
        })
        .unwrap();
        l.trainable_params("default").unwrap()
    };
    assert_eq!(
        m.trainable_params("default").unwrap(),
        2 * lora4 + 2 * lora4 / 2
    );
    // Only (lang=de, task=fwd) rows: the ur and back adapters must stay at their zero B.
    let data = rows("de", "fwd", 16);
    let o = TrainOptions {
        lr: 1e-2,
        epochs: 2,
        batch_size: 8,
        seed: 1,
        ..Default::default()
    };
    m.train(&data, &o, &mut |_| {}, &|| false).unwrap();
    assert!(b_norm(&mut m, "flix.lang.de.") > 0.0);
    assert!(b_norm(&mut m, "flix.task.fwd.") > 0.0);
    assert_eq!(
        b_norm(&mut m, "flix.lang.ur."),
        0.0,
        "ur adapter got updates from de rows"
    );
    assert_eq!(
        b_norm(&mut m, "flix.task.back."),
        0.0,
        "back adapter got updates from fwd rows"
    );
}

#[test]
fn feature_dropout_rate_matches_p_and_is_seeded() {
    let ex = |i: usize| {
        let mut f = BTreeMap::new();
        f.insert(
            "lang".to_string(),
            if i.is_multiple_of(2) { "de" } else { "ur" }.to_string(),
        );
        f.insert("task".to_string(), "fwd".to_string());
        Example {
            ids: vec![1],
            labels: vec![1],
            features: f,
        }
    };
    let mut a: Vec<Example> = (0..10_000).map(ex).collect();
    drop_features(&mut a, 0.3, 7, "s");
    let kept: usize = a.iter().map(|e| e.features.len()).sum();
    let rate = 1.0 - kept as f64 / 20_000.0;
    // Binomial(20000, 0.3): sd of the rate is 0.0032; 5 sd.
    assert!((rate - 0.3).abs() < 0.016, "drop rate {rate}");
    let mut b: Vec<Example> = (0..10_000).map(ex).collect();
    drop_features(&mut b, 0.3, 7, "s");
    assert!(
        a.iter().zip(&b).all(|(x, y)| x.features == y.features),
        "same seed, same drops"
    );
    let mut c: Vec<Example> = (0..10_000).map(ex).collect();
    drop_features(&mut c, 0.3, 8, "s");
    assert!(a.iter().zip(&c).any(|(x, y)| x.features != y.features));
}

#[test]
fn unseen_combination_and_missing_feature_compose_and_export_as_plain_lora() {
    let (probe_rows, mask) = probe("tiny-llama");
    let mut m = model("tiny-llama");
    m.add_adapter(flix_opts(0.2)).unwrap();
    // Seen: (de, fwd), (ur, fwd), (de, back). Unseen: (ur, back).
    let mut data = rows("de", "fwd", 8);
    data.extend(rows("ur", "fwd", 8));
    data.extend(rows("de", "back", 8));
    let o = TrainOptions {
        lr: 1e-2,
        epochs: 2,
        batch_size: 8,
        seed: 2,
        ..Default::default()
    };
    m.train(&data, &o, &mut |_| {}, &|| false).unwrap();
    let base = model("tiny-llama").logits(&probe_rows).unwrap();
    for combo in [
        vec![("lang", "ur"), ("task", "back")],
        vec![("task", "back")],
    ] {
        let sel: BTreeMap<String, String> = combo
            .iter()
            .map(|(k, v)| (k.to_string(), v.to_string()))
            .collect();
        m.set_features(sel.clone()).unwrap();
        let composed = m.logits(&probe_rows).unwrap();
        assert!(
            masked_diff(&composed, &base, &mask) > 1e-4,
            "{combo:?}: no effect"
        );
        let dir = tempfile::tempdir().unwrap();
        m.export_lora(dir.path(), "default").unwrap();
        let mut plain = model("tiny-llama");
        plain.load_adapter(dir.path()).unwrap();
        let d = masked_diff(&plain.logits(&probe_rows).unwrap(), &composed, &mask);
        // Two computations: a sum of expert LoRAs vs one LoRA of the stacked factors. Each
        // logit is a dot product over the hidden size (64) after two layers: allow a rounding
        // per accumulated term at the logits' magnitude, 64 ulps (2e-5 at |logit| ≈ 2.7;
        // observed 1.5e-6).
        let tol = f32_ulps(64.0, max_abs(&composed));
        assert!(
            d <= tol,
            "{combo:?}: exported LoRA differs from the composed FLix by {d} (bound {tol})"
        );
    }
    let e = m
        .set_features([("lang".to_string(), "sw".to_string())].into())
        .unwrap_err()
        .to_string();
    assert!(e.contains("'sw'") && e.contains("de, ur"), "{e}");
}
