//! Tests of the device-side quantised weight and the custom autodiff backward, on Flex and
//! Autodiff<Flex>: host and device dequantisation agree bit for bit with the host kernel (which
//! is bit-exact with bitsandbytes, see `fixture_tests`), the forward equals a dense matmul with
//! the dequantised weight, and the gradient with respect to the input equals the dense one.

use burn::backend::{Autodiff, Flex};
use burn::tensor::{DType, FloatDType, Tensor, TensorData};

use super::*;

type B = Flex;
type AD = Autodiff<Flex>;

/// Deterministic test values in [-scale/2, scale/2) (integer hash, no RNG needed).
fn values(n: usize, seed: u64, scale: f32) -> Vec<f32> {
    (0..n as u64)
        .map(|i| {
            let h = ((i + seed) * 2_654_435_761) % (1u64 << 32);
            ((h as f64 / 4_294_967_296.0) as f32 - 0.5) * scale
        })
        .collect()
}

fn to_vec<Bk: burn::tensor::backend::Backend, const D: usize>(t: Tensor<Bk, D>) -> Vec<f32> {
    t.into_data()
        .convert::<f32>()
        .to_vec::<f32>()
        .unwrap_or_default()
}

fn bits(v: &[f32]) -> Vec<u32> {
    v.iter().map(|x| x.to_bits()).collect()
}

fn configs() -> Vec<QuantConfig> {
    vec![
        QuantConfig::new(QuantKind::Nf4),
        QuantConfig::new(QuantKind::Nf4).with_double_quant(true),
        QuantConfig::new(QuantKind::Fp4).with_block_size(32),
        QuantConfig::new(QuantKind::Fp4)
            .with_block_size(128)
            .with_double_quant(true),
        QuantConfig::new(QuantKind::Int8Weight),
    ]
}

#[test]
fn device_and_host_dequantisation_agree_bit_for_bit() {
    let device = Default::default();
    // [37, 67]: 2479 elements, odd, not a multiple of any block size; 2479/32 = 78 blocks
    // (so double quantisation has a single partial second-level block).
    let shape = [37usize, 67];
    let data = values(shape[0] * shape[1], 3, 0.2);
    for cfg in configs() {
        let reference = match cfg.kind {
            QuantKind::Int8 | QuantKind::Int8Weight => {
                quantize_int8(&data, &shape).unwrap().dequantize().unwrap()
            }
            _ => quantize_4bit(&data, &shape, &cfg)
                .unwrap()
                .dequantize()
                .unwrap(),
        };
        for storage in [Storage::Host, Storage::Device] {
            let w = QuantWeight::<B>::quantize_with(
                &data,
                shape,
                &cfg,
                &device,
                storage,
                FloatDType::F32,
            )
            .unwrap();
            assert_eq!(w.storage(), storage);
            assert_eq!(w.dequantize().dims(), shape);
            let got = to_vec(w.dequantize());
            assert_eq!(bits(&got), bits(&reference), "{:?} {:?}", cfg, storage);
        }
    }
}

#[test]
fn accounting_and_metadata() {
    let device = Default::default();
    let data = values(512 * 1408, 1, 0.05);
    let nf4 = QuantConfig::new(QuantKind::Nf4);
    let w = QuantWeight::<B>::quantize(&data, [512, 1408], &nf4, &device).unwrap();
    assert_eq!(w.storage(), Storage::Host);
    // 720896 params: 360448 packed bytes + 11264 blocks * 4 bytes = 4.5 bits.
    assert_eq!(w.bytes(), 360_448 + 4 * 11_264);
    assert_eq!(w.bits_per_param(), 4.5);
    let dq = nf4.with_double_quant(true);
    let w = QuantWeight::<B>::quantize(&data, [512, 1408], &dq, &device).unwrap();
    // 11264 u8 codes + 44 second-level scales * 4 + 4-byte offset.
    assert_eq!(w.bytes(), 360_448 + 11_264 + 44 * 4 + 4);
    assert!((w.bits_per_param() - 2_975_136.0 / 720_896.0).abs() < 1e-12); // 4.1270
    let w = QuantWeight::<B>::quantize(
        &data,
        [512, 1408],
        &QuantConfig::new(QuantKind::Int8),
        &device,
    )
    .unwrap();
    assert_eq!(w.bytes(), 720_896 + 512 * 4);
    let dense = QuantConfig::new(QuantKind::None);
    let w = QuantWeight::<B>::quantize_with(
        &data,
        [512, 1408],
        &dense,
        &device,
        Storage::Device,
        FloatDType::BF16,
    )
    .unwrap();
    assert_eq!(
        (w.bytes(), w.bits_per_param(), w.kind()),
        (2 * 720_896, 16.0, QuantKind::None)
    );
    assert_eq!(w.dequantize().dtype(), DType::F32);
    let e = QuantWeight::<B>::quantize(&data, [512, 1400], &nf4, &device).unwrap_err();
    assert!(e.to_string().contains("has 716800 elements"), "{e}");
    let q = quantize_4bit(&data[..64], &[64], &nf4).unwrap();
    let e = QuantWeight::<B>::from_4bit(q, &device, Storage::Host).unwrap_err();
    assert_eq!(
        e.to_string(),
        "QuantWeight::from_4bit: a linear weight must be 2-D [out, in] (got shape [64])"
    );
}

