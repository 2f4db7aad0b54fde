//! Bit-exactness tests against bitsandbytes 0.50.2 (CPU) outputs:
//! - `tests/fixtures/quant/bnb_reference.safetensors` (shared fixture: a [48, 256] weight with an
//!   outlier; nf4/fp4 with and without double quantisation, int8 of the float16 copy);
//! - `tests/fixtures/quant/bnb_edge.safetensors` (made by `gen_bnb_edge.py` next to it): tail
//!   blocks and odd element counts with block sizes 32/64/128/4096, exact midpoint ties, all-zero
//!   full and tail blocks, double quantisation over 300 and 30000 blocks, int8 with a zero row.

use std::collections::HashMap;

use safetensors::{Dtype, SafeTensors};

use super::*;

struct Fixture {
    tensors: HashMap<String, (Dtype, Vec<usize>, Vec<u8>)>,
}

impl Fixture {
    fn load(name: &str) -> Fixture {
        let path = format!("{}/tests/fixtures/quant/{name}", env!("CARGO_MANIFEST_DIR"));
        let bytes = std::fs::read(&path).unwrap_or_else(|e| panic!("{path}: {e}"));
        let st = SafeTensors::deserialize(&bytes).unwrap();
        let tensors = st
            .tensors()
            .into_iter()
            .map(|(k, v)| (k, (v.dtype(), v.shape().to_vec(), v.data().to_vec())))
            .collect();
        Fixture { tensors }
    }

    fn raw(&self, key: &str, dtype: Dtype) -> (&[usize], &[u8]) {
        let (dt, shape, data) = self
            .tensors
            .get(key)
            .unwrap_or_else(|| panic!("missing {key}"));
        assert_eq!(*dt, dtype, "{key}");
        (shape, data)
    }

    fn f32(&self, key: &str) -> Vec<f32> {
        let (_, d) = self.raw(key, Dtype::F32);
        d.chunks_exact(4)
            .map(|b| f32::from_le_bytes([b[0], b[1], b[2], b[3]]))
            .collect()
    }

    fn shape(&self, key: &str) -> Vec<usize> {
        self.tensors[key].1.clone()
    }

    fn u8(&self, key: &str) -> Vec<u8> {
        self.raw(key, Dtype::U8).1.to_vec()
    }

    fn i8(&self, key: &str) -> Vec<i8> {
        self.raw(key, Dtype::I8)
            .1
            .iter()
            .map(|&b| b as i8)
            .collect()
    }
}

fn bits(v: &[f32]) -> Vec<u32> {
    v.iter().map(|x| x.to_bits()).collect()
}

/// Bits with -0.0 read as +0.0. bitsandbytes' own sign of zero for FP4 code 8 depends on the
/// CPU: its scalar (AVX2) dequantisation table has -0.0 there, the AVX-512 / NEON tables and
/// `get_4bit_type` have +0.0. The shared reference fixture has +0.0 (and we match it bit for
/// bit); `bnb_edge.safetensors` was made on an AVX2 machine, so its zeros are compared unsigned.
fn bits_unsigned_zero(v: &[f32]) -> Vec<u32> {
    v.iter()
        .map(|&x| if x == 0.0 { 0 } else { x.to_bits() })
        .collect()
}

/// The weights `gen_bnb_edge.py` builds with `hashw` (integer hash, exact in float32).
fn hashw(n: usize, seed: u64, scale: f64) -> Vec<f32> {
    (0..n as u64)
        .map(|i| {
            let h = ((i + seed) * 2_654_435_761) % (1u64 << 32);
            let x = (h as f64 / 4_294_967_296.0) as f32 - 0.5;
            x * scale as f32
        })
        .collect()
}

