//! `add_adapter` options: every key of the Rhai options map, with PEFT's defaults.

use super::AdapterError;
use serde::{Deserialize, Serialize};
use std::collections::BTreeMap;

/// The adapter methods.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Serialize, Deserialize)]
#[serde(rename_all = "lowercase")]
pub enum Method {
    /// LoRA (and rsLoRA with `rslora: true`).
    Lora,
    /// Weight-decomposed LoRA.
    Dora,
    /// Vector-based random matrix adaptation.
    Vera,
    /// Adaptive budget allocation.
    Adalora,
    /// LoRA initialised from the principal singular components.
    Pissa,
    /// Learned rescaling vectors.
    Ia3,
    /// Featurized low-rank mixtures.
    Flix,
}

/// Names accepted for `method`.
pub const METHODS: &str = "lora, dora, vera, adalora, pissa, ia3, flix";

impl Method {
    /// Parses a method name.
    pub fn parse(s: &str) -> Result<Self, AdapterError> {
        Ok(match s.to_ascii_lowercase().as_str() {
            "lora" | "rslora" => Method::Lora,
            "dora" => Method::Dora,
            "vera" => Method::Vera,
            "adalora" => Method::Adalora,
            "pissa" => Method::Pissa,
            "ia3" | "ia³" => Method::Ia3,
            "flix" => Method::Flix,
            other => {
                return Err(AdapterError::Option(format!(
                    "unknown method '{other}' (expected one of: {METHODS})"
                )))
            }
        })
    }

    /// The lowercase name.
    pub fn name(self) -> &'static str {
        match self {
            Method::Lora => "lora",
            Method::Dora => "dora",
            Method::Vera => "vera",
            Method::Adalora => "adalora",
            Method::Pissa => "pissa",
            Method::Ia3 => "ia3",
            Method::Flix => "flix",
        }
    }
}

/// Which modules to adapt: `"all-linear"`, a regex, or a list of names.
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
#[serde(untagged)]
pub enum Targets {
    /// `"all-linear"` or a regular expression matched against the full module path.
    One(String),
    /// Module names (suffix match, as PEFT).
    Many(Vec<String>),
}

impl std::fmt::Display for Targets {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        match self {
            Targets::One(s) => write!(f, "{s:?}"),
            Targets::Many(v) => write!(f, "{v:?}"),
        }
    }
}

/// The options map of `add_adapter` (see docs/API.md).
#[derive(Debug, Clone, Serialize, Deserialize)]
#[serde(deny_unknown_fields, default)]
pub struct AdapterOptions {
    /// Method name.
    pub method: String,
    /// Rank (default 8; VeRA 256).
    pub r: Option<usize>,
    /// LoRA alpha (default `2·r`, i.e. 16 for r = 8).
    pub alpha: Option<f64>,
    /// Dropout on the adapter input.
    pub dropout: f64,
    /// Target modules.
    pub targets: Option<Targets>,
    /// Layer indices to adapt (`()` = all).
    pub layers: Option<Vec<usize>>,
    /// Scale `alpha/√r` instead of `alpha/r`.
    pub rslora: bool,
    /// "default" | "gaussian" | "pissa" | "pissa_niter_K".
    pub init: String,
    /// Seed of the random initialisation.
    pub seed: u64,
    /// VeRA: initial value of `lambda_d`.
    pub d_initial: f64,
    /// VeRA: seed of the shared projections.
    pub projection_seed: u64,
    /// AdaLoRA: initial rank.
    pub init_r: usize,
    /// AdaLoRA: target average rank.
    pub target_r: usize,
    /// AdaLoRA: warm-up steps without pruning.
    pub tinit: usize,
    /// AdaLoRA: final steps with the budget fixed.
    pub tfinal: usize,
    /// AdaLoRA: steps between budget allocations.
    pub delta_t: usize,
    /// AdaLoRA: sensitivity smoothing.
    pub beta1: f64,
    /// AdaLoRA: uncertainty smoothing.
    pub beta2: f64,
    /// AdaLoRA: weight of the orthogonality regulariser.
    pub orth_reg: f64,
    /// AdaLoRA: total training steps (required).
    pub total_steps: Option<usize>,
    /// IA³: modules whose input (not output) is scaled (default: down_proj).
    pub feedforward: Option<Vec<String>>,
    /// FLix: feature name → possible values.
    pub features: Option<BTreeMap<String, Vec<String>>>,
    /// FLix: rank per feature (default r).
    pub feature_rank: Option<BTreeMap<String, usize>>,
    /// FLix: probability of dropping each feature of a training example.
    pub feature_dropout: f64,
}

impl Default for AdapterOptions {
    fn default() -> Self {
        AdapterOptions {
            method: "lora".into(),
            r: None,
            alpha: None,
            dropout: 0.0,
            targets: None,
            layers: None,
            rslora: false,
            init: "default".into(),
            seed: 0,
            d_initial: 0.1,
            projection_seed: 0,
            init_r: 12,
            target_r: 8,
            tinit: 0,
            tfinal: 0,
            delta_t: 1,
            beta1: 0.85,
            beta2: 0.85,
            orth_reg: 0.5,
            total_steps: None,
            feedforward: None,
            features: None,
            feature_rank: None,
            feature_dropout: 0.0,
        }
    }
}

