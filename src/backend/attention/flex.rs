//! Host kernels of the fused attention steps for the `Flex` (CPU) backend.
//!
//! Each returns `None` when its fast path does not apply (a dtype other than f32, or shapes it
//! does not expect); the caller then takes the tensor-op path. The expressions are the tensor
//! ops' own, element by element and in the same order, so RoPE is bit-identical to the op path
//! and the softmax differs only by the rounding of `exp`.

use burn::backend::Flex;
use burn::tensor::{bf16, f16, Bytes, DType, Shape, Tensor, TensorPrimitive};
use burn_flex::{FlexTensor, Layout};
use rayon::prelude::*;

/// The contiguous f32 storage of a tensor (a no-op for contiguous tensors).
fn host(t: &Tensor<Flex, 4>) -> Option<FlexTensor> {
    if t.dtype() != DType::F32 {
        return None;
    }
    let prim = t.clone().into_primitive().tensor().to_contiguous();
    let n: usize = t.dims().iter().product();
    (prim.as_slice::<f32>().map(<[f32]>::len) == Some(n)).then_some(prim)
}

/// A contiguous f32 tensor over `v` (no copy).
fn tensor(v: Vec<f32>, shape: [usize; 4]) -> Tensor<Flex, 4> {
    let t = FlexTensor::new(
        Bytes::from_elems(v),
        Layout::contiguous(Shape::from(shape.to_vec())),
        DType::F32,
    );
    Tensor::from_primitive(TensorPrimitive::Float(t))
}

/// RoPE with the transpose folded in.
///
/// Forward (`adjoint: false`): `x: [B, T, H, d]` → `[B, H, T, d]`, `y = x·cos + rotate_half(x)·sin`.
/// Adjoint (`adjoint: true`): `g: [B, H, T, d]` → `[B, T, H, d]`,
/// `∂x = g·cos + rotate_halfᵀ(g·sin)`. The tables are `[1 or B, 1, T, d]`.
pub fn rope(
    x: &Tensor<Flex, 4>,
    cos: &Tensor<Flex, 4>,
    sin: &Tensor<Flex, 4>,
    adjoint: bool,
) -> Option<Tensor<Flex, 4>> {
    let [b, t, h, d] = if adjoint {
        let [b, h, t, d] = x.dims();
        [b, t, h, d]
    } else {
        x.dims()
    };
    let [r, one, tt, dd] = cos.dims();
    let shapes_ok = d % 2 == 0
        && d > 0
        && one == 1
        && tt == t
        && dd == d
        && (r == 1 || r == b)
        && sin.dims() == cos.dims();
    if !shapes_ok || b * t * h == 0 {
        return None;
    }
    let (xs, cs, ss) = (host(x)?, host(cos)?, host(sin)?);
    let (x, c, s): (&[f32], &[f32], &[f32]) = (xs.as_slice()?, cs.as_slice()?, ss.as_slice()?);
    let half = d / 2;
    let table = |bi: usize, ti: usize| {
        let at = ((if r == 1 { 0 } else { bi }) * t + ti) * d;
        (&c[at..at + d], &s[at..at + d])
    };
    let mut out = vec![0f32; b * h * t * d];
    if adjoint {
        // One output chunk per (b, t): the H heads of that position.
        out.par_chunks_mut(h * d)
            .enumerate()
            .with_min_len(8)
            .for_each(|(bt, o)| {
                let (bi, ti) = (bt / t, bt % t);
                let (c, s) = table(bi, ti);
                for hi in 0..h {
                    let at = ((bi * h + hi) * t + ti) * d;
                    let g = &x[at..at + d];
                    let dst = &mut o[hi * d..(hi + 1) * d];
                    for i in 0..half {
                        dst[i] = g[i] * c[i] + g[i + half] * s[i + half];
                    }
                    for i in half..d {
                        dst[i] = g[i] * c[i] + -(g[i - half] * s[i - half]);
                    }
                }
            });
        Some(tensor(out, [b, t, h, d]))
    } else {
        // One output chunk per (b, h): that head's T positions.
        out.par_chunks_mut(t * d)
            .enumerate()
            .with_min_len(2)
            .for_each(|(bh, o)| {
                let (bi, hi) = (bh / h, bh % h);
                for ti in 0..t {
                    let (c, s) = table(bi, ti);
                    let at = ((bi * t + ti) * h + hi) * d;
                    let src = &x[at..at + d];
                    let dst = &mut o[ti * d..(ti + 1) * d];
                    for i in 0..half {
                        dst[i] = src[i] * c[i] + -src[i + half] * s[i];
                    }
                    for i in half..d {
                        dst[i] = src[i] * c[i] + src[i - half] * s[i];
                    }
                }
            });
        Some(tensor(out, [b, h, t, d]))
    }
}

