//! Choosing the next token: greedy or seeded temperature sampling (with optional top-k/top-p).
//!
//! Greedy picks the first maximum, like `torch.argmax`. Sampling draws from
//! `softmax(logits / T)` with a ChaCha8 generator, so a seed fixes the continuation.

use rand::RngExt;

/// How to pick tokens.
#[derive(Debug, Clone)]
pub struct Sampler {
    /// 0 = greedy.
    pub temperature: f64,
    /// Keep only the k most likely tokens (0 = all).
    pub top_k: usize,
    /// Nucleus sampling mass (1 = all).
    pub top_p: f64,
}

pub use crate::tensor::argmax;

impl Sampler {
    /// Picks a token from one row of logits.
    pub fn pick(&self, logits: &[f32], rng: &mut crate::rng::Rng) -> usize {
        if self.temperature <= 0.0 {
            return argmax(logits);
        }
        let t = self.temperature;
        let max = logits.iter().fold(f32::NEG_INFINITY, |m, &x| m.max(x));
        let mut probs: Vec<(usize, f64)> = logits
            .iter()
            .enumerate()
            .map(|(i, &x)| (i, ((f64::from(x) - f64::from(max)) / t).exp()))
            .collect();
        if self.top_k > 0 || self.top_p < 1.0 {
            probs.sort_by(|a, b| b.1.total_cmp(&a.1).then(a.0.cmp(&b.0)));
            if self.top_k > 0 {
                probs.truncate(self.top_k);
            }
            if self.top_p < 1.0 {
                let total: f64 = probs.iter().map(|p| p.1).sum();
                let mut acc = 0.0;
                let mut keep = probs.len();
                for (i, p) in probs.iter().enumerate() {
                    acc += p.1 / total;
                    if acc >= self.top_p {
                        keep = i + 1;
                        break;
                    }
                }
                probs.truncate(keep);
            }
        }
        let total: f64 = probs.iter().map(|p| p.1).sum();
        let u: f64 = rng.random::<f64>() * total;
        let mut acc = 0.0;
        for &(i, p) in &probs {
            acc += p;
            if u < acc {
                return i;
            }
        }
        probs.last().map_or(0, |p| p.0)
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn greedy_takes_first_max_and_sampling_is_seeded() {
        assert_eq!(argmax(&[1.0, 3.0, 3.0]), 1);
        let s = Sampler {
            temperature: 1.0,
            top_k: 0,
            top_p: 1.0,
        };
        let logits = [0.0f32, 0.5, 1.0, 1.5];
        let draw = |seed| {
            let mut rng = crate::rng::seeded(seed);
            (0..20)
                .map(|_| s.pick(&logits, &mut rng))
                .collect::<Vec<_>>()
        };
        assert_eq!(draw(7), draw(7));
        assert_ne!(draw(7), draw(8));
        let k1 = Sampler {
            temperature: 1.0,
            top_k: 1,
            top_p: 1.0,
        };
        let mut rng = crate::rng::seeded(1);
        assert!((0..10).all(|_| k1.pick(&logits, &mut rng) == 3));
    }
}
