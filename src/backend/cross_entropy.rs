//! Fused next-token cross-entropy with its own autodiff backward.
//!
//! The loss is `mean_i(logsumexp(x_i) − x_i[t_i])` over the `N` rows of `logits: [N, V]`. Its
//! gradient is `(softmax(x_i) − onehot(t_i)) / N` times the incoming scalar gradient. Written as
//! ordinary tensor ops under burn-autodiff (`log_softmax`, then `gather`), the backward pass
//! walks the whole graph: a broadcast subtraction, `exp`, the row sum and `log`, and the
//! scatter of `gather`. Each of those steps allocates and visits `N·V` elements again. With a
//! vocabulary of 32k to 128k, that makes the loss the largest part of a LoRA step on CPU.
//!
//! Here the forward pass computes the loss and, when the logits are tracked, the unit gradient
//! `(softmax − onehot) / N` at once: one `exp` over the logits in all. The backward step only
//! scales the saved gradient by the incoming one. The saved state is one `[N, V]` f32 tensor, as
//! big as the `exp` output that the op-by-op graph keeps. This is the approach of fused
//! cross-entropy kernels such as Liger's (Hsu et al. 2024, arXiv:2410.10989, §3.2). The values
//! match `torch.nn.functional.cross_entropy` (the one-step fixture tests check loss, gradients and
//! AdamW parameters within 1e-5).
//!
//! Scoring uses the same machinery without a backward: [`CrossEntropyBackend::target_logprobs`]
//! gives each row's target log-probability and greedy flag, so only `2·N` numbers leave the
//! device instead of the `[N, V]` log-softmax.

use burn::backend::autodiff::checkpoint::base::Checkpointer;
use burn::backend::autodiff::checkpoint::strategy::CheckpointStrategy;
use burn::backend::autodiff::grads::Gradients;
use burn::backend::autodiff::ops::{unary, Backward, Ops, OpsKind};
use burn::backend::Autodiff;
use burn::tensor::backend::Backend;
use burn::tensor::{DType, IndexingUpdateOp, Int, Tensor, TensorPrimitive};

/// A backend with the fused cross-entropy. Plain backends use the default, written with tensor
/// ops; `Autodiff<B, C>` registers the backward step of this module.
pub trait CrossEntropyBackend: Backend {
    /// Mean cross-entropy of `logits: [N, V]` against `targets: [N, 1]` (class indices), as a
    /// one-element tensor. The loss is computed in f32 whatever the logits' dtype.
    fn cross_entropy(logits: Tensor<Self, 2>, targets: Tensor<Self, 2, Int>) -> Tensor<Self, 1> {
        forward(logits, targets)
    }

    /// The loss and the unit gradient `(softmax − onehot) / N` (f32, `[N, V]`), for the backward
    /// step of `Autodiff<Self>`.
    fn cross_entropy_with_grad(
        logits: Tensor<Self, 2>,
        targets: Tensor<Self, 2, Int>,
    ) -> (Tensor<Self, 1>, Tensor<Self, 2>) {
        forward_with_grad(logits, targets)
    }

    /// lm-eval's per-token score, read back to the host: the log-probability of each row's
    /// target under `log_softmax(logits)` and whether the target is the row's argmax.
    fn target_logprobs(
        logits: Tensor<Self, 2>,
        targets: Tensor<Self, 2, Int>,
    ) -> Result<TargetScores, String> {
        target_logprobs_ops(logits, targets)
    }
}

/// Per row: the target's log-probability and whether it is the (first) argmax.
pub type TargetScores = (Vec<f32>, Vec<bool>);

