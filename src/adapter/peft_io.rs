//! PEFT's on-disk format: `adapter_config.json` + `adapter_model.safetensors`.
//!
//! Keys are `base_model.model.<module path>.<param>` (PEFT `utils/save_and_load.py`, adapter
//! name stripped): `lora_A.weight` `[r, in]`, `lora_B.weight` `[out, r]`,
//! `lora_magnitude_vector` `[out]` (DoRA), `vera_lambda_b` `[out]`, `vera_lambda_d` `[r]` plus
//! `base_model.vera_A`/`vera_B`, bare `lora_A`/`lora_E`/`lora_B` (AdaLoRA, pruned by
//! `rank_pattern`), `ia3_l` (`[out, 1]`, or `[1, in]` for feed-forward modules). PiSSA is saved
//! converted to a rank-2r LoRA of the original weights. FLix uses peftlab's own `FLIX` type.
//! `adapter_config.json` holds only keys that the method's PEFT config class declares (PEFT
//! 0.21.2 `PeftConfigMixin.from_peft_type` warns "upgrade PEFT" on any other key), so peftlab's
//! full options and version go to a sidecar, [`SIDECAR`]; older directories that carry them as
//! `peftlab_options` inside the config still load.

use super::adalora::AdaLoraLayer;
use super::attach::is_feedforward;
use super::dora::DoraLayer;
use super::flix::{FlixExpert, FlixLayer};
use super::ia3::Ia3Layer;
use super::lora::{scaling, LoraLayer};
use super::pissa::convert_to_lora;
use super::state::AdapterState;
use super::vera::VeraLayer;
use super::{AdapterError, AdapterOptions, Dims, LinearAdapter, Method, Param, Targets};
use crate::model::handle::to_host;
use crate::model::llama::CausalLm;
use crate::quant::QuantBackend;
use crate::tensor::{load_safetensors, HostTensor};
use burn::tensor::{Tensor, TensorData};
use serde_json::{json, Value};
use std::collections::BTreeMap;
use std::path::Path;

const PREFIX: &str = "base_model.model.";

/// The file next to `adapter_config.json` with peftlab's own metadata (`peftlab_version`, the
/// full `options` of `add_adapter`, or `export_of` for `export_lora`); PEFT and vLLM ignore it.
pub const SIDECAR: &str = "peftlab.json";

/// Writes [`SIDECAR`] into `dir` (atomically).
pub fn write_sidecar(
    dir: &Path,
    mut fields: serde_json::Map<String, Value>,
) -> Result<(), AdapterError> {
    fields.insert("peftlab_version".into(), env!("CARGO_PKG_VERSION").into());
    let text = serde_json::to_string_pretty(&Value::Object(fields))
        .map_err(|e| AdapterError::file(dir.display(), e))?;
    crate::fsutil::write_atomic(&dir.join(SIDECAR), text.as_bytes())
        .map_err(|e| AdapterError::file(dir.display(), e))
}

fn host<B: QuantBackend>(p: &Param<B>) -> Result<Vec<f32>, AdapterError> {
    to_host(p.get())
        .map(|x| x.1)
        .map_err(|e| AdapterError::Unsupported(e.to_string()))
}

fn ht(shape: Vec<usize>, v: Vec<f32>) -> Result<HostTensor, AdapterError> {
    HostTensor::f32(shape, v).map_err(|e| AdapterError::Unsupported(e.to_string()))
}

/// Keeps rows (`axis 0`) or columns (`axis 1`) of a row-major `[rows, cols]` matrix.
fn keep(v: &[f32], rows: usize, cols: usize, axis: usize, mask: &[bool]) -> Vec<f32> {
    let mut out = Vec::new();
    for i in 0..rows {
        for j in 0..cols {
            let k = if axis == 0 { i } else { j };
            if mask[k] {
                out.push(v[i * cols + j]);
            }
        }
    }
    out
}

