//! Key/value cache for incremental decoding.
//!
//! Keys are stored after RoPE and before the grouped-query repetition, `[B, kv_heads, S, d]`,
//! one entry per layer, and grown by concatenation (as transformers' `DynamicCache`).

use crate::backend::LmBackend;
use burn::tensor::Tensor;

/// Cached keys and values of every layer.
pub struct KvCache<B: LmBackend> {
    layers: Vec<Option<(Tensor<B, 4>, Tensor<B, 4>)>>,
    /// Number of positions already cached.
    pub len: usize,
}

impl<B: LmBackend> KvCache<B> {
    /// An empty cache for `num_layers` layers.
    pub fn new(num_layers: usize) -> Self {
        KvCache {
            layers: (0..num_layers).map(|_| None).collect(),
            len: 0,
        }
    }

    /// Appends new keys/values of one layer and returns the full cached tensors.
    pub fn append(
        &mut self,
        layer: usize,
        k: Tensor<B, 4>,
        v: Tensor<B, 4>,
    ) -> (Tensor<B, 4>, Tensor<B, 4>) {
        let (k, v) = match self.layers[layer].take() {
            Some((ck, cv)) => (Tensor::cat(vec![ck, k], 2), Tensor::cat(vec![cv, v], 2)),
            None => (k, v),
        };
        self.layers[layer] = Some((k.clone(), v.clone()));
        (k, v)
    }
}
