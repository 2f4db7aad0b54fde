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
//!
//! Loading is strict: every config key peftlab uses must have the type PEFT writes (a wrong
//! type is an error naming the file, the key, the expected type and the value, never a silent
//! default), and a sidecar that exists must parse. A loaded adapter remembers its config, and
//! saving it again writes that config back with only what peftlab changed (the base model path,
//! a new AdaLoRA rank pattern), so a load → save round trip keeps every PEFT key.

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
use serde::de::DeserializeOwned;
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

/// The `adapter_config.json` content (`steps`: optimizer steps trained here).
pub fn config_json(
    st: &AdapterState,
    base_path: &str,
    steps: usize,
) -> Result<Value, AdapterError> {
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
                "beta2": o.beta2, "orth_reg_weight": o.orth_reg,
                "total_step": adalora_total_step(st, steps),
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
    Ok(Value::Object(match &st.peft_config {
        Some(loaded) => merge_loaded(loaded, m),
        None => m,
    }))
}

/// Keys of a loaded config that peftlab does not model (or writes only as a default): the
/// loaded value is written back as it was.
const KEEP_LOADED: &[&str] = &[
    "task_type",
    "target_modules",
    "inference_mode",
    "fan_in_fan_out",
    "modules_to_save",
    "bias",
    "layers_to_transform",
    "init_lora_weights",
    "init_weights",
    "save_projection",
    "init_ia3_weights",
    "feedforward_modules",
];

/// Whether two JSON values are the same for PEFT (Python compares `8 == 8.0` as equal).
fn same_json(a: &Value, b: &Value) -> bool {
    match (a, b) {
        (Value::Number(x), Value::Number(y)) => x.as_f64() == y.as_f64(),
        (Value::Array(x), Value::Array(y)) => {
            x.len() == y.len() && x.iter().zip(y).all(|(p, q)| same_json(p, q))
        }
        (Value::Object(x), Value::Object(y)) => {
            x.len() == y.len()
                && x.iter()
                    .all(|(k, p)| y.get(k).is_some_and(|q| same_json(p, q)))
        }
        _ => a == b,
    }
}

/// The config to save for a loaded adapter: the loaded config, with the values peftlab
/// generated where they differ (except [`KEEP_LOADED`] keys, and empty rank/alpha patterns,
/// which mean "none learned here" and keep the loaded pattern).
fn merge_loaded(
    loaded: &serde_json::Map<String, Value>,
    generated: serde_json::Map<String, Value>,
) -> serde_json::Map<String, Value> {
    let mut out = loaded.clone();
    out.remove("peftlab_options");
    for (k, v) in generated {
        let empty = v.is_null() || v.as_object().is_some_and(|o| o.is_empty());
        let keep = match out.get(&k) {
            Some(old) => {
                same_json(old, &v)
                    || KEEP_LOADED.contains(&k.as_str())
                    || (empty && (k == "rank_pattern" || k == "alpha_pattern"))
            }
            None => false,
        };
        if !keep {
            out.insert(k, v);
        }
    }
    out
}

/// AdaLoRA's `total_step` to save: the option (required by `add_adapter`, read from a loaded
/// config). A loaded config without it (older PEFT wrote `null`, which PEFT 0.21 refuses) gets
/// the `steps` trained here, at least the smallest schedule PEFT accepts, `tinit + tfinal + 1`
/// (PEFT checks `tinit < total_step - tfinal`; for inference the value has no effect).
pub fn adalora_total_step(st: &AdapterState, steps: usize) -> usize {
    let o = &st.options;
    let min = o.tinit.saturating_add(o.tfinal).saturating_add(1);
    o.total_steps
        .or(st.allocator.as_ref().map(|a| a.total_step))
        .unwrap_or(steps)
        .max(min)
}

/// Writes the adapter directory (atomically per file); `steps`: optimizer steps trained here.
pub fn save<B: QuantBackend>(
    lm: &CausalLm<B>,
    st: &AdapterState,
    dir: &Path,
    base_path: &str,
    steps: usize,
) -> Result<(), AdapterError> {
    let tensors = adapter_tensors(lm, st)?;
    let cfg = config_json(st, base_path, steps)?;
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

/// A short description of a JSON value for error messages.
fn describe(v: &Value) -> String {
    let mut text = v.to_string();
    if text.chars().count() > 60 {
        text = text.chars().take(57).collect::<String>() + "...";
    }
    let kind = match v {
        Value::Null => "null",
        Value::Bool(_) => "the bool",
        Value::Number(_) => "the number",
        Value::String(_) => "the string",
        Value::Array(_) => "the array",
        Value::Object(_) => "the object",
    };
    format!("{kind} {text}")
}

/// A JSON file read strictly: a key that is present must have the expected type.
struct Strict<'a> {
    map: &'a serde_json::Map<String, Value>,
    path: &'a Path,
}

