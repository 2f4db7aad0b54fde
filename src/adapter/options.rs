//! `add_adapter` options: every key of the Rhai options map, with PEFT's defaults.

use super::{AdapterError, MethodKind};
use serde::{Deserialize, Serialize};
use std::collections::BTreeMap;

/// The names accepted for `method`, from the registry.
pub fn method_names() -> String {
    MethodKind::ALL
        .iter()
        .map(|m| m.name())
        .collect::<Vec<_>>()
        .join(", ")
}

impl MethodKind {
    /// Parses a method name (or one of its aliases), case-insensitively.
    pub fn parse(s: &str) -> Result<Self, AdapterError> {
        let lower = s.to_ascii_lowercase();
        MethodKind::ALL
            .iter()
            .copied()
            .find(|m| m.name() == lower || m.aliases().contains(&lower.as_str()))
            .ok_or_else(|| {
                AdapterError::Option(format!(
                    "unknown method '{lower}' (expected one of: {})",
                    method_names()
                ))
            })
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
    pub fn method(&self) -> Result<MethodKind, AdapterError> {
        MethodKind::parse(&self.method)
    }

    /// The rank, with the method's default.
    pub fn rank(&self) -> Result<usize, AdapterError> {
        let r = match self.r {
            Some(r) => r,
            None => self.method()?.default_rank(self),
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

    /// The targets, with the method's default (`all-linear` unless the method says otherwise).
    pub fn targets_or_default(&self) -> Result<Targets, AdapterError> {
        Ok(match &self.targets {
            Some(t) => t.clone(),
            None => self.method()?.default_targets(),
        })
    }

    /// Checks values that serde cannot (ranges, required keys, combinations): the common keys
    /// here, the method's own keys in its [`AdapterMethod::validate`](super::AdapterMethod).
    pub fn validate(&self) -> Result<MethodKind, AdapterError> {
        let m = self.method()?;
        for key in self.method_keys_set() {
            if !m.option_keys().contains(&key) {
                let owner = MethodKind::ALL
                    .iter()
                    .find(|o| o.option_keys().contains(&key))
                    .map_or("another method", |o| o.name());
                return Err(AdapterError::Option(format!(
                    "option '{key}' is for {owner} adapters; the {} adapter does not use it",
                    m.name()
                )));
            }
        }
        self.rank()?;
        let alpha = self.alpha.unwrap_or(1.0);
        if !alpha.is_finite() {
            return Err(AdapterError::Option(format!(
                "alpha must be a finite number (got {alpha})"
            )));
        }
        unit_interval("dropout", self.dropout)?;
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
        if self.init.starts_with("pissa") && m != MethodKind::Pissa {
            return Err(AdapterError::Option(format!(
                "init '{}' is PiSSA's initialisation: use method: \"pissa\" (the {} method would \
                 ignore it)",
                self.init,
                m.name()
            )));
        }
        m.validate(self)?;
        Ok(m)
    }
}

impl AdapterOptions {
    /// The method-specific keys whose value differs from the default.
    fn method_keys_set(&self) -> Vec<&'static str> {
        let d = AdapterOptions::default();
        let set = [
            ("d_initial", self.d_initial != d.d_initial),
            ("projection_seed", self.projection_seed != d.projection_seed),
            ("init_r", self.init_r != d.init_r),
            ("target_r", self.target_r != d.target_r),
            ("tinit", self.tinit != d.tinit),
            ("tfinal", self.tfinal != d.tfinal),
            ("delta_t", self.delta_t != d.delta_t),
            ("beta1", self.beta1 != d.beta1),
            ("beta2", self.beta2 != d.beta2),
            ("orth_reg", self.orth_reg != d.orth_reg),
            ("total_steps", self.total_steps.is_some()),
            ("feedforward", self.feedforward.is_some()),
            ("features", self.features.is_some()),
            ("feature_rank", self.feature_rank.is_some()),
            ("feature_dropout", self.feature_dropout != d.feature_dropout),
        ];
        set.into_iter()
            .filter(|(_, s)| *s)
            .map(|(k, _)| k)
            .collect()
    }
}

/// Checks that option `key` is in `[0, 1)`.
pub fn unit_interval(key: &str, v: f64) -> Result<(), AdapterError> {
    if (0.0..1.0).contains(&v) {
        Ok(())
    } else {
        Err(AdapterError::Option(format!(
            "{key} must be in [0, 1) (got {v})"
        )))
    }
}

/// Checks that option `key` is a finite number.
pub fn finite(key: &str, v: f64) -> Result<(), AdapterError> {
    if v.is_finite() {
        Ok(())
    } else {
        Err(AdapterError::Option(format!(
            "{key} must be a finite number (got {v})"
        )))
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn a_key_of_another_method_is_an_error_that_names_its_method() {
        let o = AdapterOptions {
            beta1: 2.0,
            ..Default::default()
        };
        let e = o.validate().unwrap_err().to_string();
        assert_eq!(
            e,
            "option 'beta1' is for adalora adapters; the lora adapter does not use it"
        );
        let o = AdapterOptions {
            method: "dora".into(),
            feedforward: Some(vec!["down_proj".into()]),
            ..Default::default()
        };
        let e = o.validate().unwrap_err().to_string();
        assert!(
            e.starts_with("option 'feedforward' is for ia3 adapters; the dora"),
            "{e}"
        );
        // The method's own keys are accepted, and checked.
        let o = AdapterOptions {
            method: "vera".into(),
            d_initial: 0.5,
            ..Default::default()
        };
        assert_eq!(o.validate().unwrap().name(), "vera");
        let o = AdapterOptions {
            method: "adalora".into(),
            beta1: 2.0,
            total_steps: Some(10),
            ..Default::default()
        };
        assert_eq!(
            o.validate().unwrap_err().to_string(),
            "beta1 must be in [0, 1) (got 2)"
        );
    }
}
