//! Bindings of the "Adapters" section of docs/API.md. `add_adapter`/`load_adapter` return an
//! `Adapter` handle that refers to its model.

use rhai::{Engine, Map, FLOAT, INT};
use std::collections::BTreeMap;

use super::tensor::to_map;
use crate::adapter::combine::CombineOptions;
use crate::adapter::state::DEFAULT_NAME;
use crate::adapter::AdapterOptions;
use crate::host::convert::row_to_map;
use crate::host::{
    bind, fail, parse_opts, register_handle, Handle, ResultExt, RhaiResult, Session,
};
use crate::lab::Model;
use std::path::Path;

/// A named adapter of a model (a view: it reads the model's adapter of that name).
#[derive(Clone)]
pub struct Adapter {
    model: Handle<Model>,
    name: String,
}

impl std::fmt::Display for Adapter {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        match self.model.borrow("to_string") {
            Ok(m) => match m.adapters.get(&self.name) {
                Ok(a) => write!(
                    f,
                    "Adapter('{}': {} on {} modules, {} trainable params{})",
                    a.name,
                    a.method.name(),
                    a.modules.len(),
                    m.trainable_params(&a.name).unwrap_or(0),
                    match (a.merged, a.active) {
                        (true, _) => ", merged",
                        (false, true) => ", active",
                        (false, false) => ", inactive",
                    }
                ),
                Err(_) => write!(f, "Adapter('{}': deleted)", self.name),
            },
            Err(_) => f.write_str("Adapter(in use)"),
        }
    }
}

fn with_model<R>(
    a: &Handle<Adapter>,
    fn_name: &str,
    f: impl FnOnce(&Model, &str) -> RhaiResult<R>,
) -> RhaiResult<R> {
    let ad = a.borrow(fn_name)?;
    let m = ad.model.borrow(fn_name)?;
    if m.adapters.get(&ad.name).is_err() {
        return Err(fail(format!(
            "{fn_name}: the adapter '{}' was deleted, removed or merged and unloaded",
            ad.name
        )));
    }
    f(&m, &ad.name)
}

fn handle(m: &Handle<Model>, name: &str) -> Handle<Adapter> {
    Handle::new(Adapter {
        model: m.clone(),
        name: name.to_string(),
    })
}

/// The model's adapter for an operation without a name (the only one, or the only active one).
fn sole(m: &Handle<Model>, fn_name: &str) -> RhaiResult<String> {
    m.borrow(fn_name)?.adapters.sole(fn_name).ctx(fn_name)
}

/// `m.combine(weights, opts)`.
fn combine(m: &mut Handle<Model>, w: rhai::Dynamic, o: &Map) -> RhaiResult<Handle<Adapter>> {
    let opts: CombineOptions = parse_opts("combine", o)?;
    let how = opts.combination().ctx("combine")?;
    let weights = weights_of(w)?;
    m.borrow_mut("combine")?
        .combine(&weights, how, &opts.name)
        .ctx("combine")?;
    Ok(handle(m, &opts.name))
}

/// `combine`'s weights: a map (alphabetical) or an array of `[name, weight]` pairs.
fn weights_of(v: rhai::Dynamic) -> RhaiResult<Vec<(String, f64)>> {
    let num = |name: &str, x: rhai::Dynamic| -> RhaiResult<f64> {
        if let Ok(f) = x.as_float() {
            return Ok(f);
        }
        x.as_int().map(|i| i as f64).map_err(|t| {
            fail(format!(
                "combine: the weight of '{name}' must be a number (got a {t})"
            ))
        })
    };
    if v.is_map() {
        let map = v.cast::<Map>();
        return map
            .into_iter()
            .map(|(k, x)| Ok((k.to_string(), num(&k, x)?)))
            .collect();
    }
    let arr = v.into_array().map_err(|t| {
        fail(format!(
            "combine: weights must be a map #{{ name: weight }} or an array of [name, weight] pairs (got a {t})"
        ))
    })?;
    arr.into_iter()
        .map(|pair| {
            let what = pair.to_string();
            let p = pair
                .into_array()
                .ok()
                .filter(|p| p.len() == 2)
                .ok_or_else(|| {
                    fail(format!(
                        "combine: expected a [name, weight] pair, got {what}"
                    ))
                })?;
            let name = p[0].clone().into_string().map_err(|t| {
                fail(format!(
                    "combine: an adapter name must be a string (got a {t})"
                ))
            })?;
            let w = num(&name, p[1].clone())?;
            Ok((name, w))
        })
        .collect()
}