impl Strict<'_> {
    /// The value of `key` as `T`; absent or `null` is `None`; any other type is an error naming
    /// the file, the key, `expected` and the value.
    fn get<T: DeserializeOwned>(
        &self,
        key: &str,
        expected: &str,
    ) -> Result<Option<T>, AdapterError> {
        match self.map.get(key) {
            None | Some(Value::Null) => Ok(None),
            Some(v) => serde_json::from_value(v.clone()).map(Some).map_err(|_| {
                AdapterError::file(
                    self.path.display(),
                    format!("'{key}' must be {expected}, got {}", describe(v)),
                )
            }),
        }
    }

    /// A probability-like value in `[0, 1)` (dropouts).
    fn fraction(&self, key: &str) -> Result<Option<f64>, AdapterError> {
        let v: Option<f64> = self.get(key, "a number")?;
        match v {
            Some(x) if !(0.0..1.0).contains(&x) => Err(AdapterError::file(
                self.path.display(),
                format!("'{key}' must be in [0, 1), got {x}"),
            )),
            _ => Ok(v),
        }
    }
}

const INT: &str = "a non-negative integer";

fn pattern_value(pattern: &BTreeMap<String, f64>, module: &str) -> Option<f64> {
    pattern
        .iter()
        .find(|(k, _)| {
            regex::Regex::new(&format!(r"^(?:.*\.)?(?:{k})$")).is_ok_and(|re| re.is_match(module))
        })
        .map(|(_, v)| *v)
}

/// peftlab's own options of a saved adapter: [`SIDECAR`] if present (it must parse), else the
/// `peftlab_options` key of configs written before the sidecar existed, else the defaults.
fn saved_options(dir: &Path, cfg: &Strict<'_>) -> Result<AdapterOptions, AdapterError> {
    let path = dir.join(SIDECAR);
    let fix = "fix it or delete it to load the PEFT files alone";
    let bad = |what: String| AdapterError::file(path.display(), format!("{what}; {fix}"));
    let options = match std::fs::read(&path) {
        Ok(bytes) => {
            let v: Value =
                serde_json::from_slice(&bytes).map_err(|e| bad(format!("not valid JSON ({e})")))?;
            let Value::Object(map) = v else {
                return Err(bad(format!("expected a JSON object, got {}", describe(&v))));
            };
            map.get("options").cloned()
        }
        Err(e) if e.kind() == std::io::ErrorKind::NotFound => None,
        Err(e) => return Err(AdapterError::file(path.display(), e)),
    };
    match options {
        Some(v) => serde_json::from_value(v).map_err(|e| bad(format!("'options': {e}"))),
        None => Ok(cfg
            .get::<AdapterOptions>("peftlab_options", "a map of peftlab adapter options")?
            .unwrap_or_default()),
    }
}