/// [`CrossEntropyBackend::target_logprobs`] with tensor ops: only `2·N` numbers leave the device.
fn target_logprobs_ops<B: Backend>(
    logits: Tensor<B, 2>,
    targets: Tensor<B, 2, Int>,
) -> Result<TargetScores, String> {
    let logits = logits.cast(DType::F32);
    let max = logits.clone().max_dim(1);
    let lse = (logits.clone() - max.clone()).exp().sum_dim(1).log();
    let picked = logits.clone().gather(1, targets.clone());
    let lp = (picked - max) - lse;
    let arg = logits.argmax(1);
    let lp: Vec<f32> = lp.into_data().to_vec().map_err(|e| format!("{e:?}"))?;
    let host = |t: Tensor<B, 2, Int>| -> Result<Vec<i64>, String> {
        t.into_data()
            .convert::<i64>()
            .into_vec::<i64>()
            .map_err(|e| format!("{e:?}"))
    };
    let (arg, tgt) = (host(arg)?, host(targets)?);
    Ok((lp, arg.iter().zip(&tgt).map(|(a, t)| a == t).collect()))
}

/// The loss, `exp(x − max)` and its row sums (all f32).
fn parts<B: Backend>(
    logits: Tensor<B, 2>,
    targets: Tensor<B, 2, Int>,
) -> (Tensor<B, 1>, Tensor<B, 2>, Tensor<B, 2>) {
    let logits = logits.cast(DType::F32);
    let max = logits.clone().max_dim(1);
    let shifted = logits - max;
    let exp = shifted.clone().exp();
    let sum = exp.clone().sum_dim(1);
    let picked = shifted.gather(1, targets);
    ((sum.clone().log() - picked).mean(), exp, sum)
}

/// The loss alone.
fn forward<B: Backend>(logits: Tensor<B, 2>, targets: Tensor<B, 2, Int>) -> Tensor<B, 1> {
    parts(logits, targets).0
}

/// The loss and the unit gradient `(softmax − onehot) / N` (f32, `[N, V]`).
fn forward_with_grad<B: Backend>(
    logits: Tensor<B, 2>,
    targets: Tensor<B, 2, Int>,
) -> (Tensor<B, 1>, Tensor<B, 2>) {
    let [n, _] = logits.dims();
    let (loss, exp, sum) = parts(logits, targets.clone());
    let inv_n = 1.0 / n as f64;
    let probs = (exp / sum).mul_scalar(inv_n);
    let minus = Tensor::<B, 2>::full([n, 1], -inv_n, &probs.device());
    (
        loss,
        probs.scatter(1, targets, minus, IndexingUpdateOp::Add),
    )
}

/// On CPU both passes are one host kernel over the contiguous logits, parallel over rows: row
/// maximum, then `exp` and its sum in one sweep that writes the unit gradient in place.
impl CrossEntropyBackend for burn::backend::Flex {
    fn cross_entropy(logits: Tensor<Self, 2>, targets: Tensor<Self, 2, Int>) -> Tensor<Self, 1> {
        match flex::kernel(&logits, &targets, false) {
            Some((loss, _)) => loss,
            None => forward(logits, targets),
        }
    }

    fn cross_entropy_with_grad(
        logits: Tensor<Self, 2>,
        targets: Tensor<Self, 2, Int>,
    ) -> (Tensor<Self, 1>, Tensor<Self, 2>) {
        match flex::kernel(&logits, &targets, true) {
            Some((loss, Some(grad))) => (loss, grad),
            _ => forward_with_grad(logits, targets),
        }
    }

    fn target_logprobs(
        logits: Tensor<Self, 2>,
        targets: Tensor<Self, 2, Int>,
    ) -> Result<TargetScores, String> {
        match flex::scores(&logits, &targets) {
            Some(s) => Ok(s),
            None => target_logprobs_ops(logits, targets),
        }
    }
}

mod flex {
    use burn::backend::Flex;
    use burn::tensor::{DType, Int, Tensor, TensorData};
    use rayon::prelude::*;

    type Out = (Tensor<Flex, 1>, Option<Tensor<Flex, 2>>);

