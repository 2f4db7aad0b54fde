//! Adapter operations on the model handle: named adapters (add, load, save, activate, freeze,
//! delete), merge and unmerge, export, FLix feature selection. The per-method work is in
//! [`crate::adapter`]; this file only dispatches to the backend and keeps the
//! [`AdapterState`]s (and the optimizer) in step with the layers.
//!
//! # Several adapters on one model
//!
//! A model holds any number of named adapters ([`Adapters`]), PEFT's model: the first one added
//! is active, later ones are added inactive, and [`Model::set_active`] chooses which ones take
//! part in the forward pass. Each linear layer keeps one adapter in its working slot
//! (`Linear::adapter`) and the others parked beside it (`Linear::parked`); the model moves an
//! adapter into the working slots (its *focus*) before it calls that adapter's method hooks, so
//! the hooks only ever see the one adapter they belong to. The forward pass adds the updates of
//! every active adapter, working or parked, to one base output.
//!
//! Every operation that changes several layers is all-or-nothing: it computes what each layer
//! gets first (merged weights, new adapters, PiSSA residuals) and changes the model only when
//! nothing can fail any more, so an error leaves the model and its adapters as they were.

use super::Model;
use crate::adapter::attach::{attach, replacement_weight};
use crate::adapter::combine::{combine, Combination, Source};
use crate::adapter::lora::{attach_factors, Lora};
use crate::adapter::state::{AdapterState, DEFAULT_NAME};
use crate::adapter::{
    peft_io, AdapterError, AdapterOptions, AnyMethod, LinearAdapter, LoraFactors, MethodKind,
    Targets,
};
use crate::backend::LmBackend;
use crate::model::linear::Parked;
use crate::model::llama::CausalLm;
use crate::tensor::HostTensor;
use crate::value::{num, Row, Value};
use crate::with_lm;
use std::collections::{BTreeMap, HashMap};
use std::path::Path;

/// The adapters of a model and which one sits in the layers' working slots.
#[derive(Default)]
pub struct Adapters {
    /// Every attached adapter, in the order it was added.
    pub list: Vec<AdapterState>,
    /// The adapter whose layers are in the working slots (`Linear::adapter`).
    pub focus: Option<String>,
    /// The adapters the optimizer state belongs to (sorted names).
    pub trained: Vec<String>,
}

impl Adapters {
    /// Whether no adapter is attached.
    pub fn is_empty(&self) -> bool {
        self.list.is_empty()
    }

    /// The adapter called `name`.
    pub fn get(&self, name: &str) -> Result<&AdapterState, AdapterError> {
        self.list
            .iter()
            .find(|s| s.name == name)
            .ok_or_else(|| self.unknown(name))
    }

    fn get_mut(&mut self, name: &str) -> Result<&mut AdapterState, AdapterError> {
        let e = self.unknown(name);
        self.list.iter_mut().find(|s| s.name == name).ok_or(e)
    }

    fn unknown(&self, name: &str) -> AdapterError {
        if self.list.is_empty() {
            return AdapterError::NoAdapter;
        }
        AdapterError::Unknown {
            name: name.into(),
            names: self.names().join(", "),
        }
    }

    /// The adapter names, in the order they were added.
    pub fn names(&self) -> Vec<String> {
        self.list.iter().map(|s| s.name.clone()).collect()
    }

    /// The names of the active adapters.
    pub fn active(&self) -> Vec<String> {
        self.list
            .iter()
            .filter(|s| s.active)
            .map(|s| s.name.clone())
            .collect()
    }

    /// Whether any adapter is merged into the base.
    pub fn any_merged(&self) -> bool {
        self.list.iter().any(|s| s.merged)
    }

    /// The adapter an operation without a name works on: the only adapter, else the only
    /// active one.
    pub fn sole(&self, what: &str) -> Result<String, AdapterError> {
        match self.list.len() {
            0 => Err(AdapterError::NoAdapter),
            1 => Ok(self.list[0].name.clone()),
            _ => match self.active().as_slice() {
                [one] => Ok(one.clone()),
                active => Err(AdapterError::Unsupported(format!(
                    "{what}: the model has {} adapters ({}) and {} of them are active; name the \
                     adapter",
                    self.list.len(),
                    self.names().join(", "),
                    active.len()
                ))),
            },
        }
    }
}