/// The adapter's tensors under their PEFT keys, exactly as `save_adapter` writes them.
pub fn adapter_tensors<B: QuantBackend>(
    lm: &CausalLm<B>,
    st: &AdapterState,
) -> Result<BTreeMap<String, HostTensor>, AdapterError> {
    let mut out = BTreeMap::new();
    let pattern = st.allocator.as_ref().and_then(|a| a.rank_pattern.clone());
    for (name, layer) in lm.linears() {
        let Some(ad) = &layer.adapter else { continue };
        let prefix = format!("{PREFIX}{name}");
        if st.method == Method::Pissa {
            let (Some(l), Some(init)) = (
                ad.as_any().downcast_ref::<LoraLayer<B>>(),
                st.pissa.get(&name),
            ) else {
                return Err(AdapterError::Unsupported(format!(
                    "pissa: initial factors of {name} are missing"
                )));
            };
            let (a2, b2) = convert_to_lora(
                &host(&l.a)?,
                &host(&l.b)?,
                &init.a0,
                &init.b0,
                l.r,
                layer.out_features,
            );
            out.insert(
                format!("{prefix}.lora_A.weight"),
                ht(vec![2 * l.r, layer.in_features], a2)?,
            );
            out.insert(
                format!("{prefix}.lora_B.weight"),
                ht(vec![layer.out_features, 2 * l.r], b2)?,
            );
            continue;
        }
        if let (Some(l), Some(p)) = (ad.as_any().downcast_ref::<AdaLoraLayer<B>>(), &pattern) {
            if let Some(mask) = p.get(&format!("{name}.lora_E")) {
                let r = l.mask.len();
                let k = mask.iter().filter(|&&m| m).count();
                let (inp, o) = (layer.in_features, layer.out_features);
                out.insert(
                    format!("{prefix}.lora_A"),
                    ht(vec![k, inp], keep(&host(&l.a)?, r, inp, 0, mask))?,
                );
                out.insert(
                    format!("{prefix}.lora_E"),
                    ht(vec![k, 1], keep(&host(&l.e)?, r, 1, 0, mask))?,
                );
                out.insert(
                    format!("{prefix}.lora_B"),
                    ht(vec![o, k], keep(&host(&l.b)?, o, r, 1, mask))?,
                );
                continue;
            }
        }
        for p in ad.params() {
            out.insert(
                format!("{prefix}.{}", p.key),
                ht(p.saved_shape.clone(), host(p)?)?,
            );
        }
    }
    if let Some((a, b)) = &st.vera_shared {
        out.insert("base_model.vera_A".into(), a.clone());
        out.insert("base_model.vera_B".into(), b.clone());
    }
    Ok(out)
}