/// `softmax(scores · scale + mask)` per row of `scores: [B, H, T, S]`; `mask: [B or 1, 1, T, S]`.
pub fn masked_softmax(
    scores: &Tensor<Flex, 4>,
    mask: &Tensor<Flex, 4>,
    scale: f32,
) -> Option<Tensor<Flex, 4>> {
    let [b, h, t, s] = scores.dims();
    let [mb, one, mt, ms] = mask.dims();
    if one != 1 || mt != t || ms != s || !(mb == 1 || mb == b) || b * h * t * s == 0 {
        return None;
    }
    let (xs, m) = (host(scores)?, host(mask)?);
    let (x, m): (&[f32], &[f32]) = (xs.as_slice()?, m.as_slice()?);
    let mut out = vec![0f32; b * h * t * s];
    out.par_chunks_mut(s)
        .zip(x.par_chunks(s))
        .enumerate()
        .with_min_len(16)
        .for_each(|(row, (o, x))| {
            let (bi, ti) = (row / (h * t), row % t);
            let at = ((if mb == 1 { 0 } else { bi }) * t + ti) * s;
            let m = &m[at..at + s];
            let mut max = f32::NEG_INFINITY;
            for ((o, &xi), &mi) in o.iter_mut().zip(x).zip(m) {
                let v = xi * scale + mi;
                *o = v;
                max = max.max(v);
            }
            let mut sum = 0f32;
            for o in o.iter_mut() {
                let e = (*o - max).exp();
                *o = e;
                sum += e;
            }
            for o in o.iter_mut() {
                *o /= sum;
            }
        });
    Some(tensor(out, [b, h, t, s]))
}

/// `scale · p ⊙ (g − Σ g ⊙ p)` per row.
pub fn masked_softmax_backward(
    p: &Tensor<Flex, 4>,
    g: &Tensor<Flex, 4>,
    scale: f32,
) -> Option<Tensor<Flex, 4>> {
    let dims = p.dims();
    if g.dims() != dims || dims.iter().product::<usize>() == 0 {
        return None;
    }
    let s = dims[3];
    let (ps, gs) = (host(p)?, host(g)?);
    let (p, g): (&[f32], &[f32]) = (ps.as_slice()?, gs.as_slice()?);
    let mut out = vec![0f32; p.len()];
    out.par_chunks_mut(s)
        .zip(p.par_chunks(s).zip(g.par_chunks(s)))
        .with_min_len(16)
        .for_each(|(o, (p, g))| {
            let dot: f32 = p.iter().zip(g).map(|(&pi, &gi)| gi * pi).sum();
            for ((o, &pi), &gi) in o.iter_mut().zip(p).zip(g) {
                *o = pi * (gi - dot) * scale;
            }
        });
    Some(tensor(out, dims))
}

/// Writes `value: [B, H, T, d]` into `cache: [B, H, C, d]` at positions `at..at + T`, in the
/// cache's own buffer when nothing else holds it (otherwise into a copy, once).
///
/// Returns the cache and whether the rows were written; it comes back unchanged when the fast
/// path does not apply: a non-contiguous cache, mismatched dtypes or dims, or a write past the
/// end.
pub fn cache_write(
    cache: Tensor<Flex, 4>,
    value: &Tensor<Flex, 4>,
    at: usize,
) -> (Tensor<Flex, 4>, bool) {
    let [b, h, c, d] = cache.dims();
    let [vb, vh, t, vd] = value.dims();
    let fits = (vb, vh, vd) == (b, h, d) && at.checked_add(t).is_some_and(|end| end <= c);
    let dtype = cache.dtype();
    if !fits || value.dtype() != dtype {
        return (cache, false);
    }
    let mut dst = cache.into_primitive().tensor();
    let whole = dst.is_contiguous()
        && dst.layout().start_offset() == 0
        && dst.bytes().len() == b * h * c * d * dst.dtype().size();
    let src = value.clone().into_primitive().tensor().to_contiguous();
    // Each of the B·H `[T, d]` blocks of the value goes to rows `at..at + T` of its `[C, d]`
    // block of the cache. `storage_mut` copies the buffer only when it is shared.
    macro_rules! write_rows {
        ($e:ty) => {{
            match src.as_slice::<$e>() {
                Some(src) => {
                    let dst = dst.storage_mut::<$e>();
                    for (i, block) in src.chunks_exact(t * d).take(b * h).enumerate() {
                        let start = (i * c + at) * d;
                        dst[start..start + t * d].copy_from_slice(block);
                    }
                    true
                }
                None => false,
            }
        }};
    }
    let written = whole
        && (t * d == 0
            || match dtype {
                DType::F32 => write_rows!(f32),
                DType::BF16 => write_rows!(bf16),
                DType::F16 => write_rows!(f16),
                _ => false,
            });
    (Tensor::from_primitive(TensorPrimitive::Float(dst)), written)
}
