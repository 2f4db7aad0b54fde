//! The `quantize(t, opts)` probe of the Rhai surface (docs/API.md, "Quantisation probes"):
//! quantise one tensor and return every stored field in the bitsandbytes layout, plus the
//! dequantised tensor, so that scripts can compare with bitsandbytes outputs.

use super::fourbit::{quantize_4bit, Absmax};
use super::int8::quantize_int8;
use super::{QuantConfig, QuantError, QuantKind};

/// One field of a probe result: typed data and its shape.
#[derive(Debug, Clone, PartialEq)]
pub enum ProbeTensor {
    /// Unsigned bytes (packed 4-bit codes, 8-bit absmax codes).
    U8 {
        /// Values.
        data: Vec<u8>,
        /// Shape.
        shape: Vec<usize>,
    },
    /// Signed bytes (int8 codes).
    I8 {
        /// Values.
        data: Vec<i8>,
        /// Shape.
        shape: Vec<usize>,
    },
    /// float32 values.
    F32 {
        /// Values.
        data: Vec<f32>,
        /// Shape.
        shape: Vec<usize>,
    },
}

impl ProbeTensor {
    fn u8(data: Vec<u8>) -> Self {
        let shape = vec![data.len()];
        ProbeTensor::U8 { data, shape }
    }
    fn f32(data: Vec<f32>) -> Self {
        let shape = vec![data.len()];
        ProbeTensor::F32 { data, shape }
    }

    /// The shape of the field.
    pub fn shape(&self) -> &[usize] {
        match self {
            ProbeTensor::U8 { shape, .. }
            | ProbeTensor::I8 { shape, .. }
            | ProbeTensor::F32 { shape, .. } => shape,
        }
    }
}

/// The fields of a probe, in a fixed order (see [`quantize_probe`]).
#[derive(Debug, Clone, PartialEq)]
pub struct QuantProbe {
    /// The kind probed.
    pub kind: QuantKind,
    /// `(name, value)` pairs.
    pub fields: Vec<(&'static str, ProbeTensor)>,
}

impl QuantProbe {
    /// The field of the given name.
    pub fn get(&self, name: &str) -> Option<&ProbeTensor> {
        self.fields.iter().find(|(n, _)| *n == name).map(|(_, t)| t)
    }
}

/// Quantises `data` (of `shape`) with `cfg` and returns the stored fields:
/// - nf4/fp4: `packed` (u8 `[ceil(n/2)]`, first element in the high nibble), `absmax` (f32 per
///   block; with double quantisation the dequantised values), `dequant` (f32, `shape`), `code`
///   (the 16-entry table); with `double_quant` also `absmax_q` (u8 per block), `offset` (f32
///   `[1]`), `state2_absmax` (f32 per 256 blocks), `state2_code` (the 256-entry map);
/// - int8: `q` (i8, `shape`), `row_absmax` (f32 per row), `dequant` (f32, `shape`).
///
/// `none` has nothing to probe and gives an error.
pub fn quantize_probe(
    data: &[f32],
    shape: &[usize],
    cfg: &QuantConfig,
) -> Result<QuantProbe, QuantError> {
    cfg.validate()?;
    let mut fields = Vec::new();
    match cfg.kind {
        QuantKind::Nf4 | QuantKind::Fp4 => {
            let q = quantize_4bit(data, shape, cfg)?;
            let dequant = q.dequantize()?;
            fields.push(("packed", ProbeTensor::u8(q.packed.clone())));
            fields.push(("absmax", ProbeTensor::f32(q.absmax_values())));
            fields.push((
                "dequant",
                ProbeTensor::F32 {
                    data: dequant,
                    shape: shape.to_vec(),
                },
            ));
            fields.push(("code", ProbeTensor::f32(q.code.to_vec())));
            if let Absmax::Double(d) = &q.absmax {
                fields.push(("absmax_q", ProbeTensor::u8(d.absmax_q.clone())));
                fields.push(("offset", ProbeTensor::f32(vec![d.offset])));
                fields.push(("state2_absmax", ProbeTensor::f32(d.state2_absmax.clone())));
                fields.push(("state2_code", ProbeTensor::f32(d.state2_code.to_vec())));
            }
        }
        QuantKind::Int8 | QuantKind::Int8Weight => {
            let q = quantize_int8(data, shape)?;
            let dequant = q.dequantize()?;
            fields.push((
                "q",
                ProbeTensor::I8 {
                    data: q.q,
                    shape: shape.to_vec(),
                },
            ));
            fields.push(("row_absmax", ProbeTensor::f32(q.row_absmax)));
            fields.push((
                "dequant",
                ProbeTensor::F32 {
                    data: dequant,
                    shape: shape.to_vec(),
                },
            ));
        }
        QuantKind::None => {
            return Err(QuantError::KindNotSupported {
                func: "quantize",
                kind: QuantKind::None,
                expected: "nf4, fp4, int8",
            })
        }
    }
    Ok(QuantProbe {
        kind: cfg.kind,
        fields,
    })
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn probe_fields() {
        let x: Vec<f32> = (0..96).map(|i| (i as f32 - 40.0) / 64.0).collect();
        let cfg = QuantConfig::new(QuantKind::Nf4).with_double_quant(true);
        let p = quantize_probe(&x, &[2, 48], &cfg).unwrap();
        let names: Vec<_> = p.fields.iter().map(|(n, _)| *n).collect();
        assert_eq!(
            names,
            [
                "packed",
                "absmax",
                "dequant",
                "code",
                "absmax_q",
                "offset",
                "state2_absmax",
                "state2_code"
            ]
        );
        assert_eq!(p.get("packed").unwrap().shape(), &[48]);
        assert_eq!(p.get("absmax").unwrap().shape(), &[2]); // 96 = 64 + a tail of 32
        assert_eq!(p.get("dequant").unwrap().shape(), &[2, 48]);
        let p = quantize_probe(&x, &[2, 48], &QuantConfig::new(QuantKind::Int8)).unwrap();
        assert_eq!(p.get("q").unwrap().shape(), &[2, 48]);
        assert_eq!(p.get("row_absmax").unwrap().shape(), &[2]);
        let e = quantize_probe(&x, &[96], &QuantConfig::new(QuantKind::None)).unwrap_err();
        assert_eq!(
            e.to_string(),
            "quantize: kind 'none' is not supported here (expected one of: nf4, fp4, int8)"
        );
    }
}
