use super::*;
use burn::backend::{Autodiff, Flex};
use burn::tensor::TensorData;

type A = Autodiff<Flex>;

fn vals(n: usize, seed: usize) -> Vec<f32> {
    (0..n)
        .map(|i| (((i * 7919 + seed * 104_729) % 1000) as f32 / 1000.0 - 0.5) * 3.0)
        .collect()
}

fn t4<B: Backend>(v: Vec<f32>, shape: [usize; 4]) -> Tensor<B, 4> {
    Tensor::from_data(TensorData::new(v, shape), &Default::default())
}

fn max_diff<B: Backend>(a: Tensor<B, 4>, b: Tensor<B, 4>) -> f32 {
    assert_eq!(a.dims(), b.dims());
    a.sub(b)
        .abs()
        .max()
        .into_scalar()
        .to_string()
        .parse()
        .unwrap()
}

// Tolerances (issue 17): two f32 evaluations are held to a bound relative to f32 resolution,
// never to a fixed number below it. An elementwise result `a·c ± b·s` is two products and a sum,
// each correctly rounded: within 2 ulps of `|a·c| + |b·s|`, so two evaluations differ by at most
// `4·ε·(|a·c| + |b·s|)`. A softmax over `s` keys sums `s` positive exponentials (relative error
// ≤ (s − 1)·u, u = ε/2, Higham §4.2, in an order that depends on the CPU's SIMD width) plus a
// few roundings for `exp`, the scale and the division: two evaluations differ by at most
// `(s + 8)·ε` times the magnitude. Bit-for-bit comparisons are kept only where both sides do the
// same correctly rounded IEEE operations in the same order.

/// Bound for two evaluations of a sum of `terms` products whose absolute values add up to at most
/// `magnitude`.
fn tol(terms: usize, magnitude: f32) -> f32 {
    f32::EPSILON * (terms as f32 + 8.0) * magnitude
}

/// cos/sin tables with duplicated halves, as `rope::cos_sin` makes them.
fn tables(rows: usize, t: usize, d: usize) -> (Vec<f32>, Vec<f32>) {
    let (mut c, mut s) = (vec![0f32; rows * t * d], vec![0f32; rows * t * d]);
    for r in 0..rows {
        for p in 0..t {
            for i in 0..d / 2 {
                let a = (p + 3 * r) as f32 * 0.3f32.powi(i as i32);
                for j in [i, i + d / 2] {
                    c[(r * t + p) * d + j] = a.cos();
                    s[(r * t + p) * d + j] = a.sin();
                }
            }
        }
    }
    (c, s)
}

/// A hand check: RoPE of one 4-dim vector at angle `a` rotates the pairs (x₀, x₂) and (x₁, x₃).
#[test]
fn rope_rotates_pairs_of_the_two_halves() {
    let a = 0.7f32;
    let x = t4::<Flex>(vec![1.0, 2.0, 3.0, 4.0], [1, 1, 1, 4]);
    let cos = t4::<Flex>(vec![a.cos(); 4], [1, 1, 1, 4]);
    let sin = t4::<Flex>(vec![a.sin(); 4], [1, 1, 1, 4]);
    let y = Flex::rope(x, &cos, &sin)
        .into_data()
        .to_vec::<f32>()
        .unwrap();
    let (c, s) = (a.cos(), a.sin());
    let want = [
        c - 3.0 * s,
        2.0 * c - 4.0 * s,
        3.0 * c + s,
        4.0 * c + 2.0 * s,
    ];
    // Each output is x_i·c ± x_j·s with |x| ≤ 4: at most 4·(|c| + |s|) in magnitude.
    for (g, w) in y.iter().zip(want) {
        assert!(
            (g - w).abs() <= tol(2, 4.0 * (c.abs() + s.abs())),
            "{y:?} vs {want:?}"
        );
    }
}

/// The host kernel and the tensor ops agree bit for bit, forward and adjoint, with one table
/// for the batch and with one table per row (packed sequences). Exact equality holds on every
/// CPU: both sides compute `x·cos + rotate_half(x)·sin` as two separately rounded products and a
/// rounded sum (no fused multiply-add, no reassociation), and IEEE 754 rounds each the same way.
#[test]
fn rope_kernel_equals_the_tensor_ops() {
    let (b, t, h, d) = (2, 5, 3, 8);
    for rows in [1, b] {
        let (c, s) = tables(rows, t, d);
        let (cos, sin) = (
            t4::<Flex>(c, [rows, 1, t, d]),
            t4::<Flex>(s, [rows, 1, t, d]),
        );
        let x = t4::<Flex>(vals(b * t * h * d, 1), [b, t, h, d]);
        let k = flex::rope(&x, &cos, &sin, false).expect("f32 input");
        let o = rope_ops(x, &cos, &sin);
        assert_eq!(max_diff(k, o), 0.0);
        let g = t4::<Flex>(vals(b * t * h * d, 2), [b, h, t, d]);
        let k = flex::rope(&g, &cos, &sin, true).expect("f32 input");
        let o = rope_backward_ops(g, &cos, &sin);
        assert_eq!(max_diff(k, o), 0.0);
    }
}