    /// The contiguous f32 logits and the targets on the host, or `None` (see [`kernel`]).
    fn host_inputs(
        logits: &Tensor<Flex, 2>,
        targets: &Tensor<Flex, 2, Int>,
    ) -> Option<(burn_flex::FlexTensor, Vec<i64>, usize, usize)> {
        if logits.dtype() != DType::F32 {
            return None;
        }
        let [n, v] = logits.dims();
        let prim = logits.clone().into_primitive().tensor().to_contiguous();
        let t = targets
            .clone()
            .into_data()
            .convert::<i64>()
            .into_vec::<i64>()
            .ok()?;
        let ok = n > 0 && v > 0 && t.len() == n && t.iter().all(|&k| k >= 0 && (k as usize) < v);
        let len = prim.as_slice::<f32>().map(<[f32]>::len);
        (ok && len == Some(n * v)).then_some((prim, t, n, v))
    }

    /// Target log-probabilities and greedy flags, one pass for max/argmax and one for the sum.
    pub(super) fn scores(
        logits: &Tensor<Flex, 2>,
        targets: &Tensor<Flex, 2, Int>,
    ) -> Option<super::TargetScores> {
        let (prim, t, _, v) = host_inputs(logits, targets)?;
        let x: &[f32] = prim.as_slice()?;
        let (lp, greedy): (Vec<f32>, Vec<bool>) = x
            .par_chunks(v)
            .zip(t.par_iter())
            .map(|(row, &k)| {
                let best = crate::tensor::argmax(row);
                let max = row[best];
                let sum: f32 = row.iter().map(|&xi| (xi - max).exp()).sum();
                ((row[k as usize] - max) - sum.ln(), best == k as usize)
            })
            .unzip();
        Some((lp, greedy))
    }

    /// `None` when the fast path does not apply (not f32, not contiguous, a target out of
    /// range): the caller then takes the tensor-op path, which reports such inputs itself.
    pub(super) fn kernel(
        logits: &Tensor<Flex, 2>,
        targets: &Tensor<Flex, 2, Int>,
        with_grad: bool,
    ) -> Option<Out> {
        let device = logits.device();
        let (prim, t, n, v) = host_inputs(logits, targets)?;
        let x: &[f32] = prim.as_slice()?;
        let inv_n = 1.0 / n as f32;
        let row_loss = |row: &[f32], target: usize, out: Option<&mut [f32]>| -> f64 {
            let max = row.iter().copied().fold(f32::NEG_INFINITY, f32::max);
            let sum = match out {
                Some(out) => {
                    let mut sum = 0.0f32;
                    for (o, &xi) in out.iter_mut().zip(row) {
                        let e = (xi - max).exp();
                        *o = e;
                        sum += e;
                    }
                    let scale = inv_n / sum;
                    for o in out.iter_mut() {
                        *o *= scale;
                    }
                    out[target] -= inv_n;
                    sum
                }
                None => row.iter().map(|&xi| (xi - max).exp()).sum::<f32>(),
            };
            f64::from(sum.ln() - (row[target] - max))
        };
        let (loss_sum, grad) = if with_grad {
            let mut g = vec![0.0f32; n * v];
            let s: f64 = g
                .par_chunks_mut(v)
                .zip(x.par_chunks(v))
                .zip(t.par_iter())
                .map(|((out, row), &k)| row_loss(row, k as usize, Some(out)))
                .sum();
            (s, Some(g))
        } else {
            let s: f64 = x
                .par_chunks(v)
                .zip(t.par_iter())
                .map(|(row, &k)| row_loss(row, k as usize, None))
                .sum();
            (s, None)
        };
        let loss = Tensor::<Flex, 1>::from_data(
            TensorData::new(vec![(loss_sum / n as f64) as f32], [1]),
            &device,
        );
        let grad = grad.map(|g| Tensor::<Flex, 2>::from_data(TensorData::new(g, [n, v]), &device));
        Some((loss, grad))
    }
}

crate::backend::impl_defaults_for_optional_backends!(
    crate::backend::cross_entropy::CrossEntropyBackend
);