/// The `adapter_config.json` content.
pub fn config_json(st: &AdapterState, base_path: &str) -> Result<Value, AdapterError> {
    let o = &st.options;
    let r = o.rank()?;
    let alpha = o.alpha_value()?;
    let common = json!({
        "task_type": "CAUSAL_LM",
        "base_model_name_or_path": base_path,
        "target_modules": st.modules,
        "inference_mode": true,
        "fan_in_fan_out": false,
        "modules_to_save": null,
    });
    let specific = match st.method {
        Method::Lora | Method::Dora | Method::Pissa => {
            let (r, alpha) = if st.method == Method::Pissa {
                (
                    2 * r,
                    if o.rslora {
                        alpha * 2f64.sqrt()
                    } else {
                        2.0 * alpha
                    },
                )
            } else {
                (r, alpha)
            };
            json!({
                "peft_type": "LORA", "r": r, "lora_alpha": alpha, "lora_dropout": o.dropout,
                "bias": "none", "layers_to_transform": null,
                "use_rslora": o.rslora, "use_dora": st.method == Method::Dora,
                "init_lora_weights": if o.init == "gaussian" { json!("gaussian") } else { json!(true) },
                "rank_pattern": {}, "alpha_pattern": {},
            })
        }
        Method::Vera => json!({
            "peft_type": "VERA", "r": r, "projection_prng_key": o.projection_seed,
            "bias": "none", "layers_to_transform": null,
            "save_projection": true, "vera_dropout": o.dropout, "d_initial": o.d_initial,
            "init_weights": true,
        }),
        Method::Adalora => {
            let pattern = st.allocator.as_ref().and_then(|a| a.rank_pattern.clone());
            json!({
                // No "r": AdaLoRA ignores it and PEFT warns when it differs from LoraConfig's 8.
                "peft_type": "ADALORA", "init_r": o.init_r, "target_r": o.target_r,
                "bias": "none", "layers_to_transform": null,
                "tinit": o.tinit, "tfinal": o.tfinal, "deltaT": o.delta_t, "beta1": o.beta1,
                "beta2": o.beta2, "orth_reg_weight": o.orth_reg, "total_step": o.total_steps,
                "lora_alpha": o.alpha.unwrap_or(2.0 * o.init_r as f64), "lora_dropout": o.dropout,
                "init_lora_weights": true, "rank_pattern": pattern,
            })
        }
        Method::Ia3 => {
            let ff = o
                .feedforward
                .clone()
                .unwrap_or_else(|| vec!["down_proj".into()]);
            let ff_mods: Vec<&String> = st
                .modules
                .iter()
                .filter(|m| is_feedforward(m, &ff))
                .collect();
            json!({ "peft_type": "IA3", "feedforward_modules": ff_mods, "init_ia3_weights": true })
        }
        Method::Flix => json!({
            "peft_type": "FLIX", "r": r, "lora_alpha": alpha, "use_rslora": o.rslora,
            "lora_dropout": o.dropout, "features": o.features, "feature_rank": o.feature_rank,
            "feature_dropout": o.feature_dropout,
        }),
    };
    let mut m = common.as_object().cloned().unwrap_or_default();
    if let Value::Object(s) = specific {
        m.extend(s);
    }
    Ok(Value::Object(m))
}

/// Writes the adapter directory (atomically per file).
pub fn save<B: QuantBackend>(
    lm: &CausalLm<B>,
    st: &AdapterState,
    dir: &Path,
    base_path: &str,
) -> Result<(), AdapterError> {
    let tensors = adapter_tensors(lm, st)?;
    let cfg = config_json(st, base_path)?;
    std::fs::create_dir_all(dir).map_err(|e| AdapterError::file(dir.display(), e))?;
    crate::tensor::save_safetensors(&tensors, &dir.join("adapter_model.safetensors"))
        .map_err(|e| AdapterError::file(dir.display(), e))?;
    let text =
        serde_json::to_string_pretty(&cfg).map_err(|e| AdapterError::file(dir.display(), e))?;
    crate::fsutil::write_atomic(&dir.join("adapter_config.json"), text.as_bytes())
        .map_err(|e| AdapterError::file(dir.display(), e))?;
    let mut side = serde_json::Map::new();
    side.insert(
        "options".into(),
        serde_json::to_value(&st.options).unwrap_or(Value::Null),
    );
    write_sidecar(dir, side)
}

const SUFFIXES: &[&str] = &[
    "lora_A.weight",
    "lora_B.weight",
    "lora_magnitude_vector.weight",
    "lora_magnitude_vector",
    "lora_A",
    "lora_B",
    "lora_E",
    "vera_lambda_b",
    "vera_lambda_d",
    "ia3_l",
];

/// Splits a PEFT key into (module path, parameter suffix).
fn split_key(key: &str) -> Option<(String, String)> {
    let rest = key.strip_prefix(PREFIX)?;
    if let Some(i) = rest.find(".flix.") {
        return Some((rest[..i].to_string(), rest[i + 1..].to_string()));
    }
    for s in SUFFIXES {
        if let Some(m) = rest.strip_suffix(&format!(".{s}")) {
            return Some((m.to_string(), s.to_string()));
        }
    }
    None
}