#[test]
fn forward_equals_dense_matmul() {
    let device = Default::default();
    let shape = [48usize, 96];
    let wdata = values(48 * 96, 7, 0.1);
    let x = Tensor::<B, 3>::from_data(
        TensorData::new(values(2 * 5 * 96, 9, 2.0), [2, 5, 96]),
        &device,
    );
    for cfg in configs() {
        for storage in [Storage::Host, Storage::Device] {
            let w = QuantWeight::<B>::quantize_with(
                &wdata,
                shape,
                &cfg,
                &device,
                storage,
                FloatDType::F32,
            )
            .unwrap();
            let y = w.forward(x.clone());
            assert_eq!(y.dims(), [2, 5, 48]);
            let dense = x
                .clone()
                .reshape([10, 96])
                .matmul(w.dequantize().transpose())
                .reshape([2, 5, 48]);
            assert_eq!(
                bits(&to_vec(y)),
                bits(&to_vec(dense)),
                "{cfg:?} {storage:?}"
            );
        }
    }
}

/// grad_x of sum(forward(x) * r) through the custom backward vs through a dense matmul.
fn grad_check(cfg: &QuantConfig, storage: Storage) {
    let device = Default::default();
    let shape = [96usize, 256];
    let wdata = values(96 * 256, 11, 0.06);
    let xdata = values(3 * 4 * 256, 13, 2.0);
    let rdata = values(3 * 4 * 96, 17, 2.0);
    let w = QuantWeight::<AD>::quantize_with(&wdata, shape, cfg, &device, storage, FloatDType::F32)
        .unwrap();
    let r = Tensor::<AD, 3>::from_data(TensorData::new(rdata, [3, 4, 96]), &device);

    let x = Tensor::<AD, 3>::from_data(TensorData::new(xdata.clone(), [3, 4, 256]), &device)
        .require_grad();
    let loss = (w.forward(x.clone()) * r.clone()).sum();
    let grads = loss.backward();
    let gx = to_vec(x.grad(&grads).unwrap());

    let x2 =
        Tensor::<AD, 3>::from_data(TensorData::new(xdata, [3, 4, 256]), &device).require_grad();
    let dense = w.dequantize(); // a constant of the graph
    let y2 = x2
        .clone()
        .reshape([12, 256])
        .matmul(dense.transpose())
        .reshape([3, 4, 96]);
    let grads2 = (y2 * r).sum().backward();
    let gx2 = to_vec(x2.grad(&grads2).unwrap());
    assert_eq!(gx.len(), 3 * 4 * 256);
    let max = gx
        .iter()
        .zip(&gx2)
        .map(|(a, b)| (a - b).abs())
        .fold(0.0f32, f32::max);
    assert!(max <= 1e-6, "{cfg:?} {storage:?}: max |grad diff| = {max}");
    // The gradient is not trivially zero: it is r @ W, entries of order 0.1.
    assert!(gx.iter().map(|v| v.abs()).fold(0.0f32, f32::max) > 0.05);
}

#[test]
fn custom_backward_gradient_matches_dense() {
    // LLM.int8's backward is bitsandbytes': grad_x = grad_y @ dequantize(W).
    let llm_int8 = QuantConfig::new(QuantKind::Int8).with_int8_threshold(0.5);
    for cfg in configs().into_iter().chain([llm_int8]) {
        for storage in [Storage::Host, Storage::Device] {
            grad_check(&cfg, storage);
        }
    }
}