/// Backward step: `grad_logits = unit_grad · grad_loss`, cast to the logits' dtype.
#[derive(Debug)]
struct CrossEntropyBackward;

impl<B: Backend> Backward<B, 1> for CrossEntropyBackward {
    /// The unit gradient (f32) and the dtype of the logits.
    type State = (B::FloatTensorPrimitive, DType);

    fn backward(self, ops: Ops<Self::State, 1>, grads: &mut Gradients, _: &mut Checkpointer) {
        let (unit, dtype) = ops.state;
        unary::<B, _>(ops.parents, ops.node, grads, |grad| {
            let grad = Tensor::<B, 1>::from_primitive(TensorPrimitive::Float(grad));
            let unit = Tensor::<B, 2>::from_primitive(TensorPrimitive::Float(unit));
            let g = unit * grad.cast(DType::F32).reshape([1, 1]);
            g.cast(dtype).into_primitive().tensor()
        });
    }
}

impl<B: CrossEntropyBackend, C: CheckpointStrategy> CrossEntropyBackend for Autodiff<B, C> {
    fn cross_entropy(logits: Tensor<Self, 2>, targets: Tensor<Self, 2, Int>) -> Tensor<Self, 1> {
        let dtype = logits.dtype();
        let logits = logits.into_primitive().tensor();
        let node = logits.node.clone();
        let inner = Tensor::<B, 2>::from_primitive(TensorPrimitive::Float(logits.primitive));
        let targets = Tensor::<B, 2, Int>::from_primitive(targets.into_primitive());
        let out = match CrossEntropyBackward
            .prepare::<C>([node])
            .compute_bound()
            .stateful()
        {
            OpsKind::Tracked(prep) => {
                let (loss, unit) = B::cross_entropy_with_grad(inner, targets);
                prep.finish(
                    (unit.into_primitive().tensor(), dtype),
                    loss.into_primitive().tensor(),
                )
            }
            OpsKind::UnTracked(prep) => {
                prep.finish(B::cross_entropy(inner, targets).into_primitive().tensor())
            }
        };
        Tensor::from_primitive(TensorPrimitive::Float(out))
    }
}

#[cfg(test)]
mod tests {
    use super::CrossEntropyBackend;
    use burn::backend::{Autodiff, Flex};
    use burn::tensor::{Int, Tensor, TensorData};

    type B = Autodiff<Flex>;

    // Tolerances for comparing two f32 evaluations of the same softmax row (issue 17: a bound
    // below f32 resolution fails on another CPU). A row sum of `v` positive exponentials has a
    // relative rounding error of at most (v − 1)·u, u = ε/2 (Higham, "Accuracy and Stability of
    // Numerical Algorithms", §4.2), whatever the order: sequential in the host kernel, in SIMD
    // lanes whose width depends on the CPU in the tensor-op path. `exp`, `ln`, the division and
    // the subtractions add a few roundings more (each `exp` within a few ulps). Two evaluations
    // may therefore differ by twice that: (v + 8)·ε relative.

    /// Bound on the difference of two evaluations of a softmax-derived value (probability or
    /// gradient) whose magnitude is at most `scale`.
    fn prob_tol(v: usize, scale: f32) -> f32 {
        f32::EPSILON * (v as f32 + 8.0) * scale
    }

    /// Bound on the difference of two evaluations of a log-sum-exp-derived value `x` (a loss or a
    /// log-probability): the sum's relative error becomes an absolute error of `ln`, and the
    /// remaining roundings (ln, adding the maximum, subtracting the target, the mean) are
    /// relative to `|x|`.
    fn lse_tol(v: usize, x: f32) -> f32 {
        f32::EPSILON * (v as f32 + 8.0 + 4.0 * x.abs())
    }

