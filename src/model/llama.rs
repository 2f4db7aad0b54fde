//! The causal language model shared by Llama, Mistral, Qwen2 and Qwen3.
//!
//! Touvron et al. 2023 (Llama 2, arXiv 2307.09288); the code follows transformers'
//! `modeling_llama.py` (and the Mistral/Qwen2/Qwen3 variants, which differ only in biases,
//! q/k norms and the sliding window handled in [`super::attention`]). Hidden states follow
//! transformers' `output_hidden_states`: index 0 is the embedding output, index `i` the output of
//! layer `i`, and the last entry is the final layer's output after the final norm.

use super::attention::{build_mask, mask_tensor, AttnInputs};
use super::block::{DecoderLayer, RmsNorm};
use super::config::ModelConfig;
use super::kv_cache::KvCache;
use super::linear::AdapterCtx;
use super::linear::Linear;
use super::rope::cos_sin;
use super::ModelError;
use crate::backend::LmBackend;
use burn::tensor::{DType, Int, Tensor, TensorData};

/// A right-padded batch of token ids with its validity mask.
#[derive(Debug, Clone)]
pub struct Batch {
    /// Rows of equal length (padded on the right).
    pub ids: Vec<Vec<u32>>,
    /// `true` for real tokens.
    pub valid: Vec<Vec<bool>>,
    /// Packed rows: the segment (example) of each token; attention stays within a segment and
    /// positions restart at each segment.
    pub segments: Option<Vec<Vec<u32>>>,
}

impl Batch {
    /// Right-pads rows of different lengths with `pad`.
    pub fn right_padded(rows: &[Vec<u32>], pad: u32) -> Result<Self, ModelError> {
        let t = rows.iter().map(Vec::len).max().unwrap_or(0);
        if rows.is_empty() || t == 0 {
            return Err(ModelError::Input(
                "empty input: at least one non-empty row of ids".into(),
            ));
        }
        let mut ids = Vec::with_capacity(rows.len());
        let mut valid = Vec::with_capacity(rows.len());
        for r in rows {
            let mut row = r.clone();
            let mut v = vec![true; r.len()];
            row.resize(t, pad);
            v.resize(t, false);
            ids.push(row);
            valid.push(v);
        }
        Ok(Batch {
            ids,
            valid,
            segments: None,
        })
    }

    /// Batch size.
    pub fn batch(&self) -> usize {
        self.ids.len()
    }

    /// Sequence length.
    pub fn seq(&self) -> usize {
        self.ids.first().map_or(0, Vec::len)
    }
}

/// A decoder-only causal LM.
pub struct CausalLm<B: LmBackend> {
    /// Configuration.
    pub config: ModelConfig,
    /// Token embeddings `[vocab, hidden]` (frozen).
    pub embed_tokens: Tensor<B, 2>,
    /// Decoder layers.
    pub layers: Vec<DecoderLayer<B>>,
    /// Final norm.
    pub norm: RmsNorm<B>,
    /// Output head (shares the embedding when tied).
    pub lm_head: Linear<B>,
    /// Device of every tensor.
    pub device: B::Device,
    /// Activation dtype (f32 on CPU by default).
    pub compute_dtype: DType,
}

/// Output of a forward pass.
pub struct Forward<B: LmBackend> {
    /// Final hidden states after the final norm, `[B·T, hidden]`.
    pub hidden: Tensor<B, 2>,
    /// All hidden states (transformers convention) when asked for.
    pub all_hidden: Vec<Tensor<B, 2>>,
}

impl<B: LmBackend> CausalLm<B> {
    /// Checks ids against the vocabulary.
    fn check_ids(&self, batch: &Batch) -> Result<(), ModelError> {
        let v = self.config.vocab_size as u32;
        for (r, row) in batch.ids.iter().enumerate() {
            if let Some(bad) = row.iter().find(|&&i| i >= v) {
                return Err(ModelError::Input(format!(
                    "token id {bad} in row {r} is outside the vocabulary (size {v})"
                )));
            }
        }
        Ok(())
    }

    /// Refuses a batch whose attention scores (`[B, heads, T, S]` f32, three copies: scores,
    /// probabilities and their gradient) or logits (`[B, T, vocab]` f32, two copies) would not fit
    /// in memory, before the forward pass allocates them.
    fn check_activation_memory(&self, b: usize, t: usize, s: usize) -> Result<(), ModelError> {
        let c = &self.config;
        let dims = |xs: &[usize]| xs.iter().map(|&x| x as u64).collect::<Vec<u64>>();
        let what = format!("a forward pass over {b} row(s) of {t} tokens");
        let scores = crate::limits::checked_count(&what, &dims(&[b, c.num_heads, t, s, 3]))?;
        let logits = crate::limits::checked_count(&what, &dims(&[b, t, c.vocab_size, 2]))?;
        Ok(crate::limits::check_alloc(
            &what,
            scores.saturating_add(logits),
            4,
        )?)
    }