/// Checks an adapter name: PEFT uses it as a directory and inside tensor keys.
fn check_name(name: &str) -> Result<(), AdapterError> {
    let ok = !name.is_empty()
        && name.len() <= 100
        && name
            .chars()
            .all(|c| c.is_ascii_alphanumeric() || c == '_' || c == '-')
        && name != "base_model";
    if ok {
        Ok(())
    } else {
        Err(AdapterError::Option(format!(
            "adapter name '{name}' must be 1–100 ASCII letters, digits, '_' or '-' (it becomes a \
             directory name), and not 'base_model'"
        )))
    }
}

/// Moves adapter `from`'s layers out of the working slots and `to`'s in.
fn refocus<B: LmBackend>(lm: &mut CausalLm<B>, from: Option<&str>, to: Option<&str>) {
    for (_, layer) in lm.linears_mut() {
        if let Some(adapter) = layer.adapter.take() {
            layer.parked.push(Parked {
                name: from.unwrap_or_default().to_string(),
                on: layer.adapter_on,
                trains: layer.adapter_trains,
                order: layer.adapter_order,
                adapter,
            });
        }
        if let Some(to) = to {
            if let Some(i) = layer.parked.iter().position(|p| p.name == to) {
                let p = layer.parked.remove(i);
                layer.adapter = Some(p.adapter);
                layer.adapter_on = p.on;
                layer.adapter_trains = p.trains;
                layer.adapter_order = p.order;
            }
        }
    }
}

/// Per adapter name: whether its update is on, whether it trains, and its place in the order.
type Flags = HashMap<String, (bool, bool, usize)>;

/// Sets every layer's on/trains/order flags from the adapters' states.
fn apply_flags<B: LmBackend>(lm: &mut CausalLm<B>, focus: Option<&str>, flags: &Flags) {
    let get = |n: &str| flags.get(n).copied().unwrap_or((false, false, usize::MAX));
    for (_, layer) in lm.linears_mut() {
        let (on, trains, order) = focus.map_or((true, true, 0), get);
        layer.adapter_on = on;
        layer.adapter_trains = trains;
        layer.adapter_order = order;
        for p in &mut layer.parked {
            (p.on, p.trains, p.order) = get(&p.name);
        }
    }
}

/// Drops adapter `name`'s parked layers.
fn drop_parked<B: LmBackend>(lm: &mut CausalLm<B>, name: &str) {
    for (_, layer) in lm.linears_mut() {
        layer.parked.retain(|p| p.name != name);
    }
}

/// The layers of adapter `name` (in the working slots when `working`), in model order.
fn layers_of<'a, B: LmBackend>(
    lm: &'a CausalLm<B>,
    name: &str,
    working: bool,
) -> Vec<&'a dyn LinearAdapter<B>> {
    lm.linears()
        .into_iter()
        .filter_map(|(_, l)| {
            if working {
                l.adapter.as_deref()
            } else {
                l.parked
                    .iter()
                    .find(|p| p.name == name)
                    .map(|p| &*p.adapter)
            }
        })
        .collect()
}

impl Model {
    /// Puts adapter `name`'s layers in the working slots (`None`: empties them).
    fn focus_on(&mut self, name: Option<&str>) {
        if self.adapters.focus.as_deref() != name {
            let from = self.adapters.focus.take();
            with_lm!(&mut self.lm, lm => refocus(lm, from.as_deref(), name));
            self.adapters.focus = name.map(String::from);
        }
        self.sync_layers();
    }

    /// Sets the layers' on/trains flags from the adapters' states.
    fn sync_layers(&mut self) {
        let flags: Flags = self
            .adapters
            .list
            .iter()
            .enumerate()
            .map(|(i, s)| (s.name.clone(), (s.on(), s.on() && s.trainable, i)))
            .collect();
        let focus = self.adapters.focus.clone();
        with_lm!(&mut self.lm, lm => apply_flags(lm, focus.as_deref(), &flags));
    }

    /// Puts adapter `name`'s layers in the working slots, so that its method's hooks see them.
    pub(crate) fn focus(&mut self, name: &str) -> Result<(), AdapterError> {
        self.adapters.get(name)?;
        self.focus_on(Some(name));
        Ok(())
    }

