//! Helpers shared by the integration tests.
#![allow(dead_code)]

use peftlab::model::{LoadOptions, Model};
use peftlab::tensor::{load_safetensors, HostTensor};
use std::collections::BTreeMap;
use std::path::PathBuf;

/// A path under tests/fixtures.
pub fn fixture(rel: &str) -> PathBuf {
    PathBuf::from(env!("CARGO_MANIFEST_DIR"))
        .join("tests/fixtures")
        .join(rel)
}

/// Loads a fixture model in f32 on the CPU.
pub fn model(name: &str) -> Model {
    Model::load(&fixture(&format!("models/{name}")), LoadOptions::default()).unwrap()
}

/// Reads a safetensors fixture.
pub fn tensors(rel: &str) -> BTreeMap<String, HostTensor> {
    load_safetensors(&fixture(rel)).unwrap()
}

/// A 2-D integer tensor as rows.
pub fn rows(t: &HostTensor) -> Vec<Vec<i64>> {
    serde_json::from_value(t.to_value()).unwrap()
}

/// The probe batch of a model fixture, with padding removed: (rows, mask).
pub fn probe(name: &str) -> (Vec<Vec<u32>>, Vec<Vec<i64>>) {
    let r = tensors(&format!("models/{name}/reference.safetensors"));
    let ids = rows(&r["input_ids"]);
    let mask = rows(&r["attention_mask"]);
    let unpadded = ids
        .iter()
        .zip(&mask)
        .map(|(r, m)| {
            r.iter()
                .zip(m)
                .filter(|(_, &k)| k == 1)
                .map(|(&i, _)| i as u32)
                .collect()
        })
        .collect();
    (unpadded, mask)
}

/// Max |a-b| over the positions where the mask is 1; `a` and `b` are `[B, T, X]`.
pub fn masked_diff(a: &HostTensor, b: &HostTensor, mask: &[Vec<i64>]) -> f64 {
    assert_eq!(a.shape, b.shape);
    let x = a.shape[2];
    let t = a.shape[1];
    let (va, vb) = (a.values_f32(), b.values_f32());
    let mut m = 0f64;
    for (bi, row) in mask.iter().enumerate() {
        for (ti, &keep) in row.iter().enumerate() {
            if keep == 1 {
                let o = (bi * t + ti) * x;
                for k in 0..x {
                    m = m.max(f64::from((va[o + k] - vb[o + k]).abs()));
                }
            }
        }
    }
    m
}
