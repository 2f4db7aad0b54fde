//! The backend-independent description of an attached adapter, kept beside the model.

use super::{AdapterOptions, AnyMethod};

/// The name an adapter gets when none is given (PEFT's `"default"`).
pub const DEFAULT_NAME: &str = "default";

/// Everything about one attached adapter that is not a layer's tensor.
pub struct AdapterState {
    /// Its name (PEFT's adapter name; [`DEFAULT_NAME`] unless given).
    pub name: String,
    /// The options it was created with (or reconstructed from `adapter_config.json`).
    pub options: AdapterOptions,
    /// The method, with the state it keeps (see [`super::AdapterMethod`]).
    pub method: AnyMethod,
    /// Adapted module paths, in model order.
    pub modules: Vec<String>,
    /// Where it was loaded from, if anywhere.
    pub source: Option<String>,
    /// The `adapter_config.json` it was loaded from (saving writes it back, updated), so that
    /// a load → save round trip keeps the keys peftlab does not model.
    pub peft_config: Option<serde_json::Map<String, serde_json::Value>>,
    /// Whether its update takes part in the forward pass.
    pub active: bool,
    /// Whether training may change it (when it is active).
    pub trainable: bool,
    /// Whether its update is folded into the base weights (`merge_adapter`), awaiting
    /// `unmerge_adapter`.
    pub merged: bool,
}

impl AdapterState {
    /// A fresh state for a newly attached method, named [`DEFAULT_NAME`], active and trainable.
    pub fn new(options: AdapterOptions, method: AnyMethod, modules: Vec<String>) -> Self {
        AdapterState {
            name: DEFAULT_NAME.into(),
            options,
            method,
            modules,
            source: None,
            peft_config: None,
            active: true,
            trainable: true,
            merged: false,
        }
    }

    /// Whether its update is applied on the forward pass now.
    pub fn on(&self) -> bool {
        self.active && !self.merged
    }
}
