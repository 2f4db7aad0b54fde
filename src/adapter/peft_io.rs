//! PEFT's on-disk format: `adapter_config.json` + `adapter_model.safetensors`.
//!
//! Keys are `base_model.model.<module path>.<param>` (PEFT `utils/save_and_load.py`, adapter
//! name stripped); which params, shapes and config keys a method writes and reads is in the
//! method's file (`AdapterMethod::peft_config`, `save_tensors`, `load` in
//! [`super::method`]); this file holds what all methods share.
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

use super::state::AdapterState;
use super::{any_attached, AdapterError, AdapterOptions, MethodKind, Targets};
use crate::backend::LmBackend;
use crate::model::llama::CausalLm;
use crate::tensor::{load_safetensors, HostTensor};
use serde::de::DeserializeOwned;
use serde_json::{json, Value};
use std::collections::BTreeMap;
use std::path::Path;

/// The key prefix of per-module tensors.
pub const PREFIX: &str = "base_model.model.";

/// The type description of integer config keys in errors.
pub const INT: &str = "a non-negative integer";

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

/// The adapter's tensors under their PEFT keys, exactly as `save_adapter` writes them.
pub fn adapter_tensors<B: LmBackend>(
    lm: &CausalLm<B>,
    st: &AdapterState,
) -> Result<BTreeMap<String, HostTensor>, AdapterError> {
    let mut out = BTreeMap::new();
    st.method.save_tensors(lm, &mut out)?;
    Ok(out)
}

/// The `adapter_config.json` content (`steps`: optimizer steps trained here).
pub fn config_json(
    st: &AdapterState,
    base_path: &str,
    steps: usize,
) -> Result<Value, AdapterError> {
    let common = json!({
        "task_type": "CAUSAL_LM",
        "base_model_name_or_path": base_path,
        "target_modules": st.modules,
        "inference_mode": true,
        "fan_in_fan_out": false,
        "modules_to_save": null,
    });
    let mut m = common.as_object().cloned().unwrap_or_default();
    m.extend(st.method.peft_config(st, steps)?);
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

/// Writes the adapter directory (atomically per file).
pub fn save<B: LmBackend>(
    lm: &CausalLm<B>,
    st: &AdapterState,
    dir: &Path,
    base_path: &str,
    steps: usize,
) -> Result<(), AdapterError> {
    let tensors = adapter_tensors(lm, st)?;
    let cfg = config_json(st, base_path, steps)?;
    let mut side = serde_json::Map::new();
    side.insert(
        "options".into(),
        serde_json::to_value(&st.options).unwrap_or(Value::Null),
    );
    write_dir(dir, &tensors, &cfg, side)
}

/// Writes a PEFT adapter directory: `adapter_model.safetensors`, `adapter_config.json` and
/// peftlab's sidecar with `side` (each file atomically).
pub fn write_dir(
    dir: &Path,
    tensors: &BTreeMap<String, HostTensor>,
    cfg: &Value,
    side: serde_json::Map<String, Value>,
) -> Result<(), AdapterError> {
    std::fs::create_dir_all(dir).map_err(|e| AdapterError::file(dir.display(), e))?;
    crate::tensor::save_safetensors(tensors, &dir.join("adapter_model.safetensors"))
        .map_err(|e| AdapterError::file(dir.display(), e))?;
    let text =
        serde_json::to_string_pretty(cfg).map_err(|e| AdapterError::file(dir.display(), e))?;
    crate::fsutil::write_atomic(&dir.join("adapter_config.json"), text.as_bytes())
        .map_err(|e| AdapterError::file(dir.display(), e))?;
    write_sidecar(dir, side)
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
pub struct Strict<'a> {
    /// The parsed file.
    pub map: &'a serde_json::Map<String, Value>,
    /// Its path (for errors).
    pub path: &'a Path,
}

impl Strict<'_> {
    /// The value of `key` as `T`; absent or `null` is `None`; any other type is an error naming
    /// the file, the key, `expected` and the value.
    pub fn get<T: DeserializeOwned>(
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
    pub fn fraction(&self, key: &str) -> Result<Option<f64>, AdapterError> {
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

/// A module pattern's value (PEFT's `rank_pattern`/`alpha_pattern` keys match a module path or
/// its suffix as a regex).
pub fn pattern_value(pattern: &BTreeMap<String, f64>, module: &str) -> Option<f64> {
    pattern
        .iter()
        .find(|(k, _)| {
            regex::Regex::new(&format!(r"^(?:.*\.)?(?:{k})$")).is_ok_and(|re| re.is_match(module))
        })
        .map(|(_, v)| *v)
}

/// A PEFT adapter directory being loaded: the strict config, every tensor, and the tensors
/// grouped by module (with the method's key split).
pub struct PeftFiles<'a> {
    /// `adapter_config.json`.
    pub cfg: Strict<'a>,
    /// Every tensor of `adapter_model.safetensors` by key.
    pub tensors: &'a BTreeMap<String, HostTensor>,
    /// Per-module tensors by parameter suffix.
    pub groups: BTreeMap<String, BTreeMap<String, HostTensor>>,
    /// The safetensors file (for errors).
    pub st_path: &'a Path,
    /// `lora_alpha` (default 8).
    pub alpha: f64,
    /// `use_rslora`.
    pub rslora: bool,
    /// `lora_dropout` (or `vera_dropout`).
    pub dropout: f64,
    /// `r`, if the config has it.
    pub config_r: Option<usize>,
}

/// One module's tensors of a [`PeftFiles`].
pub struct Group<'a> {
    /// The module path.
    pub module: &'a str,
    /// Parameter suffix → tensor.
    pub map: &'a BTreeMap<String, HostTensor>,
    st_path: &'a Path,
}

impl PeftFiles<'_> {
    /// The tensors of `module`, if the file has any.
    pub fn group<'s>(&'s self, module: &'s str) -> Option<Group<'s>> {
        self.groups.get(module).map(|map| Group {
            module,
            map,
            st_path: self.st_path,
        })
    }

    /// A config value read strictly (see [`Strict::get`]).
    pub fn get<T: DeserializeOwned>(
        &self,
        key: &str,
        expected: &str,
    ) -> Result<Option<T>, AdapterError> {
        self.cfg.get(key, expected)
    }

    /// An error about the safetensors file.
    pub fn file_error(&self, msg: impl std::fmt::Display) -> AdapterError {
        AdapterError::file(self.st_path.display(), msg)
    }
}

