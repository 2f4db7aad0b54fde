//! Attaching a fresh adapter to a model from `add_adapter` options.
//!
//! Modules are selected with [`super::targets`], then each gets the method's layer with PEFT's
//! initialisation, drawn from one ChaCha8 stream per purpose (`seed` for LoRA-style factors,
//! `projection_seed` for VeRA's shared matrices), in model order, so the same options always
//! give the same adapter.

use super::adalora::{AdaLoraLayer, RankAllocator};
use super::dora::DoraLayer;
use super::flix::{FlixExpert, FlixLayer};
use super::ia3::Ia3Layer;
use super::init::{lora_a, normal, vera_kaiming};
use super::lora::{scaling, LoraLayer};
use super::pissa::pissa_init;
use super::vera::VeraLayer;
use super::{targets, AdapterError, AdapterOptions, Dims, LinearAdapter, Method};
use crate::model::handle::to_host;
use crate::model::linear::{BaseWeight, Linear};
use crate::model::llama::CausalLm;
use crate::quant::QuantBackend;
use crate::tensor::HostTensor;
use burn::tensor::{Tensor, TensorData};
use std::collections::BTreeMap;

/// PiSSA's initial factors of one module (needed to convert the trained adapter on save).
#[derive(Debug, Clone)]
pub struct PissaFactors {
    /// `A₀`, `[r, in]`.
    pub a0: Vec<f32>,
    /// `B₀`, `[out, r]`.
    pub b0: Vec<f32>,
}

/// What attaching produced besides the layers.
#[derive(Default)]
pub struct Attached {
    /// Adapted module paths, in model order.
    pub modules: Vec<String>,
    /// VeRA's shared `(A, B)`.
    pub vera_shared: Option<(HostTensor, HostTensor)>,
    /// PiSSA initial factors per module.
    pub pissa: BTreeMap<String, PissaFactors>,
    /// AdaLoRA's allocator.
    pub allocator: Option<RankAllocator>,
}

/// Whether a module is one of IA³'s feed-forward modules.
pub fn is_feedforward(module: &str, ff: &[String]) -> bool {
    ff.iter()
        .any(|f| module == f || module.ends_with(&format!(".{f}")))
}

/// Replaces a dense base weight (PiSSA residual, merges).
pub fn set_dense_weight<B: QuantBackend>(layer: &mut Linear<B>, w: Tensor<B, 2>) {
    layer.weight = BaseWeight::Dense(w);
}

/// Bytes per trainable parameter: the f32 value, its gradient and AdamW's two moments.
const BYTES_PER_TRAINABLE: u64 = 16;

/// Refuses an adapter whose parameters (with gradients and optimizer moments) would not fit
/// in this machine's memory, before anything is allocated: a rank of 10⁹ must be an error,
/// not an aborted process.
fn check_budget<B: QuantBackend>(
    lm: &CausalLm<B>,
    modules: &[String],
    opts: &AdapterOptions,
    method: Method,
    r: usize,
) -> Result<(), AdapterError> {
    let r = r as u128;
    let mut total: u128 = 0;
    let (mut max_in, mut max_out) = (0u128, 0u128);
    for (name, l) in lm.linears() {
        if !modules.contains(&name) {
            continue;
        }
        let (i, o) = (l.in_features as u128, l.out_features as u128);
        max_in = max_in.max(i);
        max_out = max_out.max(o);
        let per = match method {
            Method::Lora | Method::Pissa => r.saturating_mul(i + o),
            Method::Dora => r.saturating_mul(i + o).saturating_add(o),
            Method::Vera => r.saturating_add(o),
            Method::Adalora => (opts.init_r as u128).saturating_mul(i + o + 1),
            Method::Ia3 => i.max(o),
            Method::Flix => opts
                .features
                .iter()
                .flatten()
                .map(|(f, values)| {
                    let rf = opts
                        .feature_rank
                        .as_ref()
                        .and_then(|m| m.get(f))
                        .map_or(r, |&x| x as u128);
                    rf.saturating_mul(i + o)
                        .saturating_mul(values.len() as u128)
                })
                .fold(0u128, u128::saturating_add),
        };
        total = total.saturating_add(per);
    }
    if method == Method::Vera {
        // The shared projections (frozen, f32, no optimizer state).
        let shared = r.saturating_mul(max_in + max_out);
        total = total.saturating_add(shared / u128::from(BYTES_PER_TRAINABLE / 4));
    }
    let rank = match method {
        Method::Adalora => format!(" with init_r = {}", opts.init_r),
        Method::Ia3 => String::new(),
        Method::Flix => match &opts.feature_rank {
            Some(fr) => format!(" with r = {r} and feature_rank = {fr:?}"),
            None => format!(" with r = {r}"),
        },
        _ => format!(" with r = {r}"),
    };
    let what = format!(
        "the {} adapter{rank} on {} modules ({total} parameters; {BYTES_PER_TRAINABLE} bytes \
         each with gradient and AdamW moments)",
        method.name(),
        modules.len()
    );
    crate::limits::check_alloc(&what, total, BYTES_PER_TRAINABLE)?;
    Ok(())
}