/// Adapter names from a string or an array of strings.
fn names_of(fn_name: &str, v: rhai::Dynamic) -> RhaiResult<Vec<String>> {
    if v.is_string() {
        return Ok(vec![v.into_string().unwrap_or_default()]);
    }
    let arr = v.into_array().map_err(|t| {
        fail(format!(
            "{fn_name}: expected an adapter name or an array of names, got a {t}"
        ))
    })?;
    arr.into_iter()
        .map(|x| {
            x.into_string().map_err(|t| {
                fail(format!(
                    "{fn_name}: adapter names must be strings (got a {t})"
                ))
            })
        })
        .collect()
}

/// The introduction of this area in docs/API.md (`peftlab doc --markdown`).
pub const AREA_DOC: &str = r#"A model holds any number of named adapters, as in PEFT. `m.add_adapter(opts)` and
`m.load_adapter(dir)` attach one called `"default"`; `m.add_adapter(name, opts)` and
`m.load_adapter(dir, name)` name it. The first adapter of a model is active; later ones are added
inactive, and `m.set_active([...])` chooses which updates take part in the forward pass: the updates of
all active adapters are added on the activations (`y = Wx + b + Σ Δₐ(x)`, as PEFT does). Training
changes the active adapters that are trainable (`m.set_trainable(name, false)` freezes one). An operation
without a name (`export_lora`, `adapter_tensors`, `set_features`) works on the only adapter, or the only
active one. The functions return an `Adapter` handle that refers to its model by name. Saved adapters use
PEFT's layout (several adapters: `"default"` at the top, the others in subdirectories), so PEFT and vLLM
read them."#;

