//! The hooks an adapter method implements, and the macro that turns the table of methods in
//! [`super`] into the [`MethodKind`](super::MethodKind) and [`AnyMethod`](super::AnyMethod)
//! enums that the rest of peftlab calls.
//!
//! A method is a plain struct that holds whatever state it needs (VeRA's shared projections,
//! PiSSA's initial factors, AdaLoRA's allocator, FLix's active features) and implements
//! [`AdapterMethod`]; every hook but the ones that define the method (forward is on its layer
//! type, see [`crate::model::linear::LinearAdapter`]) has a default, so a simple method writes only
//! its name, its parameter count, how it attaches and how it loads.

use super::peft_io::{PeftFiles, Strict, PREFIX};
use super::{host_tensor, AdapterError, AdapterOptions, LoraFactors, Targets};
use crate::backend::LmBackend;
use crate::model::llama::CausalLm;
use crate::tensor::HostTensor;
use crate::value::Row;
use burn::tensor::Tensor;
use std::collections::BTreeMap;

/// One adapter method: options, attaching, PEFT files in and out, training hooks and the
/// operations of the `Model` façade. Static dispatch (see the module doc of [`super`] for why).
pub trait AdapterMethod: Sized {
    /// The lowercase name (`method` of `add_adapter`, `a.info().method`).
    const NAME: &'static str;
    /// Other spellings accepted for `method`.
    const ALIASES: &'static [&'static str] = &[];
    /// The `peft_type` it is saved as, listed in "unsupported peft_type" errors.
    const PEFT_TYPE: Option<&'static str> = None;
    /// Key suffixes of its per-module tensors (after `base_model.model.<module>.`).
    const SUFFIXES: &'static [&'static str] = &[];
    /// The `add_adapter` option keys only this method uses; setting one for another method is
    /// an error that names the method it belongs to.
    const OPTION_KEYS: &'static [&'static str] = &[];

    // ----- options -----

    /// The rank when `r` is not given.
    fn default_rank(_o: &AdapterOptions) -> usize {
        8
    }

    /// The targets when `targets` is not given.
    fn default_targets() -> Targets {
        Targets::One("all-linear".into())
    }

    /// Checks the method's own options (ranges, required keys, combinations).
    fn validate(_o: &AdapterOptions) -> Result<(), AdapterError> {
        Ok(())
    }

    /// Parameters of one adapted module `in_f → out_f` at rank `r` (checked before allocating).
    fn module_params(o: &AdapterOptions, r: u128, in_f: u128, out_f: u128) -> u128;

    /// Trainable-parameter equivalents of state shared by all modules (VeRA's projections).
    fn shared_params(_o: &AdapterOptions, _r: u128, _max_in: u128, _max_out: u128) -> u128 {
        0
    }

    /// How the size is described in a "would not fit" error, e.g. `" with r = 8"`.
    fn size_note(_o: &AdapterOptions, r: usize) -> String {
        format!(" with r = {r}")
    }

    // ----- construction -----

    /// Puts a fresh adapter on `modules` (validated options, budget checked).
    fn attach<B: LmBackend>(
        o: &AdapterOptions,
        lm: &mut CausalLm<B>,
        modules: &[String],
    ) -> Result<Self, AdapterError>;

    // ----- PEFT files in and out -----

    /// Whether a PEFT directory with this `peft_type` is this method's.
    fn reads(peft_type: &str, cfg: &Strict<'_>) -> Result<bool, AdapterError>;

    /// Splits the key part after `base_model.model.` into (module path, parameter suffix).
    fn split_key(rest: &str) -> Option<(String, String)> {
        Self::SUFFIXES.iter().find_map(|s| {
            rest.strip_suffix(&format!(".{s}"))
                .map(|m| (m.to_string(), s.to_string()))
        })
    }

    /// Whether a key outside the modules belongs to the method (VeRA's shared projections).
    fn is_shared_key(_key: &str) -> bool {
        false
    }

    /// Reads the method's config keys into `o` and attaches the saved layers to `lm`.
    fn load<B: LmBackend>(
        files: &PeftFiles<'_>,
        o: &mut AdapterOptions,
        lm: &mut CausalLm<B>,
    ) -> Result<Self, AdapterError>;

    /// The method's keys of `adapter_config.json` (`peft_type` included); `steps`: the
    /// optimizer steps trained here.
    fn peft_config(
        &self,
        st: &super::state::AdapterState,
        steps: usize,
    ) -> Result<serde_json::Map<String, serde_json::Value>, AdapterError>;

    /// The tensors as saved, by PEFT key (default: every [`Param`](super::Param) of every layer
    /// under `base_model.model.<module>.<key>` with its saved shape).
    fn save_tensors<B: LmBackend>(
        &self,
        lm: &CausalLm<B>,
        out: &mut BTreeMap<String, HostTensor>,
    ) -> Result<(), AdapterError> {
        all_params(lm, out)
    }

    // ----- training -----

    /// A term added to the training loss (AdaLoRA's orthogonality regulariser).
    fn extra_loss<B: LmBackend>(&self, _lm: &CausalLm<B>) -> Option<Tensor<B, 1>> {
        None
    }

    /// Runs after optimizer step `step` (1-based) with the step's gradients by
    /// `<module>.<param key>` (AdaLoRA's rank allocation).
    fn after_step<B: LmBackend>(
        &mut self,
        _lm: &mut CausalLm<B>,
        _step: usize,
        _grads: &BTreeMap<String, Tensor<B, 2>>,
    ) -> Result<(), AdapterError> {
        Ok(())
    }

    /// State to keep in a training checkpoint.
    fn checkpoint_state(&self) -> Option<serde_json::Value> {
        None
    }

    /// Restores [`AdapterMethod::checkpoint_state`] when a run resumes.
    fn restore_state<B: LmBackend>(
        &mut self,
        _lm: &mut CausalLm<B>,
        _state: &serde_json::Value,
    ) -> Result<(), AdapterError> {
        Ok(())
    }

    /// Routing keys `(feature, value)` the trainer builds row masks for (FLix).
    fn routing_keys(&self) -> Vec<(String, String)> {
        Vec::new()
    }

    // ----- the Model façade -----

    /// Adds the method's entries to `a.info()` (after `targets`).
    fn info(&self, _o: &AdapterOptions, _row: &mut Row) -> Result<(), AdapterError> {
        Ok(())
    }

    /// Parameters PEFT counts besides the tensors (AdaLoRA's `ranknum`).
    fn extra_param_count(&self, _modules: usize) -> usize {
        0
    }

    /// The update per module as low-rank factors, for `export_lora`.
    fn export<B: LmBackend>(
        &self,
        lm: &CausalLm<B>,
    ) -> Result<Vec<(String, LoraFactors)>, AdapterError> {
        layer_factors(lm)
    }

    /// Takes the adapter off every layer, leaving the base as it was before attaching.
    fn detach<B: LmBackend>(&self, lm: &mut CausalLm<B>) -> Result<(), AdapterError> {
        for (_, layer) in lm.linears_mut() {
            layer.adapter = None;
        }
        Ok(())
    }

    /// FLix's `set_features`; other methods refuse it.
    fn set_features(&mut self, _features: BTreeMap<String, String>) -> Result<(), AdapterError> {
        Err(AdapterError::Unsupported(format!(
            "set_features needs a flix adapter (the attached one is {})",
            Self::NAME
        )))
    }
}