/// Checks one nf4/fp4 case (`{prefix}.{kind}` and `{prefix}.{kind}_dq` keys) for weight `w`.
fn check_4bit(fx: &Fixture, prefix: &str, w: &[f32], shape: &[usize], kind: QuantKind, bs: usize) {
    let name = kind.as_str();
    let key = |s: &str| format!("{prefix}.{name}{s}");
    let cfg = QuantConfig::new(kind).with_block_size(bs);
    let q = quantize_4bit(w, shape, &cfg).unwrap();
    assert_eq!(q.packed, fx.u8(&key(".packed")), "{prefix} {name} packed");
    let Absmax::Plain(am) = &q.absmax else {
        panic!("plain absmax expected")
    };
    assert_eq!(
        bits(am),
        bits(&fx.f32(&key(".absmax"))),
        "{prefix} {name} absmax"
    );
    let has_deq = fx.tensors.contains_key(&key(".dequant"));
    if has_deq {
        let (deq, reference) = (q.dequantize().unwrap(), fx.f32(&key(".dequant")));
        assert_eq!(
            bits_unsigned_zero(&deq),
            bits_unsigned_zero(&reference),
            "{prefix} {name}"
        );
    }

    let qd = quantize_4bit(w, shape, &cfg.with_double_quant(true)).unwrap();
    assert_eq!(qd.packed, q.packed);
    let Absmax::Double(d) = &qd.absmax else {
        panic!("double quant expected")
    };
    assert_eq!(
        d.absmax_q,
        fx.u8(&key("_dq.absmax_q")),
        "{prefix} {name} absmax_q"
    );
    assert_eq!(
        d.offset.to_bits(),
        fx.f32(&key("_dq.offset"))[0].to_bits(),
        "{prefix} offset"
    );
    assert_eq!(
        bits(&d.state2_absmax),
        bits(&fx.f32(&key("_dq.state2_absmax")))
    );
    if has_deq {
        let deq = qd.dequantize().unwrap();
        let reference = fx.f32(&key("_dq.dequant"));
        assert_eq!(
            bits_unsigned_zero(&deq),
            bits_unsigned_zero(&reference),
            "{prefix} {name} dq"
        );
    }
}

#[test]
fn tables_match_bitsandbytes() {
    let fx = Fixture::load("bnb_reference.safetensors");
    assert_eq!(bits(&nf4_code()), bits(&fx.f32("nf4.code")));
    assert_eq!(bits(&fp4_code()), bits(&fx.f32("fp4.code")));
    assert_eq!(bits(dynamic_map()), bits(&fx.f32("nf4_dq.state2_code")));
    assert_eq!(bits(dynamic_map()), bits(&fx.f32("fp4_dq.state2_code")));
}

#[test]
fn reference_4bit_bit_exact() {
    let fx = Fixture::load("bnb_reference.safetensors");
    let w = fx.f32("weight");
    let shape = fx.shape("weight");
    assert_eq!(shape, [48, 256]);
    for kind in [QuantKind::Nf4, QuantKind::Fp4] {
        let name = kind.as_str();
        let cfg = QuantConfig::new(kind);
        let q = quantize_4bit(&w, &shape, &cfg).unwrap();
        assert_eq!(q.packed, fx.u8(&format!("{name}.packed")));
        assert_eq!(q.absmax, Absmax::Plain(fx.f32(&format!("{name}.absmax"))));
        let deq = q.dequantize().unwrap();
        let reference = fx.f32(&format!("{name}.dequant"));
        // Required: within 1e-6; we are bit-exact.
        assert_eq!(bits(&deq), bits(&reference), "{name} dequant");

        let qd = quantize_4bit(&w, &shape, &cfg.with_double_quant(true)).unwrap();
        assert_eq!(qd.packed, fx.u8(&format!("{name}_dq.packed")));
        let Absmax::Double(d) = &qd.absmax else {
            panic!("double quant expected")
        };
        assert_eq!(d.absmax_q, fx.u8(&format!("{name}_dq.absmax_q")));
        assert_eq!(
            d.offset.to_bits(),
            fx.f32(&format!("{name}_dq.offset"))[0].to_bits()
        );
        assert_eq!(
            bits(&d.state2_absmax),
            bits(&fx.f32(&format!("{name}_dq.state2_absmax")))
        );
        assert_eq!(
            bits(&d.state2_code),
            bits(&fx.f32(&format!("{name}_dq.state2_code")))
        );
        let deq = qd.dequantize().unwrap();
        assert_eq!(
            bits(&deq),
            bits(&fx.f32(&format!("{name}_dq.dequant"))),
            "{name} dq"
        );
        // 4 bits + 8/64 per block + 32 bits (one state2 scale) + 32 bits (offset) over 12288.
        assert!((qd.bits_per_param() - (4.0 + 0.125 + 64.0 / 12288.0)).abs() < 1e-12);
        assert_eq!(q.bits_per_param(), 4.5);
    }
}

#[test]
fn reference_int8_exact() {
    let fx = Fixture::load("bnb_reference.safetensors");
    let w = fx.f32("weight");
    let q = quantize_int8(&w, &[48, 256]).unwrap();
    assert_eq!(q.q, fx.i8("int8.q"));
    assert_eq!(bits(&q.row_absmax), bits(&fx.f32("int8.row_absmax")));
}