/// One layer's new adapter and, for PiSSA, its residual base weight.
type Built<B> = (Box<dyn LinearAdapter<B>>, Option<Tensor<B, 2>>);

/// Attaches a new adapter; errors if one is attached already.
pub fn attach<B: QuantBackend>(
    lm: &mut CausalLm<B>,
    opts: &AdapterOptions,
) -> Result<Attached, AdapterError> {
    let method = opts.validate()?;
    let names: Vec<String> = lm.linears().into_iter().map(|(n, _)| n).collect();
    if lm.linears().iter().any(|(_, l)| l.adapter.is_some()) {
        return Err(AdapterError::Unsupported(
            "an adapter is already attached; remove_adapter() first".into(),
        ));
    }
    let modules = targets::select(&names, &opts.targets_or_default()?, opts.layers.as_deref())?;
    let device = lm.device.clone();
    let r = opts.rank()?;
    let alpha = opts.alpha_value()?;
    check_budget(lm, &modules, opts, method, r)?;
    let mut rng = crate::rng::derived(opts.seed, "adapter-init");
    let mut out = Attached {
        modules: modules.clone(),
        ..Default::default()
    };

    let (shared_a, shared_b) = if method == Method::Vera {
        let mut max_in = 0;
        let mut max_out = 0;
        for (n, l) in lm.linears() {
            if modules.contains(&n) {
                max_in = max_in.max(l.in_features);
                max_out = max_out.max(l.out_features);
            }
        }
        let mut prng = crate::rng::derived(opts.projection_seed, "vera-projection");
        let a = vera_kaiming(r, max_in, &mut prng);
        let b = vera_kaiming(max_out, r, &mut prng);
        out.vera_shared = Some((
            HostTensor::f32(vec![r, max_in], a.clone())
                .map_err(|e| AdapterError::Option(e.to_string()))?,
            HostTensor::f32(vec![max_out, r], b.clone())
                .map_err(|e| AdapterError::Option(e.to_string()))?,
        ));
        (
            Some(Tensor::<B, 2>::from_data(
                TensorData::new(a, [r, max_in]),
                &device,
            )),
            Some(Tensor::<B, 2>::from_data(
                TensorData::new(b, [max_out, r]),
                &device,
            )),
        )
    } else {
        (None, None)
    };
    let ff = opts
        .feedforward
        .clone()
        .unwrap_or_else(|| vec!["down_proj".to_string()]);
    let s = scaling(alpha, r, opts.rslora);

    // Every layer's adapter (and PiSSA's residual base weight) is built before any is attached:
    // an error on the third module (PiSSA's SVD interrupted with Ctrl-C) leaves the model as it
    // was.
    let mut built: BTreeMap<String, Built<B>> = BTreeMap::new();
    for (name, layer) in lm.linears() {
        if !modules.contains(&name) {
            continue;
        }
        let (inp, outf) = (layer.in_features, layer.out_features);
        let lora_init = |rng: &mut crate::rng::Rng| -> Vec<f32> {
            if opts.init == "gaussian" {
                normal(r * inp, 1.0 / r as f64, rng)
            } else {
                lora_a(r, inp, rng)
            }
        };
        let mut residual = None;
        let adapter: Box<dyn LinearAdapter<B>> = match method {
            Method::Lora | Method::Dora => {
                let l = LoraLayer::from_host(
                    lora_init(&mut rng),
                    vec![0.0; outf * r],
                    Dims {
                        r,
                        in_f: inp,
                        out_f: outf,
                    },
                    s,
                    opts.dropout,
                    &device,
                );
                if method == Method::Dora {
                    Box::new(DoraLayer::new(l, layer))
                } else {
                    Box::new(l)
                }
            }
            Method::Pissa => {
                let niter = opts
                    .init
                    .strip_prefix("pissa_niter_")
                    .and_then(|k| k.parse().ok());
                let (_, w) = to_host(layer.dense_weight())
                    .map_err(|e| AdapterError::Unsupported(e.to_string()))?;
                let p = pissa_init(&w, outf, inp, r, s, niter, opts.seed)?;
                let dtype = layer.dense_weight().dtype();
                let res = Tensor::<B, 2>::from_data(
                    TensorData::new(p.residual, [outf, inp]),
                    (&device, dtype),
                );
                residual = Some(res);
                out.pissa.insert(
                    name.clone(),
                    PissaFactors {
                        a0: p.a.clone(),
                        b0: p.b.clone(),
                    },
                );
                let mut l = LoraLayer::from_host(
                    p.a,
                    p.b,
                    Dims {
                        r,
                        in_f: inp,
                        out_f: outf,
                    },
                    s,
                    opts.dropout,
                    &device,
                );
                l.kind = "pissa";
                Box::new(l)
            }
            Method::Vera => {
                let (Some(a), Some(b)) = (&shared_a, &shared_b) else {
                    return Err(AdapterError::Unsupported(
                        "vera: shared matrices missing".into(),
                    ));
                };
                Box::new(VeraLayer::new(
                    a,
                    b,
                    inp,
                    outf,
                    opts.d_initial,
                    opts.dropout,
                ))
            }
            Method::Adalora => {
                let ri = opts.init_r;
                let a = normal(ri * inp, 0.02, &mut rng);
                let b = normal(outf * ri, 0.02, &mut rng);
                Box::new(AdaLoraLayer::from_host(
                    [a, vec![0.0; ri], b],
                    Dims {
                        r: ri,
                        in_f: inp,
                        out_f: outf,
                    },
                    opts.alpha.unwrap_or(2.0 * ri as f64),
                    ri as f64,
                    opts.dropout,
                    &device,
                ))
            }
            Method::Ia3 => Box::new(Ia3Layer::new(layer, is_feedforward(&name, &ff), &device)),
            Method::Flix => {
                let feats = opts.features.clone().unwrap_or_default();
                let mut experts = Vec::new();
                for (f, values) in &feats {
                    let rf = opts
                        .feature_rank
                        .as_ref()
                        .and_then(|m| m.get(f))
                        .copied()
                        .unwrap_or(r);
                    let sf = scaling(alpha, rf, opts.rslora);
                    for v in values {
                        let a = if opts.init == "gaussian" {
                            normal(rf * inp, 1.0 / rf as f64, &mut rng)
                        } else {
                            lora_a(rf, inp, &mut rng)
                        };
                        let mut l = LoraLayer::from_host(
                            a,
                            vec![0.0; outf * rf],
                            Dims {
                                r: rf,
                                in_f: inp,
                                out_f: outf,
                            },
                            sf,
                            0.0,
                            &device,
                        );
                        l.a.key = format!("flix.{f}.{v}.lora_A.weight");
                        l.b.key = format!("flix.{f}.{v}.lora_B.weight");
                        experts.push(FlixExpert {
                            feature: f.clone(),
                            value: v.clone(),
                            lora: l,
                        });
                    }
                }
                Box::new(FlixLayer {
                    experts,
                    active: BTreeMap::new(),
                    dropout: opts.dropout,
                })
            }
        };
        built.insert(name, (adapter, residual));
    }
    for (name, layer) in lm.linears_mut() {
        if let Some((adapter, residual)) = built.remove(&name) {
            if let Some(w) = residual {
                set_dense_weight(layer, w);
            }
            layer.adapter = Some(adapter);
        }
    }
    if method == Method::Adalora {
        out.allocator = Some(RankAllocator::new(opts, modules.len()));
    }
    Ok(out)
}