/// Every parameter of every adapted layer under its PEFT key, with its saved shape.
pub fn all_params<B: LmBackend>(
    lm: &CausalLm<B>,
    out: &mut BTreeMap<String, HostTensor>,
) -> Result<(), AdapterError> {
    for (name, layer) in lm.linears() {
        let Some(ad) = &layer.adapter else { continue };
        for p in ad.params() {
            let (_, v) = super::host_values(p.get())?;
            out.insert(
                format!("{PREFIX}{name}.{}", p.key),
                host_tensor(p.saved_shape.clone(), v)?,
            );
        }
    }
    Ok(())
}

/// Each adapted layer's [`LinearAdapter::low_rank`](crate::model::linear::LinearAdapter::low_rank)
/// factors on the host.
pub fn layer_factors<B: LmBackend>(
    lm: &CausalLm<B>,
) -> Result<Vec<(String, LoraFactors)>, AdapterError> {
    let mut out = Vec::new();
    for (name, layer) in lm.linears() {
        let Some(a) = &layer.adapter else { continue };
        let f = a.low_rank(layer)?;
        out.push((name, LoraFactors::from_device(f.a, f.b, f.scale)?));
    }
    Ok(out)
}

/// Declares the method modules and generates [`MethodKind`](super::MethodKind) (the registered
/// methods) and [`AnyMethod`](super::AnyMethod) (an attached method with its state), which
/// dispatch every hook of [`AdapterMethod`] to the method's type.
///
/// One entry per method: `module: Type,` (attributes such as `#[cfg(test)]` allowed).
macro_rules! methods {
    ($( $(#[$attr:meta])* $module:ident : $ty:ident ),* $(,)?) => {
        $( $(#[$attr])* pub mod $module; )*

        /// The registered adapter methods (generated from the table in `adapter/mod.rs`).
        #[derive(Debug, Clone, Copy, PartialEq, Eq)]
        pub enum MethodKind {
            $( $(#[$attr])* #[doc = concat!("[`", stringify!($module), "`]")] $ty, )*
        }

        /// An attached adapter method with its own state (generated from the table).
        pub enum AnyMethod {
            $( $(#[$attr])* #[doc = concat!("[`", stringify!($module), "`]")] $ty($module::$ty), )*
        }

        impl MethodKind {
            /// Every registered method, in table order.
            pub const ALL: &'static [MethodKind] = &[$( $(#[$attr])* MethodKind::$ty, )*];

            /// The method's lowercase name.
            pub fn name(self) -> &'static str {
                match self { $( $(#[$attr])* MethodKind::$ty => <$module::$ty as AdapterMethod>::NAME, )* }
            }

            /// Other accepted spellings.
            pub fn aliases(self) -> &'static [&'static str] {
                match self { $( $(#[$attr])* MethodKind::$ty => <$module::$ty as AdapterMethod>::ALIASES, )* }
            }

            /// The `peft_type` it is saved as.
            pub fn peft_type(self) -> Option<&'static str> {
                match self { $( $(#[$attr])* MethodKind::$ty => <$module::$ty as AdapterMethod>::PEFT_TYPE, )* }
            }

            /// See [`AdapterMethod::OPTION_KEYS`].
            pub fn option_keys(self) -> &'static [&'static str] {
                match self { $( $(#[$attr])* MethodKind::$ty => <$module::$ty as AdapterMethod>::OPTION_KEYS, )* }
            }

            /// See [`AdapterMethod::default_rank`].
            pub fn default_rank(self, o: &AdapterOptions) -> usize {
                match self { $( $(#[$attr])* MethodKind::$ty => <$module::$ty as AdapterMethod>::default_rank(o), )* }
            }

            /// See [`AdapterMethod::default_targets`].
            pub fn default_targets(self) -> Targets {
                match self { $( $(#[$attr])* MethodKind::$ty => <$module::$ty as AdapterMethod>::default_targets(), )* }
            }

            /// See [`AdapterMethod::validate`].
            pub fn validate(self, o: &AdapterOptions) -> Result<(), AdapterError> {
                match self { $( $(#[$attr])* MethodKind::$ty => <$module::$ty as AdapterMethod>::validate(o), )* }
            }

            /// See [`AdapterMethod::module_params`].
            pub fn module_params(self, o: &AdapterOptions, r: u128, i: u128, out: u128) -> u128 {
                match self { $( $(#[$attr])* MethodKind::$ty => <$module::$ty as AdapterMethod>::module_params(o, r, i, out), )* }
            }

            /// See [`AdapterMethod::shared_params`].
            pub fn shared_params(self, o: &AdapterOptions, r: u128, i: u128, out: u128) -> u128 {
                match self { $( $(#[$attr])* MethodKind::$ty => <$module::$ty as AdapterMethod>::shared_params(o, r, i, out), )* }
            }

            /// See [`AdapterMethod::size_note`].
            pub fn size_note(self, o: &AdapterOptions, r: usize) -> String {
                match self { $( $(#[$attr])* MethodKind::$ty => <$module::$ty as AdapterMethod>::size_note(o, r), )* }
            }

            /// See [`AdapterMethod::attach`].
            pub fn attach<B: LmBackend>(
                self,
                o: &AdapterOptions,
                lm: &mut CausalLm<B>,
                modules: &[String],
            ) -> Result<AnyMethod, AdapterError> {
                match self { $( $(#[$attr])* MethodKind::$ty => <$module::$ty as AdapterMethod>::attach(o, lm, modules).map(AnyMethod::$ty), )* }
            }

            /// See [`AdapterMethod::reads`].
            pub fn reads(self, peft_type: &str, cfg: &Strict<'_>) -> Result<bool, AdapterError> {
                match self { $( $(#[$attr])* MethodKind::$ty => <$module::$ty as AdapterMethod>::reads(peft_type, cfg), )* }
            }

            /// See [`AdapterMethod::split_key`].
            pub fn split_key(self, rest: &str) -> Option<(String, String)> {
                match self { $( $(#[$attr])* MethodKind::$ty => <$module::$ty as AdapterMethod>::split_key(rest), )* }
            }

            /// See [`AdapterMethod::is_shared_key`].
            pub fn is_shared_key(self, key: &str) -> bool {
                match self { $( $(#[$attr])* MethodKind::$ty => <$module::$ty as AdapterMethod>::is_shared_key(key), )* }
            }

            /// See [`AdapterMethod::load`].
            pub fn load<B: LmBackend>(
                self,
                files: &PeftFiles<'_>,
                o: &mut AdapterOptions,
                lm: &mut CausalLm<B>,
            ) -> Result<AnyMethod, AdapterError> {
                match self { $( $(#[$attr])* MethodKind::$ty => <$module::$ty as AdapterMethod>::load(files, o, lm).map(AnyMethod::$ty), )* }
            }
        }

        impl AnyMethod {
            /// Which method it is.
            pub fn kind(&self) -> MethodKind {
                match self { $( $(#[$attr])* AnyMethod::$ty(_) => MethodKind::$ty, )* }
            }

            /// The method's lowercase name.
            pub fn name(&self) -> &'static str {
                self.kind().name()
            }

            /// See [`AdapterMethod::peft_config`].
            pub fn peft_config(
                &self,
                st: &state::AdapterState,
                steps: usize,
            ) -> Result<serde_json::Map<String, serde_json::Value>, AdapterError> {
                match self { $( $(#[$attr])* AnyMethod::$ty(m) => m.peft_config(st, steps), )* }
            }

            /// See [`AdapterMethod::save_tensors`].
            pub fn save_tensors<B: LmBackend>(
                &self,
                lm: &CausalLm<B>,
                out: &mut BTreeMap<String, HostTensor>,
            ) -> Result<(), AdapterError> {
                match self { $( $(#[$attr])* AnyMethod::$ty(m) => m.save_tensors(lm, out), )* }
            }

            /// See [`AdapterMethod::extra_loss`].
            pub fn extra_loss<B: LmBackend>(&self, lm: &CausalLm<B>) -> Option<Tensor<B, 1>> {
                match self { $( $(#[$attr])* AnyMethod::$ty(m) => m.extra_loss(lm), )* }
            }

            /// See [`AdapterMethod::after_step`].
            pub fn after_step<B: LmBackend>(
                &mut self,
                lm: &mut CausalLm<B>,
                step: usize,
                grads: &BTreeMap<String, Tensor<B, 2>>,
            ) -> Result<(), AdapterError> {
                match self { $( $(#[$attr])* AnyMethod::$ty(m) => m.after_step(lm, step, grads), )* }
            }

            /// See [`AdapterMethod::checkpoint_state`].
            pub fn checkpoint_state(&self) -> Option<serde_json::Value> {
                match self { $( $(#[$attr])* AnyMethod::$ty(m) => m.checkpoint_state(), )* }
            }

            /// See [`AdapterMethod::restore_state`].
            pub fn restore_state<B: LmBackend>(
                &mut self,
                lm: &mut CausalLm<B>,
                state: &serde_json::Value,
            ) -> Result<(), AdapterError> {
                match self { $( $(#[$attr])* AnyMethod::$ty(m) => m.restore_state(lm, state), )* }
            }

            /// See [`AdapterMethod::routing_keys`].
            pub fn routing_keys(&self) -> Vec<(String, String)> {
                match self { $( $(#[$attr])* AnyMethod::$ty(m) => m.routing_keys(), )* }
            }

            /// See [`AdapterMethod::info`].
            pub fn info(&self, o: &AdapterOptions, row: &mut Row) -> Result<(), AdapterError> {
                match self { $( $(#[$attr])* AnyMethod::$ty(m) => m.info(o, row), )* }
            }

            /// See [`AdapterMethod::extra_param_count`].
            pub fn extra_param_count(&self, modules: usize) -> usize {
                match self { $( $(#[$attr])* AnyMethod::$ty(m) => m.extra_param_count(modules), )* }
            }

            /// See [`AdapterMethod::export`].
            pub fn export<B: LmBackend>(
                &self,
                lm: &CausalLm<B>,
            ) -> Result<Vec<(String, LoraFactors)>, AdapterError> {
                match self { $( $(#[$attr])* AnyMethod::$ty(m) => m.export(lm), )* }
            }

            /// See [`AdapterMethod::detach`].
            pub fn detach<B: LmBackend>(&self, lm: &mut CausalLm<B>) -> Result<(), AdapterError> {
                match self { $( $(#[$attr])* AnyMethod::$ty(m) => m.detach(lm), )* }
            }

            /// See [`AdapterMethod::set_features`].
            pub fn set_features(
                &mut self,
                features: BTreeMap<String, String>,
            ) -> Result<(), AdapterError> {
                match self { $( $(#[$attr])* AnyMethod::$ty(m) => m.set_features(features), )* }
            }
        }
    };
}

pub(crate) use methods;