    /// Loss and gradient agree with the op-by-op formula `−mean(log_softmax(x)[t])`.
    #[test]
    fn fused_loss_and_gradient_equal_the_op_by_op_graph() {
        let d = Default::default();
        let vals: Vec<f32> = (0..3 * 5)
            .map(|i| ((i * 37 % 11) as f32 - 5.0) * 0.7)
            .collect();
        let t = Tensor::<B, 2, Int>::from_data(TensorData::new(vec![4i64, 0, 2], [3, 1]), &d);
        let x1 =
            Tensor::<B, 2>::from_data(TensorData::new(vals.clone(), [3, 5]), &d).require_grad();
        let fused = B::cross_entropy(x1.clone(), t.clone());
        let g1 = x1
            .grad(&fused.backward())
            .unwrap()
            .into_data()
            .to_vec::<f32>()
            .unwrap();

        let x2 =
            Tensor::<B, 2>::from_data(TensorData::new(vals.clone(), [3, 5]), &d).require_grad();
        // The op-by-op graph the loss replaced: log_softmax (detached row max), then gather.
        let max = x2.clone().detach().max_dim(1);
        let shifted = x2.clone() - max;
        let lp = shifted.clone() - shifted.exp().sum_dim(1).log();
        let plain = lp.gather(1, t).neg().mean();
        let g2 = x2
            .grad(&plain.backward())
            .unwrap()
            .into_data()
            .to_vec::<f32>()
            .unwrap();

        let (a, b) = (fused.into_scalar(), plain.into_scalar());
        assert!((a - b).abs() <= lse_tol(5, b), "loss {a} vs {b}");
        // Hand check of row 0's loss term: logsumexp(x0) − x0[4].
        let row0 = &vals[0..5];
        let m = row0.iter().cloned().fold(f32::MIN, f32::max);
        let lse = m + row0.iter().map(|v| (v - m).exp()).sum::<f32>().ln();
        let row1 = &vals[5..10];
        let m1 = row1.iter().cloned().fold(f32::MIN, f32::max);
        let lse1 = m1 + row1.iter().map(|v| (v - m1).exp()).sum::<f32>().ln();
        let row2 = &vals[10..15];
        let m2 = row2.iter().cloned().fold(f32::MIN, f32::max);
        let lse2 = m2 + row2.iter().map(|v| (v - m2).exp()).sum::<f32>().ln();
        let want = ((lse - row0[4]) + (lse1 - row1[0]) + (lse2 - row2[2])) / 3.0;
        assert!((a - want).abs() <= 1e-5, "loss {a} vs hand {want}");
        // Gradients are (softmax − onehot)/3, so at most 1/3 in magnitude.
        for (i, (p, q)) in g1.iter().zip(&g2).enumerate() {
            assert!(
                (p - q).abs() <= prob_tol(5, 1.0 / 3.0),
                "grad[{i}] {p} vs {q}"
            );
        }
        // Each row of the gradient sums to zero (softmax − onehot): the probabilities sum to 1
        // within prob_tol(5, 1), and adding the five entries rounds up to 4 more times.
        for r in 0..3 {
            let s: f32 = g1[r * 5..r * 5 + 5].iter().sum();
            assert!(s.abs() <= prob_tol(5 + 4, 1.0 / 3.0), "row {r} sums to {s}");
        }
    }

    /// Without tracking, the op returns the same loss and records nothing.
    #[test]
    fn untracked_logits_give_the_same_loss() {
        let d = Default::default();
        let x =
            Tensor::<B, 2>::from_data(TensorData::new(vec![0.5f32, -1.0, 2.0, 0.0], [2, 2]), &d);
        let t = Tensor::<B, 2, Int>::from_data(TensorData::new(vec![1i64, 0], [2, 1]), &d);
        let l = B::cross_entropy(x, t).into_scalar();
        // Row 0: lse(0.5, −1) − (−1); row 1: lse(2, 0) − 2.
        let r0 = (0.5f32.exp() + (-1.0f32).exp()).ln() + 1.0;
        let r1 = (2.0f32.exp() + 1.0).ln() - 2.0;
        let want = (r0 + r1) / 2.0;
        assert!((l - want).abs() <= lse_tol(2, want), "{l} vs {want}");
    }