/// The fused op's gradient equals burn-autodiff's gradient of the op-by-op expression.
#[test]
fn rope_gradient_equals_the_op_by_op_graph() {
    let (b, t, h, d) = (2, 4, 2, 6);
    let (c, s) = tables(1, t, d);
    let (cos, sin) = (t4::<A>(c, [1, 1, t, d]), t4::<A>(s, [1, 1, t, d]));
    let w = t4::<A>(vals(b * h * t * d, 5), [b, h, t, d]);
    let x1 = t4::<A>(vals(b * t * h * d, 4), [b, t, h, d]).require_grad();
    let y1 = A::rope(x1.clone(), &cos, &sin);
    let g1 = x1.grad(&(y1 * w.clone()).sum().backward()).unwrap();
    let x2 = t4::<A>(vals(b * t * h * d, 4), [b, t, h, d]).require_grad();
    let y2 = rope_ops(x2.clone(), &cos, &sin);
    let g2 = x2.grad(&(y2 * w).sum().backward()).unwrap();
    // The adjoint is w·cos ± w'·sin with |w| ≤ 1.5 and |cos| + |sin| ≤ √2.
    assert!(max_diff(g1, g2) <= tol(2, 1.5 * 2f32.sqrt()));
}

/// Masked softmax: the host kernel, the tensor ops and a hand computation agree; masked keys get
/// probability 0, and a per-row mask is used per row.
#[test]
fn masked_softmax_kernel_equals_the_tensor_ops_and_a_hand_check() {
    let (b, h, t, s) = (2, 3, 4, 4);
    let x = t4::<Flex>(vals(b * h * t * s, 3), [b, h, t, s]);
    let mut m = vec![0f32; b * t * s];
    for bi in 0..b {
        for i in 0..t {
            for j in 0..s {
                // Causal, and row 1 has its last key padded.
                if j > i || (bi == 1 && j == s - 1) {
                    m[(bi * t + i) * s + j] = super::MASKED;
                }
            }
        }
    }
    let mask = t4::<Flex>(m, [b, 1, t, s]);
    let scale = 0.5f32;
    let k = flex::masked_softmax(&x, &mask, scale).expect("f32 input");
    let o = masked_softmax_ops(x.clone(), &mask, scale);
    // Probabilities are at most 1.
    assert!(max_diff(k.clone(), o) <= tol(s, 1.0));
    let p = k.into_data().to_vec::<f32>().unwrap();
    let xv = x.into_data().to_vec::<f32>().unwrap();
    // Batch 1, head 2, query 3: keys 0..3 visible (key 3 is padding).
    let row = ((h + 2) * t + 3) * s;
    let e: Vec<f32> = (0..3).map(|j| (xv[row + j] * scale).exp()).collect();
    let z: f32 = e.iter().sum();
    for j in 0..3 {
        assert!((p[row + j] - e[j] / z).abs() <= tol(3, 1.0));
    }
    assert_eq!(p[row + 3], 0.0);
    // Batch 0, query 0 sees only key 0: exp(0) / exp(0) is exactly 1 and the masked keys
    // underflow to exactly 0, so this is exact.
    assert!(p[0] == 1.0 && p[1] == 0.0, "{:?}", &p[..2]);
}

/// The fused softmax's gradient equals burn-autodiff's gradient of the op-by-op expression, and
/// the backward kernel equals the backward tensor ops.
#[test]
fn masked_softmax_gradient_equals_the_op_by_op_graph() {
    let (b, h, t, s) = (2, 2, 3, 5);
    let mask = t4::<A>(
        (0..b * t * s)
            .map(|i| if i % 7 == 3 { -1.0e9 } else { 0.0 })
            .collect(),
        [b, 1, t, s],
    );
    let w = t4::<A>(vals(b * h * t * s, 8), [b, h, t, s]);
    let x1 = t4::<A>(vals(b * h * t * s, 9), [b, h, t, s]).require_grad();
    let p1 = A::masked_softmax(x1.clone(), &mask, 0.3);
    let g1 = x1.grad(&(p1 * w.clone()).sum().backward()).unwrap();
    let x2 = t4::<A>(vals(b * h * t * s, 9), [b, h, t, s]).require_grad();
    let p2 = softmax(x2.clone().mul_scalar(0.3) + mask, 3);
    let g2 = x2.grad(&(p2 * w).sum().backward()).unwrap();
    // The gradient is 0.3·p ⊙ (w − Σ p w) with p ≤ 1 and |w| ≤ 1.5: at most 0.3·(1.5 + 1.5).
    assert!(max_diff(g1, g2) <= tol(s, 0.3 * 3.0));

    let p = t4::<Flex>(vals(b * h * t * s, 10), [b, h, t, s]);
    let g = t4::<Flex>(vals(b * h * t * s, 11), [b, h, t, s]);
    let k = flex::masked_softmax_backward(&p, &g, 0.3).expect("f32 input");
    let o = masked_softmax_backward_ops(p, g, 0.3);
    // Here p and g are arbitrary values in [−1.5, 1.5]: 0.3·|p|·(|g| + Σ_s |p g|) ≤ 0.3·1.5·(1.5
    // + 5·2.25).
    assert!(max_diff(k, o) <= tol(s, 0.3 * 1.5 * (1.5 + 5.0 * 2.25)));
}