const ADD_DOC: &str = "
        Attaches a new adapter, called \"default\" or `name` (1–100 letters, digits, `_`, `-`). The model's
        first adapter is active; later ones are added inactive (`set_active` switches). PiSSA rewrites the base
        weights and shares a model with no other adapter. Keys: method (lora | dora | vera | adalora | pissa |
        ia3 | flix), r, alpha, dropout, targets (\"all-linear\", a list of module names, or a regex), layers
        (the layer indices to adapt, e.g. a range for layer swapping), rslora, init (default | gaussian | pissa |
        pissa_niter_K), seed; vera: d_initial, projection_seed; adalora: init_r, target_r, tinit, tfinal,
        delta_t, beta1, beta2, orth_reg, total_steps; ia3: feedforward (the modules whose input is scaled;
        default down_proj); flix: features, feature_rank, feature_dropout.
        `init: \"pissa_niter_K\"` initialises PiSSA with the randomized SVD and K power iterations.

        ```rhai
        let a = m.add_adapter(#{ method: \"dora\", r: 8, alpha: 16, targets: \"all-linear\" });
        print(a.trainable_params());
        let sw = m.add_adapter(\"lang_sw\", #{ method: \"lora\", r: 8, layers: [0, 1] });
        ```";

const LOAD_DOC: &str = "
        Reads a PEFT adapter directory (LoRA, rsLoRA, DoRA, VeRA, AdaLoRA, IA³, converted PiSSA, FLix) and
        attaches it. `load_adapter(dir)` attaches the adapter at the top of `dir` as \"default\" and every
        subdirectory holding an `adapter_config.json` under the subdirectory's name, in alphabetical order
        (PEFT's multi-adapter layout; all of them or none; the first one loaded is active if the model had no
        adapter), and returns the \"default\" one (else the first);
        `load_adapter(dir, name)` attaches the adapter at the top of `dir` alone, as `name` (use it for a directory
        whose subdirectories are not adapters of the same model, such as a Trainer's `checkpoint-N`).
        It also reads the `peftlab.json` that `save_adapter` writes, when present (a corrupt one is an error).
        The config is read strictly: a value of the wrong type (`lora_alpha: \"32\"`) is an error naming the
        file, key and value; saving a loaded adapter writes its PEFT config back unchanged (except the base
        model path). AdaLoRA's `total_step` is `total_steps`, or for a loaded config without one,
        `tinit + tfinal + 1` (the least PEFT 0.21 accepts).

        ```rhai
        let a = m.load_adapter(\"runs/lora-r8/adapter\");
        print(a.info().method);
        m.load_adapter(\"runs/lang-adapters/sw\", \"lang_sw\");
        ```";

const SAVE_DOC: &str = "
        Writes adapters in PEFT's layout (adapter_config.json + adapter_model.safetensors, plus peftlab.json
        with peftlab's own options, which PEFT ignores), as PEFT's `save_pretrained`: \"default\" in `dir`,
        any other adapter in `dir/<name>`. `save_adapter(dir)` writes every adapter; `save_adapter(dir, name)`
        the one named. PiSSA is saved converted to a LoRA of the original weights. `peftlab.json` holds
        peftlab's full adapter options (e.g. FLix features or the AdaLoRA schedule).

        ```rhai
        m.save_adapter(out_path(\"adapter\"));
        m.save_adapter(out_path(\"adapters\"), \"lang_sw\");   // -> adapters/lang_sw/
        ```";

const EXPORT_DOC: &str = "
        Writes the update of the adapter (the only or only active one, or `name`) as a plain LoRA that vLLM and
        PEFT load (VeRA, AdaLoRA, PiSSA, a FLix feature combination; LoRA itself). Returns the rank it wrote.

        ```rhai
        let r = m.export_lora(out_path(\"lora-for-vllm\"));
        ```";

const TENSORS_DOC: &str = "
        The adapter's tensors (the only or only active adapter, or `name`) under the PEFT key names they are
        saved with (the keys of adapter_model.safetensors).

        ```rhai
        for k in m.adapter_tensors().keys() { print(k); }
        ```";

/// `combine`'s documentation (both overloads).
const COMBINE_DOC: &str = "
        Builds a new LoRA adapter from weighted LoRA adapters, as PEFT's `add_weighted_adapter` (and matching
        its tensors): `weights` is a map #{ name: weight } (taken in alphabetical order: the first adapter's
        rsLoRA flag is inherited and `cat` stacks in that order; quote a name that is a Rhai keyword, as
        `#{ \"default\": 1.0 }`) or an array of [name, weight] pairs (in that order); a negative weight
        subtracts an update (AdaMergeX-style arithmetic). `opts` may be left out (all defaults). Options: method
        (\"linear\": weighted sums of A and of B, equal ranks needed; \"cat\": the factors side by side, rank =
        the sum; \"svd\", the default: the truncated SVD of Σ wᵢ·sᵢ·BᵢAᵢ), r (svd's rank; default the largest),
        clamp (svd's quantile clamp), full_matrices (true), name (\"combined\"). The new adapter has
        `lora_alpha = r`, is added inactive, and saves and exports as a plain LoRA.

        ```rhai
        let task_sw = m.combine(#{ task_en: 1.0, lang_sw: 1.0, lang_en: -1.0 }, #{ method: \"cat\", name: \"task_sw\" });
        m.set_active(\"task_sw\");
        let mix = m.combine([[\"a\", 0.7], [\"b\", 0.3]], #{ method: \"svd\", r: 8, name: \"mix\" });
        ```";

/// Registers the adapter bindings.
pub fn register(engine: &mut Engine, _session: &Session) {
    register_handle::<Adapter>(engine, "Adapter");
    bind(
        engine,
        "add_adapter",
        ["m", "opts"],
        ADD_DOC,
        |m: &mut Handle<Model>, o: Map| -> RhaiResult<Handle<Adapter>> {
            let opts: AdapterOptions = parse_opts("add_adapter", &o)?;
            m.borrow_mut("add_adapter")?
                .add_adapter(opts)
                .ctx("add_adapter")?;
            Ok(handle(m, DEFAULT_NAME))
        },
    );
    bind(
        engine,
        "add_adapter",
        ["m", "name", "opts"],
        ADD_DOC,
        |m: &mut Handle<Model>, name: &str, o: Map| -> RhaiResult<Handle<Adapter>> {
            let opts: AdapterOptions = parse_opts("add_adapter", &o)?;
            m.borrow_mut("add_adapter")?
                .add_named_adapter(name, opts)
                .ctx("add_adapter")?;
            Ok(handle(m, name))
        },
    );
    bind(
        engine,
        "load_adapter",
        ["m", "dir"],
        LOAD_DOC,
        |m: &mut Handle<Model>, d: &str| -> RhaiResult<Handle<Adapter>> {
            let names = m
                .borrow_mut("load_adapter")?
                .load_adapter(Path::new(d))
                .ctx("load_adapter")?;
            let name = names
                .iter()
                .find(|n| n.as_str() == DEFAULT_NAME)
                .or(names.first());
            Ok(handle(m, name.map_or(DEFAULT_NAME, |n| n.as_str())))
        },
    );
    bind(
        engine,
        "load_adapter",
        ["m", "dir", "name"],
        LOAD_DOC,
        |m: &mut Handle<Model>, d: &str, name: &str| -> RhaiResult<Handle<Adapter>> {
            m.borrow_mut("load_adapter")?
                .load_named_adapter(Path::new(d), name)
                .ctx("load_adapter")?;
            Ok(handle(m, name))
        },
    );
    bind(
        engine,
        "save_adapter",
        ["m", "dir"],
        SAVE_DOC,
        |m: &mut Handle<Model>, d: &str| -> RhaiResult<()> {
            m.borrow_mut("save_adapter")?
                .save_adapter(Path::new(d))
                .ctx("save_adapter")
        },
    );
    bind(
        engine,
        "save_adapter",
        ["m", "dir", "name"],
        SAVE_DOC,
        |m: &mut Handle<Model>, d: &str, name: &str| -> RhaiResult<()> {
            m.borrow_mut("save_adapter")?
                .save_named_adapter(Path::new(d), name)
                .ctx("save_adapter")
        },
    );
    bind(
        engine,
        "export_lora",
        ["m", "dir"],
        EXPORT_DOC,
        |m: &mut Handle<Model>, d: &str| -> RhaiResult<INT> {
            let name = sole(m, "export_lora")?;
            Ok(m.borrow_mut("export_lora")?
                .export_lora(Path::new(d), &name)
                .ctx("export_lora")? as INT)
        },
    );
    bind(
        engine,
        "export_lora",
        ["m", "dir", "name"],
        EXPORT_DOC,
        |m: &mut Handle<Model>, d: &str, name: &str| -> RhaiResult<INT> {
            Ok(m.borrow_mut("export_lora")?
                .export_lora(Path::new(d), name)
                .ctx("export_lora")? as INT)
        },
    );
    bind(engine, "adapters", ["m"], "
        The names of the model's adapters, in the order they were added (`a.info()` tells each one's method,
        whether it is active, trainable, merged).

        ```rhai
        for n in m.adapters() { print(`${n}: ${m.adapter(n).info().active}`); }
        ```", |m: &mut Handle<Model>| -> RhaiResult<rhai::Array> {
        Ok(m.borrow("adapters")?.adapters.names().into_iter().map(Into::into).collect())
    });
    bind(
        engine,
        "adapter",
        ["m", "name"],
        "
        The `Adapter` handle of the adapter called `name`.

        ```rhai
        print(m.adapter(\"lang_sw\").info().trainable_params);
        ```",
        |m: &mut Handle<Model>, name: &str| -> RhaiResult<Handle<Adapter>> {
            m.borrow("adapter")?.adapters.get(name).ctx("adapter")?;
            Ok(handle(m, name))
        },
    );
    bind(
        engine,
        "combine",
        ["m", "weights", "opts"],
        COMBINE_DOC,
        |m: &mut Handle<Model>, w: rhai::Dynamic, o: Map| -> RhaiResult<Handle<Adapter>> {
            combine(m, w, &o)
        },
    );
    bind(
        engine,
        "combine",
        ["m", "weights"],
        COMBINE_DOC,
        |m: &mut Handle<Model>, w: rhai::Dynamic| -> RhaiResult<Handle<Adapter>> {
            combine(m, w, &Map::new())
        },
    );
    bind(engine, "set_active", ["m", "names"], "
        Chooses the adapters whose updates take part in the forward pass (and in training): a name or an array
        of names; `[]` leaves the base model alone. The updates of several active adapters are added (as PEFT
        does for active adapters); an IA³ adapter scales activations instead, so it can only be active alone.

        ```rhai
        m.set_active([\"lang_sw\", \"task_nli\"]);    // MAD-X-style: language + task adapter
        ```", |m: &mut Handle<Model>, names: rhai::Dynamic| -> RhaiResult<()> {
        let names = names_of("set_active", names)?;
        m.borrow_mut("set_active")?.set_active(&names).ctx("set_active")
    });
    bind(engine, "set_trainable", ["m", "name", "trainable"], "
        Whether training may change the adapter `name` (when it is active). Adapters are trainable when added.

        ```rhai
        m.set_trainable(\"lang_en\", false);   // train the task adapter over a frozen language adapter
        ```", |m: &mut Handle<Model>, name: &str, t: bool| -> RhaiResult<()> {
        m.borrow_mut("set_trainable")?.set_trainable(name, t).ctx("set_trainable")
    });
    bind(engine, "delete_adapter", ["m", "name"], "
        Removes the adapter `name` (and its optimizer state), restoring whatever it changed in the base.

        ```rhai
        m.delete_adapter(\"lang_sw\");
        ```", |m: &mut Handle<Model>, name: &str| -> RhaiResult<()> {
        m.borrow_mut("delete_adapter")?.delete_adapter(name).ctx("delete_adapter")
    });
    bind(
        engine,
        "merge_adapter",
        ["m"],
        "
        Folds the active adapters' updates into the base weights, as PEFT's `merge_adapter`: the adapters stay
        attached, marked merged (their updates are no longer added on the forward pass), and
        `unmerge_adapter()` puts the original weights back bit for bit: peftlab keeps the original weights of
        the changed layers (on a quantised base, its codes), at the cost of that memory. Several active adapters
        are folded one after the other. On a quantised base (`quant: \"nf4\"`, `\"fp4\"`, `\"int8\"`) the merged
        weight is quantised again with the base's own settings, as PEFT merges into a bitsandbytes layer: the
        base stays as small as it was, and the merged values carry one more rounding to the quantisation grid.
        While merged, training, `set_active`, adding and deleting adapters are refused. All weights are computed
        before any changes: an error leaves the model and its adapters as they were.

        ```rhai
        m.merge_adapter();
        print(m.generate(\"Hello\", #{}));   // without adapter overhead
        m.unmerge_adapter();
        ```",
        |m: &mut Handle<Model>| -> RhaiResult<()> {
            m.borrow_mut("merge_adapter")?.merge_adapter().ctx("merge_adapter")
        },
    );
    bind(
        engine,
        "unmerge_adapter",
        ["m"],
        "
        Undoes `merge_adapter()`: the original base weights come back bit for bit and the adapters' updates
        are added on the forward pass again.

        ```rhai
        m.merge_adapter();  m.unmerge_adapter();
        ```",
        |m: &mut Handle<Model>| -> RhaiResult<()> {
            m.borrow_mut("unmerge_adapter")?.unmerge_adapter().ctx("unmerge_adapter")
        },
    );
    bind(
        engine,
        "merge_and_unload",
        ["m"],
        "
        Folds the active adapters into the base weights (see `merge_adapter`) and removes every adapter, as
        PEFT's `merge_and_unload`; the merged weights stay.

        ```rhai
        m.merge_and_unload();
        m.add_adapter(#{ r: 8 });    // a fresh adapter on the merged model
        ```",
        |m: &mut Handle<Model>| -> RhaiResult<()> {
            m.borrow_mut("merge_and_unload")?.merge_and_unload().ctx("merge_and_unload")
        },
    );
    bind(
        engine,
        "remove_adapter",
        ["m"],
        "Removes every adapter and restores the original base weights (PiSSA: `residual + s·B₀A₀`, quantised again on a quantised base), as PEFT's `unload`.\n\nExample: `m.remove_adapter(); let base = m.evaluate(\"xnli\", #{ data: \"data/xnli\", langs: [\"ur\"] });`",
        |m: &mut Handle<Model>| -> RhaiResult<()> {
            m.borrow_mut("remove_adapter")?.remove_adapter().ctx("remove_adapter")
        },
    );
    bind(
        engine,
        "adapter_tensors",
        ["m"],
        TENSORS_DOC,
        |m: &mut Handle<Model>| -> RhaiResult<rhai::Map> {
            let name = sole(m, "adapter_tensors")?;
            Ok(to_map(
                m.borrow_mut("adapter_tensors")?
                    .adapter_tensors(&name)
                    .ctx("adapter_tensors")?,
            ))
        },
    );
    bind(
        engine,
        "adapter_tensors",
        ["m", "name"],
        TENSORS_DOC,
        |m: &mut Handle<Model>, name: &str| -> RhaiResult<rhai::Map> {
            Ok(to_map(
                m.borrow_mut("adapter_tensors")?
                    .adapter_tensors(name)
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
        "Number of the adapter's trainable parameters: the values of its tensors that training updates while it is active and trainable (frozen projections, such as VeRA's, are not counted; `set_trainable(name, false)` does not change the count).\n\nExample: `print(m.add_adapter(#{ r: 8 }).trainable_params());`",
        |a: &mut Handle<Adapter>| -> RhaiResult<INT> {
            with_model(a, "trainable_params", |m, n| Ok(m.trainable_params(n).ctx("trainable_params")? as INT))
        },
    );
    bind(
        engine,
        "trainable_percent",
        ["a"],
        "Trainable parameters as a percentage of all parameters (PEFT's count).\n\n```rhai\nlet a = m.add_adapter(#{ method: \"lora\", r: 8 });\nprint(`${a.trainable_percent()} % trainable`);\n```",
        |a: &mut Handle<Adapter>| -> RhaiResult<FLOAT> {
            with_model(a, "trainable_percent", |m, n| {
                Ok(100.0 * m.trainable_params(n).ctx("trainable_percent")? as f64 / m.all_params() as f64)
            })
        },
    );
    bind(
        engine,
        "info",
        ["a"],
        "The adapter's facts: name, method, trainable_params, all_params, trainable_percent, modules, targets, r, alpha, rslora, steps, active, trainable, merged (+ AdaLoRA init_r, target_r, budget; FLix features, selected: the set_features selection).\n\n```rhai\nlet i = a.info();\nprint(`${i.name}: ${i.method} r=${i.r} on ${i.modules} modules`);\n```",
        |a: &mut Handle<Adapter>| -> RhaiResult<Map> {
            with_model(a, "info", |m, n| {
                Ok(row_to_map(&m.adapter_info(n).ctx("info")?))
            })
        },
    );
}
