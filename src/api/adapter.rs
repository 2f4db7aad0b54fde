//! Bindings of the "Adapters" section of docs/API.md. `add_adapter`/`load_adapter` return an
//! `Adapter` handle that refers to its model.

use rhai::{Engine, Map, FLOAT, INT};
use std::collections::BTreeMap;

use super::tensor::to_map;
use crate::adapter::AdapterOptions;
use crate::host::convert::row_to_map;
use crate::host::{
    bind, fail, parse_opts, register_handle, Handle, ResultExt, RhaiResult, Session,
};
use crate::lab::Model;

/// The adapter attached to a model (a view: it reads the model's current adapter).
#[derive(Clone)]
pub struct Adapter {
    model: Handle<Model>,
}

impl std::fmt::Display for Adapter {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        match self.model.borrow("to_string") {
            Ok(m) => match &m.adapter {
                Some(a) => write!(
                    f,
                    "Adapter({} on {} modules, {} trainable params)",
                    a.method.name(),
                    a.modules.len(),
                    m.trainable_params()
                ),
                None => f.write_str("Adapter(removed)"),
            },
            Err(_) => f.write_str("Adapter(in use)"),
        }
    }
}

fn with_model<R>(
    a: &Handle<Adapter>,
    fn_name: &str,
    f: impl FnOnce(&Model) -> RhaiResult<R>,
) -> RhaiResult<R> {
    let ad = a.borrow(fn_name)?;
    let m = ad.model.borrow(fn_name)?;
    if m.adapter.is_none() {
        return Err(fail(format!(
            "{fn_name}: this adapter was removed or merged"
        )));
    }
    f(&m)
}

/// The introduction of this area in docs/API.md (`peftlab doc --markdown`).
pub const AREA_DOC: &str = r#"`m.add_adapter(opts)` and `m.load_adapter(dir)` attach an adapter to the model and return an
`Adapter` handle that refers to its model; a model holds one adapter at a time. Saved adapters
use PEFT's layout, so PEFT and vLLM read them."#;

