//! Classification metrics: micro/macro F1 with an explicit rule for invalid outputs, and the
//! multiple-choice predictions of lm-evaluation-harness (`ConfigurableTask.process_results`
//! for `multiple_choice`: `acc`, `acc_norm`, `acc_bytes`).
//!
//! **F1 and invalid outputs.** The label set is the set of gold labels (or an explicit list).
//! A prediction that is not in the label set (an unparsable or off-label generation) counts as a
//! false negative for the item's gold class and as a false positive for *no* class — as
//! scikit-learn does when it is given `labels=[...]` that leave such predictions out. Per class
//! `F1_c = 2·TP/(2·TP + FP + FN)` (0 when the denominator is 0, sklearn's `zero_division=0`).
//! Macro = mean of `F1_c` over the label set. Micro = F1 of the summed TP/FP/FN; when every
//! prediction is valid it equals accuracy, otherwise precision is over valid predictions and
//! recall over all items.
//!
//! **Multiple choice.** `acc` takes the argmax of the summed continuation log-likelihoods,
//! `acc_norm` of log-likelihood / number of Unicode code points of the choice (Python `len`,
//! the choice *without* the target delimiter), `acc_bytes` of log-likelihood / UTF-8 bytes.
//! Ties go to the first choice (numpy `argmax`).

use std::collections::HashMap;
use std::str::FromStr;

use super::MetricError;

/// How F1 is averaged over classes.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Average {
    /// F1 of the pooled TP/FP/FN counts.
    Micro,
    /// Unweighted mean of the per-class F1.
    Macro,
}

impl FromStr for Average {
    type Err = MetricError;
    fn from_str(s: &str) -> Result<Self, MetricError> {
        match s {
            "micro" => Ok(Average::Micro),
            "macro" => Ok(Average::Macro),
            other => Err(MetricError::Invalid {
                func: "f1_score",
                msg: format!(
                    "unknown value '{other}' for 'average' (expected one of: micro, macro)"
                ),
            }),
        }
    }
}

/// F1 over the gold label set (see the module header for invalid predictions).
pub fn f1_score<S: AsRef<str>>(
    preds: &[S],
    golds: &[S],
    average: Average,
) -> Result<f64, MetricError> {
    f1_score_with_labels(preds, golds, None, average)
}

/// F1 with an explicit label set (`None`: the distinct gold labels in order of appearance).
pub fn f1_score_with_labels<S: AsRef<str>>(
    preds: &[S],
    golds: &[S],
    labels: Option<&[String]>,
    average: Average,
) -> Result<f64, MetricError> {
    let invalid = |msg: String| MetricError::Invalid {
        func: "f1_score",
        msg,
    };
    if preds.len() != golds.len() {
        return Err(invalid(format!(
            "{} predictions but {} gold labels",
            preds.len(),
            golds.len()
        )));
    }
    if golds.is_empty() {
        return Err(invalid("no items".into()));
    }
    let mut label_list: Vec<String> = Vec::new();
    match labels {
        Some(ls) => {
            for l in ls {
                if !label_list.contains(l) {
                    label_list.push(l.clone());
                }
            }
        }
        None => {
            for g in golds {
                let g = g.as_ref().to_string();
                if !label_list.contains(&g) {
                    label_list.push(g);
                }
            }
        }
    }
    let index: HashMap<&str, usize> = label_list
        .iter()
        .enumerate()
        .map(|(i, l)| (l.as_str(), i))
        .collect();
    let k = label_list.len();
    // Per class: [TP, FP, FN].
    let mut counts = vec![[0usize; 3]; k];
    let mut bump = |class: Option<usize>, which: usize| {
        if let Some(slot) = class
            .and_then(|c| counts.get_mut(c))
            .and_then(|c| c.get_mut(which))
        {
            *slot += 1;
        }
    };
    for (p, g) in preds.iter().zip(golds) {
        let gi = index.get(g.as_ref()).copied();
        let pi = index.get(p.as_ref()).copied();
        if pi.is_some() && pi == gi {
            bump(pi, 0);
        } else {
            bump(pi, 1);
            bump(gi, 2);
        }
    }
    let f1 = |t: usize, p: usize, n: usize| {
        let d = 2 * t + p + n;
        if d == 0 {
            0.0
        } else {
            2.0 * t as f64 / d as f64
        }
    };
    Ok(match average {
        Average::Micro => {
            let sum = |w: usize| counts.iter().map(|c| c.get(w).copied().unwrap_or(0)).sum();
            f1(sum(0), sum(1), sum(2))
        }
        Average::Macro => {
            let per: f64 = counts.iter().map(|&[t, p, n]| f1(t, p, n)).sum();
            per / k.max(1) as f64
        }
    })
}

/// The choices picked by `acc`, `acc_norm` and `acc_bytes`.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct ChoicePredictions {
    /// argmax of the log-likelihoods.
    pub acc: usize,
    /// argmax of log-likelihood / code points.
    pub acc_norm: usize,
    /// argmax of log-likelihood / UTF-8 bytes.
    pub acc_bytes: usize,
}