fn num(cfg: &Value, key: &str) -> Option<f64> {
    cfg.get(key).and_then(Value::as_f64)
}

fn pattern_value(cfg: &Value, key: &str, module: &str) -> Option<f64> {
    let map = cfg.get(key)?.as_object()?;
    map.iter()
        .find(|(k, _)| {
            regex::Regex::new(&format!(r"^(?:.*\.)?(?:{k})$")).is_ok_and(|re| re.is_match(module))
        })
        .and_then(|(_, v)| v.as_f64())
}

/// Reads a PEFT adapter directory and attaches it to the model.
pub fn load<B: QuantBackend>(
    lm: &mut CausalLm<B>,
    dir: &Path,
) -> Result<AdapterState, AdapterError> {
    let cfg_path = dir.join("adapter_config.json");
    let text = std::fs::read_to_string(&cfg_path)
        .map_err(|e| AdapterError::file(cfg_path.display(), e))?;
    let cfg: Value =
        serde_json::from_str(&text).map_err(|e| AdapterError::file(cfg_path.display(), e))?;
    let st_path = dir.join("adapter_model.safetensors");
    let tensors =
        load_safetensors(&st_path).map_err(|e| AdapterError::file(st_path.display(), e))?;
    let peft_type = cfg.get("peft_type").and_then(Value::as_str).unwrap_or("");
    let method = match peft_type {
        "LORA" if cfg.get("use_dora").and_then(Value::as_bool) == Some(true) => Method::Dora,
        "LORA" => Method::Lora,
        "VERA" => Method::Vera,
        "ADALORA" => Method::Adalora,
        "IA3" => Method::Ia3,
        "FLIX" => Method::Flix,
        other => {
            return Err(AdapterError::file(
                cfg_path.display(),
                format!(
                    "unsupported peft_type '{other}' (supported: LORA, VERA, ADALORA, IA3, FLIX)"
                ),
            ))
        }
    };
    if lm.linears().iter().any(|(_, l)| l.adapter.is_some()) {
        return Err(AdapterError::Unsupported(
            "an adapter is already attached; remove_adapter() first".into(),
        ));
    }
    let mut groups: BTreeMap<String, BTreeMap<String, HostTensor>> = BTreeMap::new();
    for (k, t) in &tensors {
        if k == "base_model.vera_A" || k == "base_model.vera_B" {
            continue;
        }
        let (m, s) = split_key(k).ok_or_else(|| {
            AdapterError::file(st_path.display(), format!("unexpected tensor key '{k}'"))
        })?;
        groups.entry(m).or_default().insert(s, t.clone());
    }
    let names: Vec<String> = lm.linears().into_iter().map(|(n, _)| n).collect();
    if let Some(missing) = groups.keys().find(|m| !names.contains(m)) {
        return Err(AdapterError::file(
            st_path.display(),
            format!(
                "module '{missing}' does not exist in this model (is it the right base model?)"
            ),
        ));
    }
    let device = lm.device.clone();
    let alpha = num(&cfg, "lora_alpha").unwrap_or(8.0);
    let rslora = cfg
        .get("use_rslora")
        .and_then(Value::as_bool)
        .unwrap_or(false);
    let dropout = num(&cfg, "lora_dropout")
        .or(num(&cfg, "vera_dropout"))
        .unwrap_or(0.0);
    let init_r = num(&cfg, "init_r").unwrap_or(12.0) as usize;
    let shared = match method {
        Method::Vera => {
            let get = |k: &str| {
                tensors.get(k).cloned().ok_or_else(|| {
                    AdapterError::file(st_path.display(), format!("VeRA adapter without '{k}' (save_projection=False is not supported: the projections cannot be regenerated outside torch)"))
                })
            };
            Some((get("base_model.vera_A")?, get("base_model.vera_B")?))
        }
        _ => None,
    };
    let shared_dev = shared.as_ref().map(|(a, b)| {
        (
            Tensor::<B, 2>::from_data(
                TensorData::new(a.values_f32(), [a.shape[0], a.shape[1]]),
                &device,
            ),
            Tensor::<B, 2>::from_data(
                TensorData::new(b.values_f32(), [b.shape[0], b.shape[1]]),
                &device,
            ),
        )
    });
    let ff_modules: Vec<String> = cfg
        .get("feedforward_modules")
        .and_then(|v| serde_json::from_value(v.clone()).ok())
        .unwrap_or_default();
    let mut modules = Vec::new();
    let mut first_r = None;
    for (name, layer) in lm.linears_mut() {
        let Some(g) = groups.get(&name) else { continue };
        let (inp, outf) = (layer.in_features, layer.out_features);
        let get = |k: &str, shape: Option<Vec<usize>>| -> Result<Vec<f32>, AdapterError> {
            let t = g.get(k).ok_or_else(|| {
                AdapterError::file(st_path.display(), format!("missing '{PREFIX}{name}.{k}'"))
            })?;
            if let Some(s) = shape {
                if t.shape != s {
                    return Err(AdapterError::Shape {
                        name: format!("{PREFIX}{name}.{k}"),
                        expected: s,
                        found: t.shape.clone(),
                    });
                }
            }
            Ok(t.values_f32())
        };
        let rank_of = |k: &str, axis: usize| {
            g.get(k)
                .and_then(|t| t.shape.get(axis).copied())
                .unwrap_or(0)
        };
        let adapter: Box<dyn LinearAdapter<B>> = match method {
            Method::Lora | Method::Dora | Method::Pissa => {
                let r = rank_of("lora_A.weight", 0);
                let a = get("lora_A.weight", Some(vec![r, inp]))?;
                let b = get("lora_B.weight", Some(vec![outf, r]))?;
                let al = pattern_value(&cfg, "alpha_pattern", &name).unwrap_or(alpha);
                first_r.get_or_insert(r);
                let l = LoraLayer::from_host(
                    a,
                    b,
                    Dims {
                        r,
                        in_f: inp,
                        out_f: outf,
                    },
                    scaling(al, r, rslora),
                    dropout,
                    &device,
                );
                if method == Method::Dora {
                    let key = if g.contains_key("lora_magnitude_vector") {
                        "lora_magnitude_vector"
                    } else {
                        "lora_magnitude_vector.weight"
                    };
                    let m = get(key, Some(vec![outf]))?;
                    let mut d = DoraLayer::new(l, layer);
                    d.magnitude.value = Tensor::from_data(TensorData::new(m, [1, outf]), &device);
                    Box::new(d)
                } else {
                    Box::new(l)
                }
            }
            Method::Vera => {
                let Some((sa, sb)) = &shared_dev else {
                    unreachable_vera()?
                };
                let r = sa.dims()[0];
                if sa.dims()[1] < inp || sb.dims()[0] < outf {
                    return Err(AdapterError::Shape {
                        name: "base_model.vera_A/vera_B".into(),
                        expected: vec![r, inp, outf],
                        found: vec![sa.dims()[0], sa.dims()[1], sb.dims()[0]],
                    });
                }
                first_r.get_or_insert(r);
                let mut v = VeraLayer::new(sa, sb, inp, outf, 0.0, dropout);
                v.lambda_d.value = Tensor::from_data(
                    TensorData::new(get("vera_lambda_d", Some(vec![r]))?, [1, r]),
                    &device,
                );
                v.lambda_b.value = Tensor::from_data(
                    TensorData::new(get("vera_lambda_b", Some(vec![outf]))?, [1, outf]),
                    &device,
                );
                Box::new(v)
            }
            Method::Adalora => {
                // The rank comes from lora_E: read it first, so a missing lora_E is named as
                // missing rather than reported as a rank-0 shape mismatch of lora_A.
                get("lora_E", None)?;
                let k = rank_of("lora_E", 0);
                let a = get("lora_A", Some(vec![k, inp]))?;
                let e = get("lora_E", Some(vec![k, 1]))?;
                let b = get("lora_B", Some(vec![outf, k]))?;
                Box::new(AdaLoraLayer::from_host(
                    [a, e, b],
                    Dims {
                        r: k,
                        in_f: inp,
                        out_f: outf,
                    },
                    alpha,
                    init_r as f64,
                    dropout,
                    &device,
                ))
            }
            Method::Ia3 => {
                let t = g.get("ia3_l").ok_or_else(|| {
                    AdapterError::file(st_path.display(), format!("missing ia3_l of {name}"))
                })?;
                let ff = is_feedforward(&name, &ff_modules)
                    || t.shape == vec![1, inp] && t.shape != vec![outf, 1];
                let mut l = Ia3Layer::new(layer, ff, &device);
                let n = if ff { inp } else { outf };
                let want = if ff { vec![1, inp] } else { vec![outf, 1] };
                l.l.value =
                    Tensor::from_data(TensorData::new(get("ia3_l", Some(want))?, [1, n]), &device);
                Box::new(l)
            }
            Method::Flix => {
                let mut experts = Vec::new();
                for k in g.keys().filter(|k| k.ends_with(".lora_A.weight")) {
                    let parts: Vec<&str> = k.split('.').collect();
                    let (f, v) = (parts[1].to_string(), parts[2..parts.len() - 2].join("."));
                    let bk = k.replace(".lora_A.weight", ".lora_B.weight");
                    let r = rank_of(k, 0);
                    let a = get(k, Some(vec![r, inp]))?;
                    let b = get(&bk, Some(vec![outf, r]))?;
                    let mut l = LoraLayer::from_host(
                        a,
                        b,
                        Dims {
                            r,
                            in_f: inp,
                            out_f: outf,
                        },
                        scaling(alpha, r, rslora),
                        0.0,
                        &device,
                    );
                    l.a.key = k.clone();
                    l.b.key = bk;
                    experts.push(FlixExpert {
                        feature: f,
                        value: v,
                        lora: l,
                    });
                }
                Box::new(FlixLayer {
                    experts,
                    active: BTreeMap::new(),
                    dropout,
                })
            }
        };
        layer.adapter = Some(adapter);
        modules.push(name);
    }
    if modules.is_empty() {
        return Err(AdapterError::file(
            st_path.display(),
            "the adapter has no tensors",
        ));
    }
    // peftlab's own options: the sidecar, else (directories written before it) the config.
    let sidecar: Option<Value> = std::fs::read_to_string(dir.join(SIDECAR))
        .ok()
        .and_then(|t| serde_json::from_str(&t).ok());
    let mut options: AdapterOptions = sidecar
        .as_ref()
        .and_then(|v| v.get("options"))
        .or_else(|| cfg.get("peftlab_options"))
        .and_then(|v| serde_json::from_value(v.clone()).ok())
        .unwrap_or_default();
    options.method = method.name().into();
    options.targets = Some(Targets::Many(modules.clone()));
    options.layers = None;
    options.rslora = rslora;
    options.dropout = dropout;
    if method == Method::Adalora {
        options.init_r = init_r;
        options.alpha = Some(alpha);
    } else if method == Method::Vera {
        options.r = first_r;
    } else if method != Method::Ia3 {
        options.r = first_r;
        options.alpha = Some(alpha);
    }
    if method == Method::Flix {
        if let Some(f) = cfg
            .get("features")
            .and_then(|v| serde_json::from_value(v.clone()).ok())
        {
            options.features = Some(f);
        }
    }
    Ok(AdapterState {
        options,
        method,
        modules,
        vera_shared: shared,
        pissa: BTreeMap::new(),
        allocator: None,
        features: BTreeMap::new(),
        step: 0,
        source: Some(dir.display().to_string()),
    })
}

fn unreachable_vera<T>() -> Result<T, AdapterError> {
    Err(AdapterError::Unsupported(
        "vera: shared projections missing".into(),
    ))
}
