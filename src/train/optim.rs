//! `torch.optim.AdamW` (single-tensor path) and `torch.nn.utils.clip_grad_norm_`.
//!
//! Per parameter, at step `t` (1-based): `p ← p·(1 − lr·wd)`; `m ← m + (1 − β₁)(g − m)`;
//! `v ← β₂ v + (1 − β₂) g²`; `p ← p − (lr / (1 − β₁ᵗ)) · m / (√v / √(1 − β₂ᵗ) + ε)` — decoupled
//! weight decay on every adapter tensor, ε outside the square root. Clipping uses one norm over
//! all gradients, `g ← g · min(1, max_norm / (‖g‖ + 1e-6))`.

use super::StepOptions;
use crate::adapter::Param;
use crate::quant::QuantBackend;
use burn::tensor::Tensor;

/// The global L2 norm of `grads` (f64, computed from per-tensor sums of squares).
pub fn global_norm<B: QuantBackend>(grads: &[Tensor<B, 2>]) -> f64 {
    grads
        .iter()
        .map(|g| {
            let s: f32 = g.clone().square().sum().into_scalar().elem();
            f64::from(s)
        })
        .sum::<f64>()
        .sqrt()
}

/// Clips in place to `max_norm` and returns the norm before clipping.
pub fn clip_global<B: QuantBackend>(grads: &mut [Tensor<B, 2>], max_norm: f64) -> f64 {
    let total = global_norm(grads);
    let coef = (max_norm / (total + 1e-6)).min(1.0);
    if coef < 1.0 {
        for g in grads.iter_mut() {
            *g = g.clone().mul_scalar(coef);
        }
    }
    total
}

/// One AdamW update of `p` with gradient `g` at step `t` (1-based) and learning rate `lr`.
pub fn adamw<B: QuantBackend>(
    p: &mut Param<B>,
    g: Tensor<B, 2>,
    t: usize,
    o: &StepOptions,
    lr: f64,
) {
    let [b1, b2] = o.betas;
    let m = p.exp_avg.take().unwrap_or_else(|| g.zeros_like());
    let v = p.exp_avg_sq.take().unwrap_or_else(|| g.zeros_like());
    let value = p
        .value
        .clone()
        .detach()
        .mul_scalar(1.0 - lr * o.weight_decay);
    let m = m.clone() + (g.clone() - m).mul_scalar(1.0 - b1);
    let v = v.mul_scalar(b2) + g.clone().square().mul_scalar(1.0 - b2);
    let bc1 = 1.0 - b1.powi(t as i32);
    let bc2 = 1.0 - b2.powi(t as i32);
    let step_size = lr / bc1;
    let denom = v.clone().sqrt().div_scalar(bc2.sqrt()).add_scalar(o.eps);
    p.value = (value - (m.clone() / denom).mul_scalar(step_size)).detach();
    p.exp_avg = Some(m);
    p.exp_avg_sq = Some(v);
}

use burn::tensor::ElementConversion;

#[cfg(test)]
mod tests {
    use super::*;
    use burn::tensor::TensorData;
    type B = burn::backend::Flex;

    #[test]
    fn adamw_first_two_steps_match_hand_computation() {
        let dev = Default::default();
        let mut p = Param::<B>::new("w", vec![1.0, -2.0], [1, 2], vec![2], &dev);
        let o = StepOptions {
            lr: 0.1,
            betas: [0.9, 0.999],
            eps: 1e-8,
            weight_decay: 0.01,
            max_grad_norm: None,
        };
        let g = Tensor::<B, 2>::from_data(TensorData::new(vec![0.5f32, -0.25], [1, 2]), &dev);
        adamw(&mut p, g.clone(), 1, &o, 0.1);
        // Step 1: m̂ = g, v̂ = g², update = lr·sign(g) (up to ε): p = p(1 − 0.001) − 0.1·sign(g).
        let v: Vec<f32> = p.value.clone().into_data().to_vec().unwrap();
        assert!((v[0] - (1.0 * 0.999 - 0.1)).abs() < 1e-6, "{v:?}");
        assert!((v[1] - (-2.0 * 0.999 + 0.1)).abs() < 1e-6, "{v:?}");
        adamw(&mut p, g, 2, &o, 0.1);
        // Same gradient again: m̂ = g, v̂ = g² → the same step size.
        let v2: Vec<f32> = p.value.into_data().to_vec().unwrap();
        assert!((v2[0] - (v[0] * 0.999 - 0.1)).abs() < 1e-6);
    }

    #[test]
    fn clipping_uses_one_global_norm() {
        let dev = Default::default();
        let mut g = vec![
            Tensor::<B, 2>::from_data(TensorData::new(vec![3.0f32], [1, 1]), &dev),
            Tensor::<B, 2>::from_data(TensorData::new(vec![4.0f32], [1, 1]), &dev),
        ];
        let n = clip_global(&mut g, 1.0);
        assert!((n - 5.0).abs() < 1e-9);
        let a: f32 = g[0].clone().into_scalar();
        assert!((a - 0.6).abs() < 1e-6);
    }
}