impl AdapterOptions {
    /// The parsed method.
    pub fn method(&self) -> Result<Method, AdapterError> {
        Method::parse(&self.method)
    }

    /// The rank, with the method's default.
    pub fn rank(&self) -> Result<usize, AdapterError> {
        let m = self.method()?;
        let r = match (self.r, m) {
            (Some(r), _) => r,
            (None, Method::Vera) => 256,
            (None, Method::Adalora) => self.init_r,
            (None, _) => 8,
        };
        if r == 0 {
            return Err(AdapterError::Option(format!("r must be > 0 (got {r})")));
        }
        Ok(r)
    }

    /// LoRA alpha, default `2·r`.
    pub fn alpha_value(&self) -> Result<f64, AdapterError> {
        Ok(self.alpha.unwrap_or(2.0 * self.rank()? as f64))
    }

    /// The targets, with the method's default (`all-linear`, or PEFT's Llama defaults for VeRA
    /// (q_proj, v_proj) and IA³ (k_proj, v_proj, down_proj)).
    pub fn targets_or_default(&self) -> Result<Targets, AdapterError> {
        Ok(match (&self.targets, self.method()?) {
            (Some(t), _) => t.clone(),
            (None, Method::Vera) => Targets::Many(vec!["q_proj".into(), "v_proj".into()]),
            (None, Method::Ia3) => {
                Targets::Many(vec!["k_proj".into(), "v_proj".into(), "down_proj".into()])
            }
            (None, _) => Targets::One("all-linear".into()),
        })
    }

    /// Checks values that serde cannot (ranges, required keys, combinations).
    pub fn validate(&self) -> Result<Method, AdapterError> {
        let m = self.method()?;
        self.rank()?;
        for (key, v) in [
            ("alpha", self.alpha.unwrap_or(1.0)),
            ("d_initial", self.d_initial),
            ("orth_reg", self.orth_reg),
        ] {
            if !v.is_finite() {
                return Err(AdapterError::Option(format!(
                    "{key} must be a finite number (got {v})"
                )));
            }
        }
        for (key, v) in [("beta1", self.beta1), ("beta2", self.beta2)] {
            if !(0.0..1.0).contains(&v) {
                return Err(AdapterError::Option(format!(
                    "{key} must be in [0, 1) (got {v})"
                )));
            }
        }
        if !(0.0..1.0).contains(&self.dropout) {
            return Err(AdapterError::Option(format!(
                "dropout must be in [0, 1) (got {})",
                self.dropout
            )));
        }
        if !(0.0..1.0).contains(&self.feature_dropout) {
            return Err(AdapterError::Option(format!(
                "feature_dropout must be in [0, 1) (got {})",
                self.feature_dropout
            )));
        }
        let init_ok = matches!(self.init.as_str(), "default" | "gaussian" | "pissa")
            || self
                .init
                .strip_prefix("pissa_niter_")
                .is_some_and(|n| n.parse::<usize>().is_ok());
        if !init_ok {
            return Err(AdapterError::Option(format!(
                "unknown init '{}' (expected one of: default, gaussian, pissa, pissa_niter_K)",
                self.init
            )));
        }
        if m == Method::Adalora {
            let total = self.total_steps.ok_or_else(|| {
                AdapterError::Option(
                    "adalora needs total_steps (the planned number of optimizer steps)".into(),
                )
            })?;
            if self.init_r == 0 || self.target_r > self.init_r {
                return Err(AdapterError::Option(format!(
                    "adalora needs 0 < target_r <= init_r (got target_r {}, init_r {})",
                    self.target_r, self.init_r
                )));
            }
            if self.tinit + self.tfinal >= total {
                return Err(AdapterError::Option(format!(
                    "adalora needs tinit + tfinal < total_steps (got {} + {} >= {total})",
                    self.tinit, self.tfinal
                )));
            }
            if self.delta_t == 0 {
                return Err(AdapterError::Option("adalora delta_t must be > 0".into()));
            }
        }
        if m == Method::Flix {
            let feats =
                self.features
                    .as_ref()
                    .filter(|f| !f.is_empty())
                    .ok_or_else(|| {
                        AdapterError::Option(
                    "flix needs features, e.g. #{ lang: [\"en\", \"ur\"], task: [\"nli\"] }".into(),
                )
                    })?;
            for (k, v) in feats {
                if v.is_empty() {
                    return Err(AdapterError::Option(format!(
                        "flix feature '{k}' has no values"
                    )));
                }
            }
            if let Some(fr) = &self.feature_rank {
                for (k, r) in fr {
                    if !feats.contains_key(k) {
                        return Err(AdapterError::Option(format!(
                            "feature_rank names '{k}', which is not a feature (features: {})",
                            feats.keys().cloned().collect::<Vec<_>>().join(", ")
                        )));
                    }
                    if *r == 0 {
                        return Err(AdapterError::Option(format!(
                            "feature_rank of '{k}' must be > 0"
                        )));
                    }
                }
            }
        }
        Ok(m)
    }
}