    /// Refuses an operation while adapters are merged into the base.
    fn check_unmerged(&self, what: &str) -> Result<(), AdapterError> {
        if self.adapters.any_merged() {
            return Err(AdapterError::Unsupported(format!(
                "{what}: adapters are merged into the base weights; call unmerge_adapter() first \
                 (or merge_and_unload() to keep the merged weights)"
            )));
        }
        Ok(())
    }

    /// Checks that `name` is a valid adapter name that no adapter of the model has yet.
    fn check_new_name(&self, name: &str) -> Result<(), AdapterError> {
        check_name(name)?;
        if self.adapters.get(name).is_ok() {
            return Err(AdapterError::Option(format!(
                "an adapter named '{name}' exists already (adapters: {}); delete_adapter(\"{name}\") \
                 first or choose another name",
                self.adapters.names().join(", ")
            )));
        }
        Ok(())
    }

    /// Checks that an adapter `name` of `method` may join the model's adapters: a new name, and
    /// PiSSA, which rewrites the base weights, shares the model with no other adapter.
    fn check_can_join(&self, name: &str, method: MethodKind) -> Result<(), AdapterError> {
        self.check_new_name(name)?;
        let pissa = |m: MethodKind| m == MethodKind::Pissa;
        if !self.adapters.is_empty()
            && (pissa(method) || self.adapters.list.iter().any(|s| pissa(s.method.kind())))
        {
            return Err(AdapterError::Unsupported(format!(
                "PiSSA replaces the base weights with a residual, so it cannot share a model with \
                 other adapters (adapters: {})",
                self.adapters.names().join(", ")
            )));
        }
        Ok(())
    }

    /// Adds a newly attached adapter, which sits in the working slots: active if it is the
    /// first, inactive otherwise (as PEFT's `add_adapter`).
    fn push_adapter(&mut self, mut st: AdapterState, name: &str) {
        st.name = name.to_string();
        st.active = self.adapters.is_empty();
        self.adapters.list.push(st);
        self.adapters.focus = Some(name.to_string());
        self.sync_layers();
    }

    /// Forgets the optimizer state (it belongs to adapters that changed or went).
    pub(crate) fn drop_optimizer(&mut self) {
        self.optimizer = None;
        self.adapters.trained.clear();
    }

    /// Attaches a new adapter called [`DEFAULT_NAME`] (`add_adapter(opts)`).
    pub fn add_adapter(&mut self, opts: AdapterOptions) -> Result<(), AdapterError> {
        self.add_named_adapter(DEFAULT_NAME, opts)
    }

    /// Attaches a new adapter called `name` (`add_adapter(name, opts)`). The first adapter of a
    /// model is active; later ones are added inactive, as in PEFT.
    pub fn add_named_adapter(
        &mut self,
        name: &str,
        opts: AdapterOptions,
    ) -> Result<(), AdapterError> {
        self.check_unmerged("add_adapter")?;
        let method = opts.validate()?;
        self.check_can_join(name, method)?;
        self.focus_on(None);
        let st = with_lm!(&mut self.lm, lm => attach(lm, &opts))?;
        self.push_adapter(st, name);
        Ok(())
    }

    /// Loads a PEFT adapter directory (`load_adapter(dir)`): its top-level adapter as
    /// [`DEFAULT_NAME`] and every subdirectory holding an `adapter_config.json` under the
    /// subdirectory's name (PEFT's multi-adapter layout). All of them or none are attached.
    pub fn load_adapter(&mut self, dir: &Path) -> Result<Vec<String>, AdapterError> {
        let mut found = Vec::new();
        if dir.join("adapter_config.json").exists() {
            found.push((DEFAULT_NAME.to_string(), dir.to_path_buf()));
        }
        if let Ok(entries) = std::fs::read_dir(dir) {
            let mut subs: Vec<_> = entries
                .filter_map(Result::ok)
                .map(|e| e.path())
                .filter(|p| p.join("adapter_config.json").exists())
                .collect();
            subs.sort();
            for p in subs {
                let name = p.file_name().map(|n| n.to_string_lossy().to_string());
                found.push((name.unwrap_or_default(), p));
            }
        }
        if found.is_empty() {
            // Let the single-directory reader say what is missing.
            found.push((DEFAULT_NAME.to_string(), dir.to_path_buf()));
        }
        let mut loaded: Vec<String> = Vec::new();
        for (name, path) in &found {
            if let Err(e) = self.load_named_adapter(path, name) {
                for n in &loaded {
                    let _ = self.delete_adapter(n);
                }
                return Err(e);
            }
            loaded.push(name.clone());
        }
        Ok(loaded)
    }