impl Group<'_> {
    /// The values of `key`, checked against `shape` when given; a missing key is an error.
    pub fn get(&self, key: &str, shape: Option<Vec<usize>>) -> Result<Vec<f32>, AdapterError> {
        let name = format!("{PREFIX}{}.{key}", self.module);
        let t = self.map.get(key).ok_or_else(|| {
            AdapterError::file(self.st_path.display(), format!("missing '{name}'"))
        })?;
        if let Some(s) = shape {
            if t.shape != s {
                return Err(AdapterError::Shape {
                    name,
                    expected: s,
                    found: t.shape.clone(),
                });
            }
        }
        Ok(t.values_f32())
    }

    /// The size of `key` along `axis` (0 when absent).
    pub fn rank_of(&self, key: &str, axis: usize) -> usize {
        self.map
            .get(key)
            .and_then(|t| t.shape.get(axis).copied())
            .unwrap_or(0)
    }
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

/// Reads a PEFT adapter directory and attaches it to the model with the method that reads its
/// `peft_type`.
pub fn load<B: LmBackend>(lm: &mut CausalLm<B>, dir: &Path) -> Result<AdapterState, AdapterError> {
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
    let mut method = None;
    for m in MethodKind::ALL {
        if m.reads(&peft_type, &cfg)? {
            method = Some(*m);
            break;
        }
    }
    let Some(method) = method else {
        let mut supported: Vec<&str> = Vec::new();
        for t in MethodKind::ALL.iter().filter_map(|m| m.peft_type()) {
            if !supported.contains(&t) {
                supported.push(t);
            }
        }
        return Err(AdapterError::file(
            cfg_path.display(),
            format!(
                "unsupported peft_type '{peft_type}' (supported: {})",
                supported.join(", ")
            ),
        ));
    };
    if any_attached(lm) {
        return Err(AdapterError::Unsupported(
            "an adapter is already attached; remove_adapter() first".into(),
        ));
    }
    let mut groups: BTreeMap<String, BTreeMap<String, HostTensor>> = BTreeMap::new();
    for (k, t) in &tensors {
        if method.is_shared_key(k) {
            continue;
        }
        let (m, s) = k
            .strip_prefix(PREFIX)
            .and_then(|rest| method.split_key(rest))
            .ok_or_else(|| {
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
    let alpha: f64 = cfg.get("lora_alpha", "a number")?.unwrap_or(8.0);
    let rslora: bool = cfg
        .get("use_rslora", "a bool (true or false)")?
        .unwrap_or(false);
    let dropout = match cfg.fraction("lora_dropout")? {
        Some(d) => d,
        None => cfg.fraction("vera_dropout")?.unwrap_or(0.0),
    };
    let config_r: Option<usize> = cfg.get("r", INT)?;
    // peftlab's own options (sidecar), then the PEFT keys every method shares; the method
    // reads its own keys before it touches any layer, so that a bad config changes nothing.
    let mut options = saved_options(dir, &cfg)?;
    options.method = method.name().into();
    options.layers = None;
    options.rslora = rslora;
    options.dropout = dropout;
    let files = PeftFiles {
        cfg,
        tensors: &tensors,
        groups,
        st_path: &st_path,
        alpha,
        rslora,
        dropout,
        config_r,
    };
    let (state, modules) = super::attach_all_or_nothing(lm, |lm| {
        let state = method.load(&files, &mut options, lm)?;
        let modules: Vec<String> = lm
            .linears()
            .into_iter()
            .filter(|(_, l)| l.adapter.is_some())
            .map(|(n, _)| n)
            .collect();
        if modules.is_empty() {
            return Err(AdapterError::file(
                st_path.display(),
                "the adapter has no tensors",
            ));
        }
        Ok((state, modules))
    })?;
    options.targets = Some(Targets::Many(modules.clone()));
    let mut st = AdapterState::new(options, state, modules);
    st.source = Some(dir.display().to_string());
    st.peft_config = Some(cfg_map.clone());
    Ok(st)
}

/// A 2-D tensor of the file on `device` (`name` for the error when it is not 2-D).
pub fn device_from_host<B: LmBackend>(
    name: &str,
    t: &HostTensor,
    device: &B::Device,
) -> Result<burn::tensor::Tensor<B, 2>, AdapterError> {
    match t.shape[..] {
        [rows, cols] => Ok(super::device_tensor(t.values_f32(), [rows, cols], device)),
        _ => Err(AdapterError::Shape {
            name: name.into(),
            expected: vec![0, 0],
            found: t.shape.clone(),
        }),
    }
}
