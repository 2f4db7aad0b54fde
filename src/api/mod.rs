//! Rhai bindings: thin functions that convert script arguments, call domain code and convert
//! the result. One file per area of the API (`docs/API.md`); each area has a
//! `register(engine, session)` function called from [`register_all`].
//!
//! See [`crate::host`] for the helpers every binding uses ([`crate::host::bind`],
//! [`crate::host::parse_opts`], [`crate::host::ResultExt::ctx`], [`crate::host::Handle`]).

pub mod adapter;
pub mod args;
pub mod core;
pub mod data;
pub mod docs_md;
pub mod eval;
pub mod model;
pub mod quant;
pub mod stats;
pub mod study;
pub mod table;
pub mod tensor;
pub mod train;

use rhai::Engine;

use crate::host::Session;

/// A host builder with every peftlab binding (the entry point of the command line, the REPL,
/// embedding programs and tests).
pub fn host() -> crate::host::HostBuilder {
    crate::host::Host::builder().bindings(register_all)
}

/// One area of the script API: a section of the generated reference in docs/API.md and the
/// file of bindings that registers it.
#[derive(Debug, Clone, Copy)]
pub struct Area {
    /// Section title in docs/API.md.
    pub title: &'static str,
    /// Text shown under the title, before the functions (Markdown): what the area's functions
    /// have in common.
    pub doc: &'static str,
    /// Position in docs/API.md (areas are registered in the order of [`AREAS`], which puts the
    /// handle types first, and listed in the order of this key).
    pub rank: u8,
    /// Registers the area's bindings.
    pub register: fn(&mut Engine, &Session),
}

/// The binding areas in registration order: handle types first, so that every signature shows
/// their script names. `peftlab doc --markdown` attributes each function to the area whose
/// `register` added it.
pub const AREAS: &[Area] = &[
    Area {
        title: "Studies: settings, files, time and limits",
        doc: core::AREA_DOC,
        rank: 9,
        register: core::register,
    },
    Area {
        title: "Tensors",
        doc: tensor::AREA_DOC,
        rank: 1,
        register: tensor::register,
    },
    Area {
        title: "Tables",
        doc: table::AREA_DOC,
        rank: 6,
        register: table::register,
    },
    Area {
        title: "Models",
        doc: model::AREA_DOC,
        rank: 0,
        register: model::register,
    },
    Area {
        title: "Adapters",
        doc: adapter::AREA_DOC,
        rank: 2,
        register: adapter::register,
    },
    Area {
        title: "Data",
        doc: data::AREA_DOC,
        rank: 3,
        register: data::register,
    },
    Area {
        title: "Training",
        doc: train::AREA_DOC,
        rank: 4,
        register: train::register,
    },
    Area {
        title: "Statistics",
        doc: stats::AREA_DOC,
        rank: 7,
        register: stats::register,
    },
    Area {
        title: "Evaluation",
        doc: eval::AREA_DOC,
        rank: 5,
        register: eval::register,
    },
    Area {
        title: "Quantisation probes",
        doc: quant::AREA_DOC,
        rank: 8,
        register: quant::register,
    },
    Area {
        title: "Studies: cells",
        doc: study::AREA_DOC,
        rank: 10,
        register: study::register,
    },
];

/// Registers every binding area.
pub fn register_all(engine: &mut Engine, session: &Session) {
    for area in AREAS {
        (area.register)(engine, session);
    }
}