    /// Loads the PEFT adapter in `dir` (its top level only) as `name`.
    pub fn load_named_adapter(&mut self, dir: &Path, name: &str) -> Result<(), AdapterError> {
        self.check_unmerged("load_adapter")?;
        self.check_new_name(name)?;
        self.focus_on(None);
        // peft_io::load attaches nothing until every tensor has been read and checked.
        let st = with_lm!(&mut self.lm, lm => peft_io::load(lm, dir))?;
        if let Err(e) = self.check_can_join(name, st.method.kind()) {
            with_lm!(&mut self.lm, lm => st.method.detach(lm))?;
            return Err(e);
        }
        self.push_adapter(st, name);
        Ok(())
    }

    /// Writes every adapter in PEFT's layout (`save_adapter(dir)`): [`DEFAULT_NAME`] in `dir`,
    /// each other adapter in `dir/<name>`, as PEFT's `save_pretrained` does.
    pub fn save_adapter(&mut self, dir: &Path) -> Result<(), AdapterError> {
        if self.adapters.is_empty() {
            return Err(AdapterError::NoAdapter);
        }
        for name in self.adapters.names() {
            self.save_named_adapter(dir, &name)?;
        }
        Ok(())
    }

    /// Writes adapter `name` as PEFT's `save_pretrained(dir, selected_adapters=[name])` does:
    /// in `dir` for [`DEFAULT_NAME`], in `dir/<name>` for any other.
    pub fn save_named_adapter(&mut self, dir: &Path, name: &str) -> Result<(), AdapterError> {
        let base = self.path.display().to_string();
        let steps = self.steps_of(name);
        self.focus(name)?;
        let st = self.adapters.get(name)?;
        let target = if name == DEFAULT_NAME {
            dir.to_path_buf()
        } else {
            dir.join(name)
        };
        with_lm!(&self.lm, lm => peft_io::save(lm, st, &target, &base, steps))
    }

    /// Optimizer steps trained on adapter `name` (0 when the optimizer belongs to others).
    fn steps_of(&self, name: &str) -> usize {
        match &self.optimizer {
            Some(o) if self.adapters.trained.iter().any(|n| n == name) => o.steps(),
            _ => 0,
        }
    }

    /// Adapter `name`'s tensors under their PEFT keys, as saved.
    pub fn adapter_tensors(
        &mut self,
        name: &str,
    ) -> Result<BTreeMap<String, HostTensor>, AdapterError> {
        self.focus(name)?;
        let st = self.adapters.get(name)?;
        with_lm!(&self.lm, lm => peft_io::adapter_tensors(lm, st))
    }

    /// Number of trainable tensors' values of adapter `name` (whether or not it is active).
    pub fn trainable_params(&self, name: &str) -> Result<usize, AdapterError> {
        self.adapters.get(name)?;
        let working = self.adapters.focus.as_deref() == Some(name);
        Ok(with_lm!(&self.lm, lm => layers_of(lm, name, working)
            .into_iter()
            .flat_map(|a| a.params())
            .filter(|p| p.trainable)
            .map(|p| p.numel())
            .sum()))
    }

    /// Base plus every adapter's parameters, counted as PEFT's `get_nb_trainable_parameters`
    /// does (AdaLoRA's frozen `ranknum` scalar is an `nn.Parameter` there, one per module).
    pub fn all_params(&self) -> usize {
        let ranknums: usize = self
            .adapters
            .list
            .iter()
            .map(|st| st.method.extra_param_count(st.modules.len()))
            .sum();
        let adapter: usize = with_lm!(&self.lm, lm => lm
            .linears()
            .iter()
            .flat_map(|(_, l)| l.all_adapters())
            .flat_map(|a| a.params())
            .map(|p| p.numel())
            .sum());
        self.config().num_params() + adapter + ranknums
    }