#[test]
fn adapter_gradient_flows_through_quantised_layers() {
    // A LoRA-style path: h = qlin1(x) + (x A^T) B^T; y = qlin2(h); the adapter gradients through
    // the custom backward equal those through dense matmuls.
    let device = Default::default();
    let nf4 = QuantConfig::new(QuantKind::Nf4).with_double_quant(true);
    let w1 =
        QuantWeight::<AD>::quantize(&values(64 * 64, 1, 0.1), [64, 64], &nf4, &device).unwrap();
    let w2 =
        QuantWeight::<AD>::quantize(&values(32 * 64, 2, 0.1), [32, 64], &nf4, &device).unwrap();
    let x = Tensor::<AD, 2>::from_data(TensorData::new(values(8 * 64, 3, 2.0), [8, 64]), &device);
    let a0 = TensorData::new(values(4 * 64, 4, 0.2), [4, 64]);
    let b0 = TensorData::new(values(64 * 4, 5, 0.2), [64, 4]);
    let run = |quantised: bool| {
        let a = Tensor::<AD, 2>::from_data(a0.clone(), &device).require_grad();
        let b = Tensor::<AD, 2>::from_data(b0.clone(), &device).require_grad();
        let lora = x
            .clone()
            .matmul(a.clone().transpose())
            .matmul(b.clone().transpose());
        let (h, y) = if quantised {
            let h = w1.forward(x.clone()) + lora;
            let y = w2.forward(h.clone());
            (h, y)
        } else {
            let h = x.clone().matmul(w1.dequantize().transpose()) + lora;
            let y = h.clone().matmul(w2.dequantize().transpose());
            (h, y)
        };
        let _ = h;
        let grads = (y.clone() * y).sum().backward();
        (
            to_vec(a.grad(&grads).unwrap()),
            to_vec(b.grad(&grads).unwrap()),
        )
    };
    let (ga, gb) = run(true);
    let (ga2, gb2) = run(false);
    for (g, g2) in [(ga, ga2), (gb, gb2)] {
        let scale = g2.iter().map(|v| v.abs()).fold(0.0f32, f32::max);
        assert!(scale > 1e-3);
        let max = g
            .iter()
            .zip(&g2)
            .map(|(a, b)| (a - b).abs())
            .fold(0.0f32, f32::max);
        assert!(max <= 1e-5 * scale, "max diff {max} (scale {scale})");
    }
}

#[test]
fn autodiff_inner_conversions_keep_the_storage() {
    let device = Default::default();
    let cfg = QuantConfig::new(QuantKind::Fp4).with_double_quant(true);
    let data = values(16 * 64, 21, 0.3);
    for storage in [Storage::Host, Storage::Device] {
        let w = QuantWeight::<AD>::quantize_with(
            &data,
            [16, 64],
            &cfg,
            &device,
            storage,
            FloatDType::F32,
        )
        .unwrap();
        let inner: QuantWeight<B> = w.inner();
        assert_eq!(inner.storage(), storage);
        let back = QuantWeight::<AD>::from_inner(inner.clone());
        assert_eq!(
            bits(&to_vec(back.dequantize())),
            bits(&to_vec(inner.dequantize()))
        );
        let moved = w.to_device(&device);
        assert_eq!(moved.shape(), [16, 64]);
    }
}

#[test]
fn llm_int8_forward_is_the_reference_decomposition() {
    // [2, 5, 96] inputs in (-1, 1) with threshold 0.9: a few outlier columns.
    let device = Default::default();
    let shape = [48usize, 96];
    let wdata = values(48 * 96, 7, 0.1);
    let xdata = values(2 * 5 * 96, 9, 2.0);
    let x = Tensor::<B, 3>::from_data(TensorData::new(xdata.clone(), [2, 5, 96]), &device);
    let cfg = QuantConfig::new(QuantKind::Int8).with_int8_threshold(0.9);
    let act = crate::quant::vectorwise_quant(&xdata, 96, 0.9);
    assert!(!act.outlier_cols.is_empty() && act.outlier_cols.len() < 96);
    let want = crate::quant::llm_int8_reference(
        &xdata,
        &quantize_int8(&wdata, &shape).unwrap(),
        None,
        0.9,
        false,
    )
    .unwrap();
    for storage in [Storage::Host, Storage::Device] {
        let w =
            QuantWeight::<B>::quantize_with(&wdata, shape, &cfg, &device, storage, FloatDType::F32)
                .unwrap();
        assert_eq!(w.kind(), QuantKind::Int8);
        assert_eq!(w.llm_int8_threshold(), Some(0.9));
        let got = to_vec(w.forward(x.clone()));
        for (g, r) in got.iter().zip(&want) {
            assert!(
                (g - r).abs() <= 8.0 * f32::EPSILON * r.abs().max(1.0),
                "{storage:?}: {g} vs {r}"
            );
        }
        // Not the weight-only result: the activations are quantised.
        let wo = QuantWeight::<B>::quantize_with(
            &wdata,
            shape,
            &QuantConfig::new(QuantKind::Int8Weight),
            &device,
            storage,
            FloatDType::F32,
        )
        .unwrap();
        assert_eq!(wo.llm_int8_threshold(), None);
        let dense = to_vec(wo.forward(x.clone()));
        let diff = got
            .iter()
            .zip(&dense)
            .map(|(a, b)| (a - b).abs())
            .fold(0.0f32, f32::max);
        assert!(diff > 1e-4 && diff < 0.05, "{storage:?}: {diff}");
    }
}