fn argmax(v: &[f64]) -> usize {
    let mut best = 0;
    for (i, x) in v.iter().enumerate() {
        if let Some(b) = v.get(best) {
            if x > b {
                best = i;
            }
        }
    }
    best
}

/// lm-eval's multiple-choice predictions from per-choice log-likelihoods. `choices` are the
/// choice strings without the target delimiter. NaN log-likelihoods and empty choices are errors.
pub fn choice_predictions<S: AsRef<str>>(
    lls: &[f64],
    choices: &[S],
) -> Result<ChoicePredictions, MetricError> {
    let invalid = |msg: String| MetricError::Invalid {
        func: "choice_predictions",
        msg,
    };
    if lls.len() != choices.len() || lls.is_empty() {
        return Err(invalid(format!(
            "{} log-likelihoods for {} choices",
            lls.len(),
            choices.len()
        )));
    }
    let mut norm = Vec::with_capacity(lls.len());
    let mut bytes = Vec::with_capacity(lls.len());
    for (i, (ll, c)) in lls.iter().zip(choices).enumerate() {
        if ll.is_nan() {
            return Err(invalid(format!("log-likelihood of choice {i} is NaN")));
        }
        let c = c.as_ref();
        if c.is_empty() {
            return Err(invalid(format!("choice {i} is empty")));
        }
        norm.push(ll / c.chars().count() as f64);
        bytes.push(ll / c.len() as f64);
    }
    Ok(ChoicePredictions {
        acc: argmax(lls),
        acc_norm: argmax(&norm),
        acc_bytes: argmax(&bytes),
    })
}

#[cfg(test)]
mod tests {
    use super::*;

    fn close(a: f64, b: f64) -> bool {
        (a - b).abs() < 1e-12
    }

    #[test]
    fn micro_equals_accuracy_when_all_valid() {
        // 5 items, 3 correct: micro-F1 = accuracy = 0.6.
        let golds = ["a", "b", "c", "a", "b"];
        let preds = ["a", "b", "a", "a", "c"];
        assert!(close(
            f1_score(&preds, &golds, Average::Micro).unwrap(),
            0.6
        ));
        // Per class: a TP2 FP1 FN0 -> 4/5; b TP1 FP0 FN1 -> 2/3; c TP0 FP1 FN1 -> 0.
        // Macro = (0.8 + 0.6667 + 0) / 3 = 22/45.
        assert!(close(
            f1_score(&preds, &golds, Average::Macro).unwrap(),
            22.0 / 45.0
        ));
    }

    #[test]
    fn invalid_outputs_are_false_negatives_only() {
        // Gold a, a, b, b; predictions a, "banana" (invalid), b, "" (invalid).
        // a: TP1 FP0 FN1 -> 2/3; b: TP1 FP0 FN1 -> 2/3. Macro = 2/3.
        // Micro: TP2 FP0 FN2 -> 4/6 = 2/3, while accuracy is 0.5.
        let golds = ["a", "a", "b", "b"];
        let preds = ["a", "banana", "b", ""];
        assert!(close(
            f1_score(&preds, &golds, Average::Macro).unwrap(),
            2.0 / 3.0
        ));
        assert!(close(
            f1_score(&preds, &golds, Average::Micro).unwrap(),
            2.0 / 3.0
        ));
        // An explicit label set that includes a never-gold class: c predicted once -> FP for c.
        let labels = vec!["a".to_string(), "b".to_string(), "c".to_string()];
        let preds2 = ["a", "c", "b", "b"];
        // a: TP1 FN1 -> 2/3; b: TP2 -> 1; c: FP1 -> 0. Macro = 5/9. Micro: TP3 FP1 FN1 = 0.75.
        let m = f1_score_with_labels(&preds2, &golds, Some(&labels), Average::Macro).unwrap();
        assert!(close(m, 5.0 / 9.0));
        let mi = f1_score_with_labels(&preds2, &golds, Some(&labels), Average::Micro).unwrap();
        assert!(close(mi, 0.75));
        assert!(f1_score(&["a"], &["a", "b"], Average::Micro).is_err());
        assert!("weighted".parse::<Average>().is_err());
    }

    #[test]
    fn acc_norm_and_acc_bytes_differ_from_acc() {
        // Choices "ü" (1 code point, 2 bytes) and "xyz" (3, 3); lls -2.5 and -6.
        // acc: -2.5 > -6 -> 0. acc_norm: -2.5/1 = -2.5 < -6/3 = -2 -> 1.
        // acc_bytes: -2.5/2 = -1.25 > -6/3 = -2 -> 0.
        let p = choice_predictions(&[-2.5, -6.0], &["ü", "xyz"]).unwrap();
        assert_eq!(
            p,
            ChoicePredictions {
                acc: 0,
                acc_norm: 1,
                acc_bytes: 0
            }
        );
        // Ties go to the first choice.
        assert_eq!(
            choice_predictions(&[-1.0, -1.0], &["a", "b"]).unwrap().acc,
            0
        );
        assert!(choice_predictions(&[f64::NAN, -1.0], &["a", "b"]).is_err());
        assert!(choice_predictions(&[-1.0], &["a", "b"]).is_err());
    }
}