#[test]
fn edge_tail_blocks_and_block_sizes() {
    let fx = Fixture::load("bnb_edge.safetensors");
    for bs in [32usize, 64, 128] {
        let prefix = format!("tail{bs}");
        let w = fx.f32(&format!("{prefix}.weight"));
        assert_eq!(w, hashw(335, 11, 0.1), "hash weights regenerate");
        for kind in [QuantKind::Nf4, QuantKind::Fp4] {
            check_4bit(&fx, &prefix, &w, &[5, 67], kind, bs);
        }
    }
    for kind in [QuantKind::Nf4, QuantKind::Fp4] {
        check_4bit(
            &fx,
            "many",
            &hashw(300 * 64, 17, 0.08),
            &[300, 64],
            kind,
            64,
        );
        check_4bit(
            &fx,
            "bs4096",
            &hashw(6400, 23, 0.03),
            &[64, 100],
            kind,
            4096,
        );
        let z = fx.f32("zeros.weight");
        check_4bit(&fx, "zeros", &z, &[1, 200], kind, 64);
    }
}

#[test]
fn edge_exact_ties() {
    let fx = Fixture::load("bnb_edge.safetensors");
    for kind in [QuantKind::Nf4, QuantKind::Fp4] {
        let prefix = format!("ties_{}", kind.as_str());
        let w = fx.f32(&format!("{prefix}.weight"));
        check_4bit(&fx, &prefix, &w, &[1, 64], kind, 64);
    }
}

#[test]
fn edge_large_double_quant() {
    // 30000 blocks: the offset is a float32 cascade sum of 30000 values (below torch's
    // single-thread grain of 32768 elements), and the second level has 118 blocks of 256.
    let fx = Fixture::load("bnb_edge.safetensors");
    let w = hashw(30000 * 64, 29, 0.05);
    let cfg = QuantConfig::new(QuantKind::Nf4).with_double_quant(true);
    let q = quantize_4bit(&w, &[30000 * 64], &cfg).unwrap();
    let Absmax::Double(d) = &q.absmax else {
        panic!("double quant expected")
    };
    assert_eq!(d.offset.to_bits(), fx.f32("big.nf4_dq.offset")[0].to_bits());
    assert_eq!(
        bits(&d.state2_absmax),
        bits(&fx.f32("big.nf4_dq.state2_absmax"))
    );
    assert_eq!(d.absmax_q, fx.u8("big.nf4_dq.absmax_q"));
}

#[test]
fn edge_int8() {
    let fx = Fixture::load("bnb_edge.safetensors");
    let w = fx.f32("int8e.weight");
    let q = quantize_int8(&w, &[4, 33]).unwrap();
    assert_eq!(q.q, fx.i8("int8e.q"));
    assert_eq!(bits(&q.row_absmax), bits(&fx.f32("int8e.row_absmax")));
    assert_eq!(
        bits(&q.dequantize().unwrap()),
        bits(&fx.f32("int8e.dequant"))
    );
}

#[test]
fn probe_matches_reference() {
    let fx = Fixture::load("bnb_reference.safetensors");
    let w = fx.f32("weight");
    let cfg = QuantConfig::new(QuantKind::Nf4).with_double_quant(true);
    let p = quantize_probe(&w, &[48, 256], &cfg).unwrap();
    let Some(ProbeTensor::U8 { data, .. }) = p.get("absmax_q") else {
        panic!("absmax_q")
    };
    assert_eq!(*data, fx.u8("nf4_dq.absmax_q"));
    let Some(ProbeTensor::F32 { data, shape }) = p.get("dequant") else {
        panic!("dequant")
    };
    assert_eq!(shape, &[48, 256]);
    assert_eq!(bits(data), bits(&fx.f32("nf4_dq.dequant")));
    let p = quantize_probe(&w, &[48, 256], &QuantConfig::new(QuantKind::Int8)).unwrap();
    let Some(ProbeTensor::I8 { data, .. }) = p.get("q") else {
        panic!("q")
    };
    assert_eq!(*data, fx.i8("int8.q"));
}

impl Fixture {
    fn i64(&self, key: &str) -> Vec<i64> {
        self.raw(key, Dtype::I64)
            .1
            .chunks_exact(8)
            .map(|b| i64::from_le_bytes([b[0], b[1], b[2], b[3], b[4], b[5], b[6], b[7]]))
            .collect()
    }
}

/// The inputs of `gen_llm_int8.py`: x [5, 96] with outliers, W [24, 96], bias [24].
fn llm_int8_inputs() -> (Vec<f32>, Vec<f32>, Vec<f32>) {
    let (m, k, n) = (5, 96, 24);
    let mut x = hashw(m * k, 11, 4.0);
    for r in 0..m {
        x[r * k + 7] *= 5.0;
    }
    x[k + 40] = -7.25;
    x[3 * k + 40] = 6.0;
    x[4 * k + 81] = 9.5;
    (x, hashw(n * k, 5, 0.2), hashw(n, 3, 0.1))
}

