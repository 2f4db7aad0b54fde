//! Rotary position embeddings in transformers' `rotate_half` convention.
//!
//! RoFormer (Su et al., 2021, arXiv 2104.09864). The inverse frequencies and the cos/sin tables
//! are computed in f32 exactly as `LlamaRotaryEmbedding` does (`inv_freq = 1 / θ^(2i/d)`,
//! `emb = cat(freqs, freqs)`), with the scalings of `modeling_rope_utils.py`: `linear`,
//! `dynamic` (NTK) and `llama3`.

use super::config::{ModelConfig, RopeScaling};

/// Inverse frequencies for a sequence of length `seq_len` (dynamic scaling depends on it).
pub fn inv_freq(cfg: &ModelConfig, seq_len: usize) -> Vec<f32> {
    let dim = cfg.head_dim;
    let base_for = |base: f64| -> Vec<f32> {
        (0..dim)
            .step_by(2)
            .map(|i| 1.0f32 / (base as f32).powf(i as f32 / dim as f32))
            .collect()
    };
    match &cfg.rope_scaling {
        RopeScaling::None => base_for(cfg.rope_theta),
        RopeScaling::Linear { factor } => base_for(cfg.rope_theta)
            .into_iter()
            .map(|f| f / *factor as f32)
            .collect(),
        RopeScaling::Dynamic { factor } => {
            let max = cfg.max_position_embeddings;
            if seq_len > max {
                let d = dim as f64;
                let base = cfg.rope_theta
                    * ((factor * seq_len as f64 / max as f64) - (factor - 1.0)).powf(d / (d - 2.0));
                base_for(base)
            } else {
                base_for(cfg.rope_theta)
            }
        }
        RopeScaling::Llama3 {
            factor,
            low_freq_factor,
            high_freq_factor,
            original_max_position_embeddings,
        } => {
            let factor = *factor as f32;
            let (low, high) = (*low_freq_factor as f32, *high_freq_factor as f32);
            let old = *original_max_position_embeddings as f32;
            let low_wl = old / low;
            let high_wl = old / high;
            base_for(cfg.rope_theta)
                .into_iter()
                .map(|f| {
                    let wl = 2.0 * std::f32::consts::PI / f;
                    let scaled = if wl > low_wl { f / factor } else { f };
                    let medium = wl >= high_wl && wl <= low_wl;
                    if medium {
                        let smooth = (old / wl - low) / (high - low);
                        (1.0 - smooth) * scaled / factor + smooth * scaled
                    } else {
                        scaled
                    }
                })
                .collect()
        }
    }
}

/// cos and sin tables, row-major `[positions.len(), head_dim]`.
pub fn cos_sin(cfg: &ModelConfig, positions: &[usize], seq_len: usize) -> (Vec<f32>, Vec<f32>) {
    let inv = inv_freq(cfg, seq_len);
    let half = inv.len();
    let dim = cfg.head_dim;
    let mut cos = vec![0f32; positions.len() * dim];
    let mut sin = vec![0f32; positions.len() * dim];
    for (r, &p) in positions.iter().enumerate() {
        for (i, f) in inv.iter().enumerate() {
            let a = p as f32 * f;
            let (s, c) = a.sin_cos();
            cos[r * dim + i] = c;
            cos[r * dim + i + half] = c;
            sin[r * dim + i] = s;
            sin[r * dim + i + half] = s;
        }
    }
    (cos, sin)
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn llama3_keeps_high_freqs_and_divides_low_freqs() {
        let text = r#"{"architectures":["LlamaForCausalLM"],"vocab_size":10,"hidden_size":64,
            "intermediate_size":16,"num_hidden_layers":1,"num_attention_heads":4,
            "rope_theta":500000.0,"rope_scaling":{"rope_type":"llama3","factor":8.0,
            "low_freq_factor":1.0,"high_freq_factor":4.0,"original_max_position_embeddings":32}}"#;
        let cfg = ModelConfig::from_json_str(text).unwrap();
        let scaled = inv_freq(&cfg, 10);
        let mut plain_cfg = cfg.clone();
        plain_cfg.rope_scaling = RopeScaling::None;
        let plain = inv_freq(&plain_cfg, 10);
        // i = 0: wavelength 2π < 8 = high_freq_wavelen → unchanged.
        assert_eq!(scaled[0], plain[0]);
        // Last: wavelength ≫ 32 = low_freq_wavelen → divided by the factor.
        let last = plain.len() - 1;
        assert!((scaled[last] - plain[last] / 8.0).abs() < 1e-12);
    }
}