    /// Embeds ids: `[B·T, hidden]` in the compute dtype.
    pub fn embed(&self, batch: &Batch) -> Tensor<B, 2> {
        let flat: Vec<i64> = batch.ids.iter().flatten().map(|&i| i64::from(i)).collect();
        let n = flat.len();
        let idx = Tensor::<B, 1, Int>::from_data(TensorData::new(flat, [n]), &self.device);
        let e = self.embed_tokens.clone().select(0, idx);
        e.cast(self.compute_dtype)
    }

    /// Runs the decoder. With a cache, the batch holds only the new positions and attends to
    /// everything cached (`batch.valid` then covers only the new positions; cached ones count as
    /// valid). A cache without room for the batch's rows and positions is an error, raised
    /// before any work.
    pub fn forward(
        &self,
        batch: &Batch,
        mut cache: Option<&mut KvCache<B>>,
        collect_hidden: bool,
        ctx: &AdapterCtx<B>,
    ) -> Result<Forward<B>, ModelError> {
        self.check_ids(batch)?;
        let (b, t) = (batch.batch(), batch.seq());
        let offset = match &cache {
            Some(c) => {
                c.check_room(b, t)?;
                c.len()
            }
            None => 0,
        };
        self.check_activation_memory(b, t, offset + t)?;
        let (rows, positions): (usize, Vec<usize>) = match &batch.segments {
            None => (1, (offset..offset + t).collect()),
            Some(segs) => (
                b,
                segs.iter()
                    .flat_map(|s| {
                        let mut pos = Vec::with_capacity(t);
                        for (j, seg) in s.iter().enumerate() {
                            let p = if j > 0 && s[j - 1] == *seg {
                                pos[j - 1] + 1
                            } else {
                                0
                            };
                            pos.push(p);
                        }
                        pos
                    })
                    .collect(),
            ),
        };
        let (cos, sin) = cos_sin(&self.config, &positions, offset + t);
        let d = self.config.head_dim;
        let table = |v: Vec<f32>| {
            let x = Tensor::<B, 4>::from_data(
                TensorData::new(v, [rows, 1, t, d]),
                (&self.device, DType::F32),
            );
            if self.compute_dtype == DType::F32 {
                x
            } else {
                x.cast(self.compute_dtype)
            }
        };
        let key_valid: Vec<Vec<bool>> = batch
            .valid
            .iter()
            .map(|v| {
                std::iter::repeat_n(true, offset)
                    .chain(v.iter().copied())
                    .collect()
            })
            .collect();
        let mask = build_mask(
            &key_valid,
            t,
            offset,
            self.config.sliding_window,
            batch.segments.as_deref(),
        );
        let inp = AttnInputs {
            batch: b,
            seq: t,
            cos: table(cos),
            sin: table(sin),
            mask: mask_tensor(mask, &self.device),
        };
        let mut x = self.embed(batch);
        let mut all = Vec::new();
        for (i, layer) in self.layers.iter().enumerate() {
            if collect_hidden {
                all.push(x.clone());
            }
            let c = cache.as_deref_mut().map(|c| (c, i));
            x = layer.forward(x, &inp, c, ctx)?;
        }
        if let Some(c) = cache {
            c.advance(t)?;
        }
        let hidden = self.norm.forward(x);
        if collect_hidden {
            all.push(hidden.clone());
        }
        Ok(Forward {
            hidden,
            all_hidden: all,
        })
    }

    /// Logits of hidden rows `[N, hidden] → [N, vocab]` (f32).
    pub fn head(&self, hidden: Tensor<B, 2>, ctx: &AdapterCtx<B>) -> Tensor<B, 2> {
        let l = self.lm_head.forward(hidden, ctx);
        l.cast(DType::F32)
    }

    /// Mutable access to every adaptable linear layer with its full module path.
    pub fn linears_mut(&mut self) -> Vec<(String, &mut Linear<B>)> {
        let mut out = Vec::new();
        for (i, layer) in self.layers.iter_mut().enumerate() {
            for (short, lin) in layer.linears_mut() {
                out.push((format!("model.layers.{i}.{short}"), lin));
            }
        }
        out
    }

    /// Every adaptable linear layer with its full module path.
    pub fn linears(&self) -> Vec<(String, &Linear<B>)> {
        let mut out = Vec::new();
        for (i, layer) in self.layers.iter().enumerate() {
            for (short, lin) in layer.linears() {
                out.push((format!("model.layers.{i}.{short}"), lin));
            }
        }
        out
    }
}