    /// The `a.info()` map of adapter `name`.
    pub fn adapter_info(&self, name: &str) -> Result<Row, AdapterError> {
        let st = self.adapters.get(name)?;
        let mut r = Row::new();
        r.insert("name".into(), Value::from(st.name.clone()));
        r.insert("method".into(), Value::from(st.method.name()));
        let trainable = self.trainable_params(name)?;
        r.insert("trainable_params".into(), Value::from(trainable));
        r.insert("all_params".into(), Value::from(self.all_params()));
        r.insert(
            "trainable_percent".into(),
            num(100.0 * trainable as f64 / self.all_params() as f64),
        );
        r.insert("modules".into(), Value::from(st.modules.len()));
        r.insert("targets".into(), Value::from(st.modules.clone()));
        st.method.info(&st.options, &mut r)?;
        r.insert("steps".into(), Value::from(self.steps_of(name)));
        r.insert("active".into(), Value::from(st.active));
        r.insert("trainable".into(), Value::from(st.trainable));
        r.insert("merged".into(), Value::from(st.merged));
        if let Some(s) = &st.source {
            r.insert("source".into(), Value::from(s.clone()));
        }
        Ok(r)
    }

    /// Chooses the adapters whose updates take part in the forward pass (`set_active`); an
    /// empty list leaves the base model alone. IA³ scales activations instead of adding an
    /// update, so an active IA³ adapter must be the only active one.
    pub fn set_active(&mut self, names: &[String]) -> Result<(), AdapterError> {
        self.check_unmerged("set_active")?;
        for (i, n) in names.iter().enumerate() {
            self.adapters.get(n)?;
            if names[..i].contains(n) {
                return Err(AdapterError::Option(format!(
                    "set_active: '{n}' is named twice"
                )));
            }
        }
        if names.len() > 1 {
            if let Some(ia3) = names.iter().find(|n| {
                self.adapters
                    .get(n)
                    .is_ok_and(|s| s.method.kind() == MethodKind::Ia3)
            }) {
                return Err(AdapterError::Unsupported(format!(
                    "set_active: '{ia3}' is an IA³ adapter, which scales activations rather than \
                     adding an update; it can only be active alone (asked for {})",
                    names.join(", ")
                )));
            }
        }
        for st in &mut self.adapters.list {
            st.active = names.contains(&st.name);
        }
        self.sync_layers();
        Ok(())
    }

    /// Whether training may change adapter `name` (`set_trainable`).
    pub fn set_trainable(&mut self, name: &str, trainable: bool) -> Result<(), AdapterError> {
        self.adapters.get_mut(name)?.trainable = trainable;
        self.sync_layers();
        Ok(())
    }

    /// Removes adapter `name`, restoring the base it changed (PiSSA's residual).
    pub fn delete_adapter(&mut self, name: &str) -> Result<(), AdapterError> {
        self.check_unmerged("delete_adapter")?;
        self.focus(name)?;
        let st = self.adapters.get(name)?;
        with_lm!(&mut self.lm, lm => st.method.detach(lm))?;
        with_lm!(&mut self.lm, lm => drop_parked(lm, name));
        self.adapters.list.retain(|s| s.name != name);
        self.adapters.focus = None;
        if self.adapters.trained.iter().any(|n| n == name) {
            self.drop_optimizer();
        }
        self.sync_layers();
        Ok(())
    }

    /// Removes every adapter, restoring the original base (PEFT's `unload`).
    pub fn remove_adapter(&mut self) -> Result<(), AdapterError> {
        if self.adapters.is_empty() {
            return Err(AdapterError::NoAdapter);
        }
        self.check_unmerged("remove_adapter")?;
        for name in self.adapters.names() {
            self.delete_adapter(&name)?;
        }
        self.drop_optimizer();
        Ok(())
    }

    /// FLix: selects the active value per feature (a feature may be left out) of the FLix
    /// adapter (the only adapter, or the only active one).
    pub fn set_features(&mut self, features: BTreeMap<String, String>) -> Result<(), AdapterError> {
        let name = self.adapters.sole("set_features")?;
        self.focus(&name)?;
        self.adapters.get_mut(&name)?.method.set_features(features)
    }

