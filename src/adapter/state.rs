//! The backend-independent description of the attached adapter, kept beside the model.

use super::adalora::RankAllocator;
use super::attach::PissaFactors;
use super::{AdapterOptions, Method};
use crate::tensor::HostTensor;
use std::collections::BTreeMap;

/// Everything about the attached adapter that is not a device tensor.
pub struct AdapterState {
    /// The options it was created with (or reconstructed from `adapter_config.json`).
    pub options: AdapterOptions,
    /// The method.
    pub method: Method,
    /// Adapted module paths, in model order.
    pub modules: Vec<String>,
    /// VeRA's shared projections.
    pub vera_shared: Option<(HostTensor, HostTensor)>,
    /// PiSSA's initial factors per module (for the conversion on save).
    pub pissa: BTreeMap<String, PissaFactors>,
    /// AdaLoRA's allocator.
    pub allocator: Option<RankAllocator>,
    /// FLix: the active value per feature.
    pub features: BTreeMap<String, String>,
    /// Where it was loaded from, if anywhere.
    pub source: Option<String>,
    /// The `adapter_config.json` it was loaded from (saving writes it back, updated), so that
    /// a load → save round trip keeps the keys peftlab does not model.
    pub peft_config: Option<serde_json::Map<String, serde_json::Value>>,
}

impl AdapterState {
    /// A fresh state for newly attached adapters.
    pub fn new(options: AdapterOptions, method: Method, attached: super::attach::Attached) -> Self {
        AdapterState {
            options,
            method,
            modules: attached.modules,
            vera_shared: attached.vera_shared,
            pissa: attached.pissa,
            allocator: attached.allocator,
            features: BTreeMap::new(),
            source: None,
            peft_config: None,
        }
    }
}