/// Largest distance in float16 ulps (at each reference value's magnitude) between two outputs.
fn max_f16_ulps(got: &[f32], want: &[f32]) -> f32 {
    got.iter()
        .zip(want)
        .map(|(&g, &w)| {
            let h = half::f16::from_f32(w);
            let ulp = (half::f16::from_bits(h.to_bits() + 1).to_f32() - h.to_f32()).abs();
            (g - w).abs() / ulp
        })
        .fold(0.0, f32::max)
}

/// LLM.int8 against bitsandbytes' `Linear8bitLt(threshold)` forward on CPU (`gen_llm_int8.py`):
/// the activation codes, row statistics, outlier columns and weight codes exactly; the output of
/// the host reference and of the Flex tensor path within what the dtype's rounding allows.
#[test]
fn llm_int8_matches_linear8bitlt() {
    use burn::backend::Flex;
    use burn::tensor::{DType, Tensor, TensorData};
    let fx = Fixture::load("llm_int8.safetensors");
    let (x0, w0, b0) = llm_int8_inputs();
    let (m, k, n) = (5usize, 96usize, 24usize);
    let mut xs = x0.clone();
    for v in &mut xs {
        *v = v.clamp(-1.9, 1.9);
    }
    let mut xz = x0.clone();
    xz[2 * k..3 * k].fill(0.0);
    let wq = quantize_int8(&w0, &[n, k]).unwrap();
    let device = Default::default();
    for (case, x, half, t, cols) in [
        ("f16", &x0, true, 6.0f32, vec![7usize, 40, 81]),
        ("f32", &x0, false, 6.0, vec![7, 40, 81]),
        ("noout", &xs, true, 6.0, vec![]),
        ("t0", &x0, true, 0.0, vec![]),
        ("zero_row", &xz, true, 6.0, vec![7, 40, 81]),
    ] {
        // Weight codes: exact.
        assert_eq!(wq.q, fx.i8(&format!("{case}.CB")), "{case}");
        assert_eq!(wq.row_absmax, fx.f32(&format!("{case}.SCB")), "{case}");
        // Activation quantisation: exact.
        let act = vectorwise_quant(x, k, t);
        assert_eq!(act.codes, fx.i8(&format!("{case}.CA")), "{case}");
        assert_eq!(act.row_stats, fx.f32(&format!("{case}.SCA")), "{case}");
        let want_cols: Vec<usize> = fx
            .i64(&format!("{case}.cols"))
            .into_iter()
            .map(|c| c as usize)
            .collect();
        assert_eq!(act.outlier_cols, want_cols, "{case}");
        assert_eq!(act.outlier_cols, cols, "{case}");
        let want = fx.f32(&format!("{case}.out"));
        // Host reference: bit-exact for float16 (one rounding of a float32 sum, as torch's
        // addmm); float32 sums in another order may differ by a few ulps.
        let got = llm_int8_reference(x, &wq, Some(&b0), t, half).unwrap();
        if half {
            assert_eq!(got, want, "{case}: host reference");
        } else {
            for (g, w) in got.iter().zip(&want) {
                assert!(
                    (g - w).abs() <= 4.0 * f32::EPSILON * w.abs().max(1.0),
                    "{case}: {g} vs {w}"
                );
            }
        }
        // The tensor path on Flex, in the case's dtype.
        for storage in [linear::Storage::Host, linear::Storage::Device] {
            let qw = linear::QuantWeight::<Flex>::from_int8(wq.clone(), &device, storage)
                .unwrap()
                .llm_int8(t);
            assert_eq!(qw.kind(), QuantKind::Int8);
            let dt = if half { DType::F16 } else { DType::F32 };
            let xt = Tensor::<Flex, 2>::from_data(
                TensorData::new(x.clone(), [m, k]),
                (&device, DType::F32),
            )
            .cast(dt);
            let bt = Tensor::<Flex, 1>::from_data(
                TensorData::new(b0.clone(), [n]),
                (&device, DType::F32),
            )
            .cast(dt);
            let y = llm_int8_linear(xt, &qw, t, Some(bt));
            assert_eq!(y.dtype(), dt, "{case}");
            let got: Vec<f32> = y.cast(DType::F32).into_data().to_vec().unwrap();
            let ulps = max_f16_ulps(&got, &want);
            if half {
                // Observed: bit-exact on Flex (AVX2); a float32 sum of the outlier part in
                // another order may move a float16 rounding by one ulp.
                assert!(ulps <= 1.0, "{case} {storage:?}: {ulps} float16 ulps");
            } else {
                for (g, w) in got.iter().zip(&want) {
                    assert!(
                        (g - w).abs() <= 16.0 * f32::EPSILON * w.abs().max(1.0),
                        "{case}: {g} vs {w}"
                    );
                }
            }
        }
    }
}