    /// Folds the active adapters into the base weights and keeps what `unmerge_adapter` needs
    /// (PEFT's `merge_adapter`): the original weights of the changed layers. Several active
    /// adapters are folded one after the other, in the order they were added; a quantised base
    /// is quantised again once, at the end. Every merged weight is computed before any layer
    /// changes.
    pub fn merge_adapter(&mut self) -> Result<(), AdapterError> {
        if self.adapters.is_empty() {
            return Err(AdapterError::NoAdapter);
        }
        if self.adapters.any_merged() {
            return Err(AdapterError::Unsupported(
                "merge_adapter: the adapters are merged already (unmerge_adapter() first)".into(),
            ));
        }
        let active = self.adapters.active();
        if active.is_empty() {
            return Err(AdapterError::Unsupported(
                "merge_adapter: no adapter is active (set_active first)".into(),
            ));
        }
        // All adapters in the parked lists, so the merge sees each by name.
        self.focus_on(None);
        with_lm!(&mut self.lm, lm => merge_layers(lm, &active))?;
        for st in &mut self.adapters.list {
            st.merged = st.active;
        }
        self.sync_layers();
        Ok(())
    }

    /// Puts back the base weights a `merge_adapter` changed, bit for bit (the original
    /// weights were kept), and turns the merged adapters' updates back on.
    pub fn unmerge_adapter(&mut self) -> Result<(), AdapterError> {
        if !self.adapters.any_merged() {
            return Err(AdapterError::Unsupported(
                "unmerge_adapter: no adapter is merged".into(),
            ));
        }
        with_lm!(&mut self.lm, lm => for (_, layer) in lm.linears_mut() {
            if let Some((w, b)) = layer.unmerged.take() {
                layer.weight = w;
                layer.bias = b;
            }
        });
        for st in &mut self.adapters.list {
            st.merged = false;
        }
        self.sync_layers();
        Ok(())
    }

    /// Folds the active adapters into the base weights and removes every adapter (PEFT's
    /// `merge_and_unload`). Nothing changes when a merged weight cannot be computed.
    pub fn merge_and_unload(&mut self) -> Result<(), AdapterError> {
        if !self.adapters.any_merged() {
            self.merge_adapter()?;
        }
        with_lm!(&mut self.lm, lm => for (_, layer) in lm.linears_mut() {
            layer.unmerged = None;
            layer.adapter = None;
            layer.parked.clear();
        });
        self.adapters.list.clear();
        self.adapters.focus = None;
        self.drop_optimizer();
        self.sync_layers();
        Ok(())
    }

    /// Builds a new LoRA adapter `name` from a weighted combination of LoRA adapters, as PEFT's
    /// `add_weighted_adapter` (see [`crate::adapter::combine`]); it is added inactive and saves
    /// and exports as a plain LoRA.
    pub fn combine(
        &mut self,
        weights: &[(String, f64)],
        how: Combination,
        name: &str,
    ) -> Result<(), AdapterError> {
        self.check_unmerged("combine")?;
        if weights.is_empty() {
            return Err(AdapterError::Option(
                "combine: no adapters to combine".into(),
            ));
        }
        self.check_can_join(name, MethodKind::Lora)?;
        let mut parts = Vec::new();
        for (source, w) in weights {
            let st = self.adapters.get(source)?;
            if st.method.kind() != MethodKind::Lora {
                return Err(AdapterError::Unsupported(format!(
                    "combine: '{source}' is a {} adapter; PEFT's add_weighted_adapter combines \
                     LoRA adapters only",
                    st.method.name()
                )));
            }
            let rslora = st.options.rslora;
            parts.push((source.clone(), *w, rslora, self.lora_factors(source)?));
        }
        let sources: Vec<Source<'_>> = parts
            .iter()
            .map(|(n, w, rs, f)| Source {
                name: n,
                weight: *w,
                use_rslora: *rs,
                factors: f,
            })
            .collect();
        let combined = combine(&sources, how)?;
        self.focus_on(None);
        let modules = with_lm!(&mut self.lm, lm => attach_factors(lm, &combined.factors))?;
        let options = AdapterOptions {
            method: "lora".into(),
            r: Some(combined.r),
            alpha: Some(combined.lora_alpha as f64),
            rslora: combined.use_rslora,
            targets: Some(Targets::Many(modules.clone())),
            ..Default::default()
        };
        let st = AdapterState::new(options, AnyMethod::Lora(Lora), modules);
        self.push_adapter(st, name);
        Ok(())
    }