/// The data pointer of a Flex tensor's buffer.
fn buffer_ptr(t: &Tensor<Flex, 4>) -> usize {
    t.clone().into_primitive().tensor().bytes().as_ptr() as usize
}

#[test]
fn cache_write_fills_rows_in_place_like_slice_assign() {
    let shape = [2, 3, 7, 4];
    let cache = t4::<Flex>(vals(2 * 3 * 7 * 4, 1), shape);
    let value = t4::<Flex>(vals(2 * 3 * 2 * 4, 2), [2, 3, 2, 4]);
    let expected = cache_write_ops(cache.clone(), value.clone(), 4);
    let before = buffer_ptr(&cache);
    let (written, fast) = flex::cache_write(cache, &value, 4);
    assert!(fast);
    // The same buffer, now holding the value at positions 4..6 and the old rows elsewhere.
    assert_eq!(buffer_ptr(&written), before);
    assert_eq!(
        written.to_data().to_vec::<f32>().unwrap(),
        expected.to_data().to_vec::<f32>().unwrap()
    );
    let rows = written.clone().slice([0..2, 0..3, 4..6, 0..4]);
    assert_eq!(
        rows.to_data().to_vec::<f32>().unwrap(),
        value.to_data().to_vec::<f32>().unwrap()
    );
    // Through the backend trait, under autodiff too (the write is not tracked).
    let a = t4::<A>(vals(2 * 3 * 7 * 4, 1), shape);
    let v = t4::<A>(vals(2 * 3 * 2 * 4, 2), [2, 3, 2, 4]).require_grad();
    let out = A::cache_write(a, v, 4);
    assert!(!out.is_require_grad());
    assert_eq!(
        out.inner().to_data().to_vec::<f32>().unwrap(),
        expected.to_data().to_vec::<f32>().unwrap()
    );
}

#[test]
fn cache_write_copies_a_shared_buffer_and_refuses_what_does_not_fit() {
    let cache = t4::<Flex>(vals(3 * 5 * 2, 3), [1, 3, 5, 2]);
    let old = cache.to_data().to_vec::<f32>().unwrap();
    let held = cache.clone();
    let value = t4::<Flex>(vec![9.0; 3 * 2], [1, 3, 1, 2]);
    let (written, fast) = flex::cache_write(cache, &value, 0);
    assert!(fast);
    // A view held elsewhere keeps its contents: the write went to a copy.
    assert_eq!(held.to_data().to_vec::<f32>().unwrap(), old);
    assert_ne!(buffer_ptr(&written), buffer_ptr(&held));
    let first = written.slice([0..1, 0..3, 0..1, 0..2]);
    assert_eq!(first.to_data().to_vec::<f32>().unwrap(), vec![9.0; 6]);
    // Past the end, or with other dims: the cache comes back untouched for the caller to handle.
    assert!(!flex::cache_write(held.clone(), &value, 5).1);
    let wrong = t4::<Flex>(vec![1.0; 4], [1, 2, 1, 2]);
    let (back, fast) = flex::cache_write(held.clone(), &wrong, 0);
    assert!(!fast);
    assert_eq!(back.to_data().to_vec::<f32>().unwrap(), old);
}

#[test]
fn cache_write_in_bf16_matches_the_tensor_ops() {
    let cache = t4::<Flex>(vals(2 * 6 * 4, 4), [1, 2, 6, 4]).cast(DType::BF16);
    let value = t4::<Flex>(vals(2 * 3 * 4, 5), [1, 2, 3, 4]).cast(DType::BF16);
    let expected = cache_write_ops(cache.clone(), value.clone(), 3);
    let (written, fast) = flex::cache_write(cache, &value, 3);
    assert!(fast);
    assert_eq!(written.dtype(), DType::BF16);
    assert_eq!(
        written.cast(DType::F32).to_data().to_vec::<f32>().unwrap(),
        expected.cast(DType::F32).to_data().to_vec::<f32>().unwrap()
    );
}
