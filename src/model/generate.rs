//! Autoregressive generation with a KV cache.
//!
//! The prompt is run once, then one token per step attends to the cache (transformers'
//! `generate` with `use_cache=True`). The cache is allocated once for the prompt and every new
//! token ([`KvCache`]), so a step's cost does not grow with copies of the cache. Generation
//! stops at `max_new_tokens`, at EOS when asked, or when the decoded continuation contains a
//! stop string (which is cut from the returned text).

use super::kv_cache::KvCache;
use super::linear::AdapterCtx;
use super::llama::{Batch, CausalLm};
use super::sampling::Sampler;
use super::ModelError;
use crate::backend::LmBackend;

/// Generation settings.
#[derive(Debug, Clone)]
pub struct GenSettings {
    /// Most tokens to produce.
    pub max_new_tokens: usize,
    /// Token choice.
    pub sampler: Sampler,
    /// Seed of the sampler.
    pub seed: u64,
    /// Stop at any EOS id.
    pub stop_at_eos: bool,
}

impl GenSettings {
    /// Exactly `max_new_tokens` greedy tokens (argmax, no stop at EOS): benchmarks and checks
    /// against a reference's greedy ids.
    pub fn greedy(max_new_tokens: usize) -> Self {
        GenSettings {
            max_new_tokens,
            sampler: Sampler {
                temperature: 0.0,
                top_k: 0,
                top_p: 1.0,
            },
            seed: 0,
            stop_at_eos: false,
        }
    }
}

/// Generates new token ids after `prompt`; `should_stop` sees the new ids after every step.
pub fn generate_ids<B: LmBackend>(
    lm: &CausalLm<B>,
    prompt: &[u32],
    settings: &GenSettings,
    eos: &[u32],
    ctx: &AdapterCtx<B>,
    mut should_stop: impl FnMut(&[u32]) -> Result<bool, ModelError>,
) -> Result<Vec<u32>, ModelError> {
    if prompt.is_empty() {
        return Err(ModelError::Input(
            "generate: the prompt has no tokens".into(),
        ));
    }
    if settings.max_new_tokens == 0 {
        return Ok(Vec::new());
    }
    let mut rng = crate::rng::derived(settings.seed, "generate");
    // Every position that is ever an input: the prompt and all new tokens but the last.
    let capacity = prompt
        .len()
        .checked_add(settings.max_new_tokens - 1)
        .ok_or_else(|| {
            ModelError::Input(format!(
                "generate: a prompt of {} tokens plus max_new_tokens = {} overflows",
                prompt.len(),
                settings.max_new_tokens
            ))
        })?;
    let c = &lm.config;
    let mut cache = KvCache::new(
        lm.layers.len(),
        [1, c.num_kv_heads, capacity, c.head_dim],
        lm.compute_dtype,
        &lm.device,
    )?;
    let mut out = Vec::new();
    let mut next_input = prompt.to_vec();
    for _ in 0..settings.max_new_tokens {
        crate::interrupt::check()?;
        let batch = Batch {
            valid: vec![vec![true; next_input.len()]],
            ids: vec![next_input],
            segments: None,
        };
        let t = batch.seq();
        let f = lm.forward(&batch, Some(&mut cache), false, ctx)?;
        let last = f.hidden.narrow(0, t - 1, 1);
        let logits: Vec<f32> = lm
            .head(last, ctx)
            .into_data()
            .to_vec()
            .map_err(|e| ModelError::Input(format!("reading logits: {e:?}")))?;
        let tok = settings.sampler.pick(&logits, &mut rng) as u32;
        out.push(tok);
        if settings.stop_at_eos && eos.contains(&tok) {
            break;
        }
        if should_stop(&out)? {
            break;
        }
        next_input = vec![tok];
    }
    Ok(out)
}