    /// Writes adapter `name`'s update as a plain PEFT LoRA that vLLM and PEFT load
    /// (`export_lora`): VeRA as `diag(λd)·A`, `diag(λb)·B`; AdaLoRA as `A⊙E`; PiSSA in its
    /// rank-2r form; FLix's active feature combination stacked. Each module's scale is folded
    /// into B and every module is zero-padded to the largest rank, so the file has one `r` and
    /// `lora_alpha = r`.
    pub fn export_lora(&mut self, dir: &Path, name: &str) -> Result<usize, AdapterError> {
        let factors = self.lora_factors(name)?;
        let r = factors.iter().map(|(_, f)| f.a.shape[0]).max().unwrap_or(0);
        let mut tensors = BTreeMap::new();
        let mut modules = Vec::new();
        for (module, f) in &factors {
            let (k, inp) = (f.a.shape[0], f.a.shape[1]);
            let out = f.b.shape[0];
            let mut a = f.a.values_f32();
            a.resize(r * inp, 0.0);
            let bv = f.b.values_f32();
            let mut b = vec![0f32; out * r];
            for o in 0..out {
                for j in 0..k {
                    b[o * r + j] = (f64::from(bv[o * k + j]) * f.scale) as f32;
                }
            }
            let conv = |s: Vec<usize>, v| HostTensor::f32(s, v).map_err(AdapterError::from);
            tensors.insert(
                format!("base_model.model.{module}.lora_A.weight"),
                conv(vec![r, inp], a)?,
            );
            tensors.insert(
                format!("base_model.model.{module}.lora_B.weight"),
                conv(vec![out, r], b)?,
            );
            modules.push(module.clone());
        }
        let cfg = serde_json::json!({
            "peft_type": "LORA", "task_type": "CAUSAL_LM", "r": r, "lora_alpha": r,
            "lora_dropout": 0.0, "target_modules": modules, "use_rslora": false, "use_dora": false,
            "bias": "none", "fan_in_fan_out": false, "init_lora_weights": true,
            "inference_mode": true, "modules_to_save": null, "rank_pattern": {}, "alpha_pattern": {},
            "base_model_name_or_path": self.path.display().to_string(),
        });
        let mut side = serde_json::Map::new();
        side.insert(
            "export_of".into(),
            self.adapters.get(name)?.method.name().into(),
        );
        peft_io::write_dir(dir, &tensors, &cfg, side)?;
        Ok(r)
    }

    /// Adapter `name`'s update per module as low-rank factors (for `export_lora`, `combine`).
    pub fn lora_factors(&mut self, name: &str) -> Result<Vec<(String, LoraFactors)>, AdapterError> {
        self.focus(name)?;
        let st = self.adapters.get(name)?;
        with_lm!(&self.lm, lm => st.method.export(lm))
    }
}

/// Folds the parked adapters named in `active` into each layer's weight, one after the other
/// (each computes its merged weight from the weight the previous one left): all merged weights
/// first, then (nothing can fail any more) every layer changes and keeps its original weight
/// for `unmerge_adapter`.
fn merge_layers<B: LmBackend>(lm: &mut CausalLm<B>, active: &[String]) -> Result<(), AdapterError> {
    let mut merged = BTreeMap::new();
    for (name, layer) in lm.linears_mut() {
        let order: Vec<usize> = active
            .iter()
            .filter_map(|n| layer.parked.iter().position(|p| &p.name == n))
            .collect();
        if order.is_empty() {
            continue;
        }
        let original = (layer.weight.clone(), layer.bias.clone());
        let mut result = Ok(());
        let mut last = None;
        for &i in &order {
            match layer.parked[i].adapter.merged(layer) {
                Ok((w, b)) => {
                    // The next adapter merges onto this one's result, in full precision.
                    layer.weight = crate::quant::QuantWeight::dense(w.clone());
                    layer.bias = b.clone();
                    last = Some((w, b));
                }
                Err(e) => {
                    result = Err(AdapterError::from(e));
                    break;
                }
            }
        }
        (layer.weight, layer.bias) = original;
        result?;
        if let Some((w, b)) = last {
            merged.insert(name, (replacement_weight(layer, w)?, b));
        }
    }
    for (name, layer) in lm.linears_mut() {
        if let Some((w, b)) = merged.remove(&name) {
            let original_w = std::mem::replace(&mut layer.weight, w);
            let original_b = std::mem::replace(&mut layer.bias, b);
            layer.unmerged = Some((original_w, original_b));
        }
    }
    Ok(())
}