/// Reads a PEFT adapter directory and attaches it to the model.
pub fn load<B: QuantBackend>(
    lm: &mut CausalLm<B>,
    dir: &Path,
) -> Result<AdapterState, AdapterError> {
    let cfg_path = dir.join("adapter_config.json");
    let text = std::fs::read_to_string(&cfg_path)
        .map_err(|e| AdapterError::file(cfg_path.display(), e))?;
    let cfg_value: Value =
        serde_json::from_str(&text).map_err(|e| AdapterError::file(cfg_path.display(), e))?;
    let Value::Object(cfg_map) = cfg_value else {
        return Err(AdapterError::file(
            cfg_path.display(),
            format!("expected a JSON object, got {}", describe(&cfg_value)),
        ));
    };
    let cfg = Strict {
        map: &cfg_map,
        path: &cfg_path,
    };
    let st_path = dir.join("adapter_model.safetensors");
    let tensors =
        load_safetensors(&st_path).map_err(|e| AdapterError::file(st_path.display(), e))?;
    let peft_type: String = cfg.get("peft_type", "a string")?.unwrap_or_default();
    let use_dora: Option<bool> = cfg.get("use_dora", "a bool (true or false)")?;
    let method = match peft_type.as_str() {
        "LORA" if use_dora == Some(true) => Method::Dora,
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
    let alpha: f64 = cfg.get("lora_alpha", "a number")?.unwrap_or(8.0);
    let rslora: bool = cfg
        .get("use_rslora", "a bool (true or false)")?
        .unwrap_or(false);
    let dropout = match cfg.fraction("lora_dropout")? {
        Some(d) => d,
        None => cfg.fraction("vera_dropout")?.unwrap_or(0.0),
    };
    let init_r: usize = cfg.get("init_r", INT)?.unwrap_or(12);
    let config_r: Option<usize> = cfg.get("r", INT)?;
    let alpha_pattern: BTreeMap<String, f64> = cfg
        .get("alpha_pattern", "a map of module patterns to numbers")?
        .unwrap_or_default();
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
    let ff_modules: Vec<String> =
        match cfg.get::<Targets>("feedforward_modules", "a list of module names or a string")? {
            Some(Targets::Many(v)) => v,
            Some(Targets::One(s)) => vec![s],
            None => Vec::new(),
        };
    // peftlab's own options (sidecar), then every PEFT key peftlab models, from the config;
    // all read before any layer is touched, so that a bad file changes nothing.
    let mut options = saved_options(dir, &cfg)?;
    options.method = method.name().into();
    options.layers = None;
    options.rslora = rslora;
    options.dropout = dropout;
    match method {
        Method::Adalora => {
            options.init_r = init_r;
            options.alpha = Some(alpha);
            let o = &mut options;
            o.target_r = cfg.get("target_r", INT)?.unwrap_or(8);
            o.tinit = cfg.get("tinit", INT)?.unwrap_or(0);
            o.tfinal = cfg.get("tfinal", INT)?.unwrap_or(0);
            o.delta_t = cfg.get("deltaT", INT)?.unwrap_or(1);
            o.beta1 = cfg.get("beta1", "a number")?.unwrap_or(0.85);
            o.beta2 = cfg.get("beta2", "a number")?.unwrap_or(0.85);
            o.orth_reg = cfg.get("orth_reg_weight", "a number")?.unwrap_or(0.5);
            o.total_steps = cfg.get("total_step", INT)?;
        }
        Method::Vera => {
            options.projection_seed = cfg.get("projection_prng_key", INT)?.unwrap_or(0);
            options.d_initial = cfg.get("d_initial", "a number")?.unwrap_or(0.1);
        }
        Method::Ia3 => {
            options.feedforward = Some(ff_modules.clone());
        }
        _ => options.alpha = Some(alpha),
    }
    if method == Method::Flix {
        if let Some(f) = cfg.get("features", "a map of feature names to lists of values")? {
            options.features = Some(f);
        }
        if let Some(f) = cfg.get("feature_rank", "a map of feature names to ranks")? {
            options.feature_rank = Some(f);
        }
        if let Some(d) = cfg.fraction("feature_dropout")? {
            options.feature_dropout = d;
        }
    }
    if matches!(method, Method::Lora | Method::Dora) {
        let init: Option<Value> = cfg.get("init_lora_weights", "a bool or a string")?;
        if init.as_ref().and_then(Value::as_str) == Some("gaussian") {
            options.init = "gaussian".into();
        }
    }
    // All layers are built before any is attached: a bad tensor leaves the model as it was.
    let mut modules = Vec::new();
    let mut built: BTreeMap<String, Box<dyn LinearAdapter<B>>> = BTreeMap::new();
    let mut first_r = None;
    for (name, layer) in lm.linears() {
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
                let al = pattern_value(&alpha_pattern, &name).unwrap_or(alpha);
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
        built.insert(name.clone(), adapter);
        modules.push(name);
    }
    if modules.is_empty() {
        return Err(AdapterError::file(
            st_path.display(),
            "the adapter has no tensors",
        ));
    }
    for (name, layer) in lm.linears_mut() {
        if let Some(a) = built.remove(&name) {
            layer.adapter = Some(a);
        }
    }
    options.targets = Some(Targets::Many(modules.clone()));
    if !matches!(method, Method::Adalora | Method::Ia3) {
        options.r = config_r.or(first_r);
    }
    Ok(AdapterState {
        options,
        method,
        modules,
        vera_shared: shared,
        pissa: BTreeMap::new(),
        allocator: None,
        features: BTreeMap::new(),
        source: Some(dir.display().to_string()),
        peft_config: Some(cfg_map.clone()),
    })
}

fn unreachable_vera<T>() -> Result<T, AdapterError> {
    Err(AdapterError::Unsupported(
        "vera: shared projections missing".into(),
    ))
}