/// Registers the adapter bindings.
pub fn register(engine: &mut Engine, _session: &Session) {
    register_handle::<Adapter>(engine, "Adapter");
    bind(engine, "add_adapter", ["m", "opts"], "
        Attaches a new adapter. Keys: method (lora | dora | vera | adalora | pissa | ia3 | flix), r, alpha, dropout,
        targets (\"all-linear\", a list of module names, or a regex), layers, rslora, init (default | gaussian | pissa | pissa_niter_K), seed;
        vera: d_initial, projection_seed; adalora: init_r, target_r, tinit, tfinal, delta_t, beta1, beta2, orth_reg, total_steps;
        ia3: feedforward (the modules whose input is scaled; default down_proj); flix: features, feature_rank, feature_dropout.
        `init: \"pissa_niter_K\"` initialises PiSSA with the randomized SVD and K power iterations.

        ```rhai
        let a = m.add_adapter(#{ method: \"dora\", r: 8, alpha: 16, targets: \"all-linear\" });
        print(a.trainable_params());
        ```", |m: &mut Handle<Model>, o: Map| -> RhaiResult<Handle<Adapter>> {
        let opts: AdapterOptions = parse_opts("add_adapter", &o)?;
        m.borrow_mut("add_adapter")?.add_adapter(opts).ctx("add_adapter")?;
        Ok(Handle::new(Adapter { model: m.clone() }))
    });
    bind(engine, "load_adapter", ["m", "dir"], "Reads a PEFT adapter directory (LoRA, rsLoRA, DoRA, VeRA, AdaLoRA, IA³, converted PiSSA, FLix) and attaches it. It also reads the `peftlab.json` that `save_adapter` writes, when present (a corrupt one is an error). The config is read strictly: a value of the wrong type (`lora_alpha: \"32\"`) is an error naming the file, key and value; saving a loaded adapter writes its PEFT config back unchanged (except the base model path). AdaLoRA's `total_step` is `total_steps`, or for a loaded config without one, `tinit + tfinal + 1` (the least PEFT 0.21 accepts).\n\nExample: `let a = m.load_adapter(\"runs/lora-r8/adapter\"); print(a.info().method);`", |m: &mut Handle<Model>, d: &str| -> RhaiResult<Handle<Adapter>> {
        m.borrow_mut("load_adapter")?.load_adapter(std::path::Path::new(d)).ctx("load_adapter")?;
        Ok(Handle::new(Adapter { model: m.clone() }))
    });
    bind(engine, "save_adapter", ["m", "dir"], "Writes the adapter in PEFT's layout (adapter_config.json + adapter_model.safetensors, plus peftlab.json with peftlab's own options, which PEFT ignores); PiSSA is saved converted to a LoRA of the original weights. `peftlab.json` holds peftlab's full adapter options (e.g. FLix features or the AdaLoRA schedule).\n\nExample: `m.save_adapter(out_path(\"adapter\"));`", |m: &mut Handle<Model>, d: &str| -> RhaiResult<()> {
        m.borrow("save_adapter")?.save_adapter(std::path::Path::new(d)).ctx("save_adapter")
    });
    bind(engine, "export_lora", ["m", "dir"], "Writes the update as a plain LoRA that vLLM and PEFT load (VeRA, AdaLoRA, PiSSA, a FLix feature combination; LoRA itself). Returns the rank it wrote.\n\nExample: `let r = m.export_lora(out_path(\"lora-for-vllm\"));`", |m: &mut Handle<Model>, d: &str| -> RhaiResult<INT> {
        Ok(m.borrow("export_lora")?.export_lora(std::path::Path::new(d)).ctx("export_lora")? as INT)
    });
    bind(
        engine,
        "merge_adapter",
        ["m"],
        "Folds the adapter into the base weights and detaches it. On a quantised base (`quant: \"nf4\"`, `\"fp4\"`, `\"int8\"`) each merged weight is quantised again with the base's own settings, as PEFT merges into a bitsandbytes layer: the base stays as small as it was, and the merged values carry one more rounding to the quantisation grid. All weights are computed before any changes: an error leaves the model and its adapter as they were.\n\nExample: `m.merge_adapter(); print(m.generate(\"Hello\", #{}));` (now without adapter overhead)",
        |m: &mut Handle<Model>| -> RhaiResult<()> {
            m.borrow_mut("merge_adapter")?
                .merge_adapter()
                .ctx("merge_adapter")
        },
    );
    bind(
        engine,
        "remove_adapter",
        ["m"],
        "Detaches the adapter and restores the original base weights (PiSSA: `residual + s·B₀A₀`, quantised again on a quantised base).\n\nExample: `m.remove_adapter(); let base = m.evaluate(\"xnli\", #{ data: \"data/xnli\", langs: [\"ur\"] });`",
        |m: &mut Handle<Model>| -> RhaiResult<()> {
            m.borrow_mut("remove_adapter")?
                .remove_adapter()
                .ctx("remove_adapter")
        },
    );
    bind(
        engine,
        "adapter_tensors",
        ["m"],
        "The adapter's tensors under the PEFT key names they are saved with (the keys of adapter_model.safetensors).\n\nExample: `for k in m.adapter_tensors().keys() { print(k); }`",
        |m: &mut Handle<Model>| -> RhaiResult<rhai::Map> {
            Ok(to_map(
                m.borrow("adapter_tensors")?
                    .adapter_tensors()
                    .ctx("adapter_tensors")?,
            ))
        },
    );
    bind(engine, "set_features", ["m", "features"], "
        FLix: selects the active feature adapters (a feature may be omitted; combinations unseen in training are allowed).

        ```rhai
        m.set_features(#{ lang: \"ur\", task: \"nli\" });
        ```", |m: &mut Handle<Model>, f: Map| -> RhaiResult<()> {
        let mut sel = BTreeMap::new();
        for (k, v) in f {
            let v = v.into_string().map_err(|t| fail(format!("set_features: value of '{k}' must be a string (got a {t})")))?;
            sel.insert(k.to_string(), v);
        }
        m.borrow_mut("set_features")?.set_features(sel).ctx("set_features")
    });
    bind(
        engine,
        "trainable_params",
        ["a"],
        "Number of trainable adapter parameters.\n\nExample: `print(m.add_adapter(#{ r: 8 }).trainable_params());`",
        |a: &mut Handle<Adapter>| -> RhaiResult<INT> {
            with_model(a, "trainable_params", |m| Ok(m.trainable_params() as INT))
        },
    );
    bind(
        engine,
        "trainable_percent",
        ["a"],
        "Trainable parameters as a percentage of all parameters (PEFT's count).\n\n```rhai\nlet a = m.add_adapter(#{ method: \"lora\", r: 8 });\nprint(`${a.trainable_percent()} % trainable`);\n```",
        |a: &mut Handle<Adapter>| -> RhaiResult<FLOAT> {
            with_model(a, "trainable_percent", |m| {
                Ok(100.0 * m.trainable_params() as f64 / m.all_params() as f64)
            })
        },
    );
    bind(
        engine,
        "info",
        ["a"],
        "The adapter's facts: method, trainable_params, all_params, trainable_percent, modules, targets, r, alpha, rslora, steps (+ AdaLoRA init_r, target_r, budget; FLix features, active).\n\n```rhai\nlet i = a.info();\nprint(`${i.method} r=${i.r} on ${i.modules} modules`);\n```",
        |a: &mut Handle<Adapter>| -> RhaiResult<Map> {
            with_model(a, "info", |m| {
                Ok(row_to_map(&m.adapter_info().ctx("info")?))
            })
        },
    );
}
