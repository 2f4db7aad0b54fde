//! Binding of the quantisation probe (docs/API.md "Quantisation probes").

use rhai::{Dynamic, Engine, Map};
use serde::Deserialize;

use crate::host::{bind, fail, parse_opts, Handle, ResultExt, RhaiResult, Session};
use crate::quant::{quantize_probe, ProbeTensor, QuantConfig};
use crate::tensor::HostTensor;

#[derive(Debug, Deserialize)]
#[serde(deny_unknown_fields, default)]
struct QuantOpts {
    kind: String,
    block_size: i64,
    double_quant: bool,
}

impl Default for QuantOpts {
    fn default() -> Self {
        QuantOpts {
            kind: "nf4".into(),
            block_size: 64,
            double_quant: false,
        }
    }
}

fn host(t: &ProbeTensor) -> RhaiResult<HostTensor> {
    let r = match t {
        ProbeTensor::U8 { data, shape } => {
            HostTensor::i64(shape.clone(), data.iter().map(|&x| i64::from(x)).collect())
        }
        ProbeTensor::I8 { data, shape } => {
            HostTensor::i64(shape.clone(), data.iter().map(|&x| i64::from(x)).collect())
        }
        ProbeTensor::F32 { data, shape } => HostTensor::f32(shape.clone(), data.clone()),
    };
    r.ctx("quantize")
}

/// The introduction of this area in docs/API.md (`peftlab doc --markdown`).
pub const AREA_DOC: &str = r#"Quantisation exactly as bitsandbytes does it, exposed as a probe for checks
(`load_model(path, #{ quant })` stores the frozen base weights in the same formats)."#;

/// Registers the quantisation bindings.
pub fn register(engine: &mut Engine, _session: &Session) {
    bind(engine, "quantize", ["t", "opts"], "
        Quantises a tensor exactly as bitsandbytes does and returns its parts as Tensors.
        nf4/fp4: packed (u8, two codes per byte, first element in the high nibble), absmax, dequant, code; with double_quant also
        absmax_q, offset, state2_absmax, state2_code. int8: q, row_absmax, dequant. Options kind, block_size (64), double_quant.

        ```rhai
        let q = quantize(w, #{ kind: \"nf4\", block_size: 64, double_quant: true });
        print(max_abs_diff(q.dequant, w));
        ```", |t: Handle<HostTensor>, o: Map| -> RhaiResult<Map> {
        let o: QuantOpts = parse_opts("quantize", &o)?;
        let cfg = QuantConfig::from_parts(&o.kind, o.block_size, o.double_quant).ctx("quantize")?;
        let t = t.borrow("quantize")?;
        if t.is_int() {
            return Err(fail("quantize: expected a float tensor (got an integer tensor)"));
        }
        let p = quantize_probe(&t.values_f32(), &t.shape, &cfg).ctx("quantize")?;
        let mut out = Map::new();
        for (name, pt) in &p.fields {
            out.insert((*name).into(), Dynamic::from(Handle::new(host(pt)?)));
        }
        Ok(out)
    });
}
