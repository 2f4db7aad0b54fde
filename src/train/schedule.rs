//! Learning-rate schedules exactly as transformers' `get_{cosine,linear,constant}_schedule_with_
//! warmup`: the factor for optimizer step `k` (0-based) multiplies the peak rate, so with warm-up
//! the first step uses lr 0.

use std::f64::consts::PI;

/// The multiplier of the peak learning rate at step `k` of `total`.
pub fn factor(kind: &str, k: usize, warmup: usize, total: usize) -> f64 {
    let (k, w, t) = (k as f64, warmup as f64, total as f64);
    if k < w {
        return k / w.max(1.0);
    }
    match kind {
        "constant" => 1.0,
        "linear" => ((t - k) / (t - w).max(1.0)).max(0.0),
        _ => {
            let progress = (k - w) / (t - w).max(1.0);
            (0.5 * (1.0 + (PI * 0.5 * 2.0 * progress).cos())).max(0.0)
        }
    }
}

/// Warm-up steps from `warmup_steps` or `ceil(warmup_ratio · total)` (HF `get_warmup_steps`).
pub fn warmup_steps(steps: usize, ratio: f64, total: usize) -> usize {
    if steps > 0 {
        steps
    } else {
        (ratio * total as f64).ceil() as usize
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn cosine_with_warmup_matches_hf_over_20_steps() {
        // transformers: lr_lambda(k) = k/w for k < w, else
        // max(0, 0.5 (1 + cos(π · 2 · 0.5 · (k − w)/(T − w)))), with w = 4, T = 20.
        let want = [
            0.0,
            0.25,
            0.5,
            0.75,
            1.0,
            0.990_392_640_201_615_2,
            0.961_939_766_255_643_4,
            0.915_734_806_151_272_6,
            0.853_553_390_593_273_8,
            0.777_785_116_509_801_1,
            0.691_341_716_182_544_9,
            0.597_545_161_008_064_1,
            0.5,
            0.402_454_838_991_935_9,
            0.308_658_283_817_455_2,
            0.222_214_883_490_199,
            0.146_446_609_406_726_24,
            0.084_265_193_848_727_38,
            0.038_060_233_744_356_62,
            0.009_607_359_798_384_785,
        ];
        for (k, w) in want.iter().enumerate() {
            assert!((factor("cosine", k, 4, 20) - w).abs() < 1e-12, "step {k}");
        }
        assert_eq!(factor("linear", 12, 4, 20), 0.5);
        assert_eq!(factor("constant", 2, 4, 20), 0.5);
        assert_eq!(warmup_steps(0, 0.1, 25), 3);
    }
}