    /// The CPU kernel and the tensor-op path (used by the GPU backends) agree.
    #[test]
    fn host_kernel_equals_the_tensor_op_path() {
        let d = Default::default();
        let (n, v) = (4, 300);
        let vals: Vec<f32> = (0..n * v)
            .map(|i| ((i * 7919 % 1000) as f32 / 1000.0 - 0.5) * 12.0)
            .collect();
        let x = Tensor::<Flex, 2>::from_data(TensorData::new(vals, [n, v]), &d);
        let t = Tensor::<Flex, 2, Int>::from_data(
            TensorData::new(vec![0i64, 299, 17, 150], [n, 1]),
            &d,
        );
        let (l1, g1) = match super::flex::kernel(&x, &t, true) {
            Some((l, Some(g))) => (l, g),
            _ => panic!("the host kernel must take f32 contiguous logits"),
        };
        let (l2, g2) = super::forward_with_grad(x.clone(), t.clone());
        let l3 = Flex::cross_entropy(x, t);
        let (l1, l2, l3) = (l1.into_scalar(), l2.into_scalar(), l3.into_scalar());
        // l1 and l3 come from the same kernel (with and without the gradient), but the f64 sum
        // of the row losses runs in rayon's order: allow one rounding of the f32 result.
        assert!(
            (l1 - l2).abs() <= lse_tol(v, l2) && (l1 - l3).abs() <= f32::EPSILON * l1.abs(),
            "{l1} {l2} {l3}"
        );
        // The gradient is (softmax − onehot)/n: at most 1/n in magnitude. On an AVX-512 Xeon the
        // two paths differ by 1.49e-8 (half an ulp of 0.25); the bound here is 9.2e-6, still far
        // below any real error (a wrong row or a missing 1/n is off by ~0.1).
        let d = g1.sub(g2).abs().max().into_scalar();
        let tol = prob_tol(v, 1.0 / n as f32);
        assert!(d <= tol, "gradients differ by {d} (bound {tol})");
    }

    /// Scoring: the host kernel, the tensor-op path and a hand computation agree, and ties of
    /// the maximum go to the first index (as `torch.argmax`).
    #[test]
    fn target_logprobs_kernel_equals_the_tensor_op_path() {
        let d = Default::default();
        let vals = vec![
            1.0f32, 3.0, 3.0, -2.0, 0.5, 0.25, 0.0, 0.5, 0.0, 0.0, 7.0, 0.0,
        ];
        let x = Tensor::<Flex, 2>::from_data(TensorData::new(vals, [3, 4]), &d);
        let t = Tensor::<Flex, 2, Int>::from_data(TensorData::new(vec![2i64, 1, 2], [3, 1]), &d);
        let (lp1, g1) = super::flex::scores(&x, &t).expect("f32 contiguous logits");
        let (lp2, g2) = super::target_logprobs_ops(x, t).unwrap();
        let lse0 = (1.0f32.exp() + 2.0 * 3.0f32.exp() + (-2.0f32).exp()).ln();
        let lse1 = (0.5f32.exp() + 0.25f32.exp() + 1.0 + 0.5f32.exp()).ln();
        let lse2 = (3.0 + 7.0f32.exp()).ln();
        let want = [3.0 - lse0, 0.25 - lse1, 7.0 - lse2];
        for i in 0..3 {
            assert!(
                (lp1[i] - want[i]).abs() <= lse_tol(4, want[i]),
                "{} vs {}",
                lp1[i],
                want[i]
            );
            assert!(
                (lp1[i] - lp2[i]).abs() <= lse_tol(4, lp2[i]),
                "{} vs {}",
                lp1[i],
                lp2[i]
            );
        }
        // Row 0: target 2 ties with index 1, the first maximum: not greedy. Row 1: 0.25 < 0.5.
        // Row 2: the target is the maximum.
        assert_eq!(g1, vec![false, false, true]);
        assert_eq!(g2, vec![false, false, true]);
    }
}
