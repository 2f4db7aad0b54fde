//! The backend-independent description of the attached adapter, kept beside the model.

use super::{AdapterOptions, AnyMethod};

/// Everything about the attached adapter that is not a layer's tensor.
pub struct AdapterState {
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
}

impl AdapterState {
    /// A fresh state for a newly attached method.
    pub fn new(options: AdapterOptions, method: AnyMethod, modules: Vec<String>) -> Self {
        AdapterState {
            options,
            method,
            modules,
            source: None,
            peft_config: None,
        }
    }
}
