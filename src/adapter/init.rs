//! Seeded random initialisations (ChaCha8): Kaiming-uniform as `torch.nn.init` computes its
//! bounds, and normal draws by the Box–Muller transform.
//!
//! The streams are ours (peftlab never reproduces torch's generator); what matches PEFT is the
//! distribution: LoRA's `kaiming_uniform_(a=√5)` gives `U(±1/√fan_in)`, VeRA's `_kaiming_init`
//! gives `U(±√(6/fan_in))`, PEFT's Gaussian LoRA init `N(0, (1/r)²)`, AdaLoRA `N(0, 0.02²)`.

use crate::rng::Rng;
use rand::RngExt;

/// `n` draws from `U(-bound, bound)`.
pub fn uniform(n: usize, bound: f64, rng: &mut Rng) -> Vec<f32> {
    (0..n)
        .map(|_| ((rng.random::<f64>() * 2.0 - 1.0) * bound) as f32)
        .collect()
}

/// `n` draws from `N(0, std²)`.
pub fn normal(n: usize, std: f64, rng: &mut Rng) -> Vec<f32> {
    let mut out = Vec::with_capacity(n);
    while out.len() < n {
        // Box–Muller: two independent standard normals from two uniforms in (0, 1].
        let u1: f64 = 1.0 - rng.random::<f64>();
        let u2: f64 = rng.random::<f64>();
        let rad = (-2.0 * u1.ln()).sqrt();
        let th = 2.0 * std::f64::consts::PI * u2;
        out.push((rad * th.cos() * std) as f32);
        if out.len() < n {
            out.push((rad * th.sin() * std) as f32);
        }
    }
    out
}

/// LoRA's A: `kaiming_uniform_(a=√5)` on `[r, fan_in]`, i.e. `U(±1/√fan_in)`.
pub fn lora_a(r: usize, fan_in: usize, rng: &mut Rng) -> Vec<f32> {
    uniform(r * fan_in, 1.0 / (fan_in as f64).sqrt(), rng)
}

/// VeRA's shared projections: gain √2 Kaiming-uniform, `U(±√(6/fan_in))`.
pub fn vera_kaiming(rows: usize, fan_in: usize, rng: &mut Rng) -> Vec<f32> {
    uniform(rows * fan_in, (6.0 / fan_in as f64).sqrt(), rng)
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn moments_match_the_distributions() {
        let mut rng = crate::rng::seeded(3);
        let v = normal(200_000, 0.5, &mut rng);
        let mean = v.iter().map(|&x| f64::from(x)).sum::<f64>() / v.len() as f64;
        let var = v
            .iter()
            .map(|&x| (f64::from(x) - mean).powi(2))
            .sum::<f64>()
            / v.len() as f64;
        assert!(mean.abs() < 0.005, "mean {mean}");
        assert!((var.sqrt() - 0.5).abs() < 0.005, "std {}", var.sqrt());
        let u = lora_a(4, 64, &mut rng);
        assert!(u.iter().all(|&x| x.abs() <= 0.125));
        // Variance of U(±b) is b²/3.
        let b = 0.125f64;
        let var_u = u.iter().map(|&x| f64::from(x).powi(2)).sum::<f64>() / u.len() as f64;
        assert!((var_u - b * b / 3.0).abs() < 0.002);
    }
}
