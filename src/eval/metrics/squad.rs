//! SQuAD v1.1 exact match and token F1 (Rajpurkar et al. 2016, the official
//! `evaluate-v1.1.py`: `normalize_answer`, `f1_score`, `exact_match_score`,
//! `metric_max_over_ground_truths`). XTREME scores XQuAD and TyDiQA-GoldP with it.
//!
//! Normalisation: lowercase → delete ASCII punctuation (`string.punctuation`) → replace the
//! words `a`, `an`, `the` by a space → collapse whitespace (`" ".join(s.split())`). F1 is the
//! harmonic mean of precision and recall of the multiset of whitespace tokens; it is 0 when no
//! token is shared (also when both sides are empty, as in v1.1; `squad_metrics` of transformers
//! would give 1 there). Both metrics take the maximum over the gold answers.

use super::text::{py_split, py_whitespace_fix, replace_words};
use super::{max_over_golds, token_f1, MetricError};

/// The SQuAD v1.1 `normalize_answer`.
pub fn squad_normalize(s: &str) -> String {
    let lower = s.to_lowercase();
    let no_punct: String = lower
        .chars()
        .filter(|c| !c.is_ascii_punctuation())
        .collect();
    let no_articles = replace_words(&no_punct, &["a", "an", "the"]);
    py_whitespace_fix(&no_articles)
}

/// Exact match (1.0 or 0.0) after SQuAD normalisation, maximum over `golds` (non-empty).
pub fn squad_em<S: AsRef<str>>(pred: &str, golds: &[S]) -> Result<f64, MetricError> {
    let p = squad_normalize(pred);
    max_over_golds("squad_em", golds, |g| {
        f64::from(u8::from(p == squad_normalize(g)))
    })
}

/// Token F1 after SQuAD normalisation, maximum over `golds` (non-empty).
pub fn squad_f1<S: AsRef<str>>(pred: &str, golds: &[S]) -> Result<f64, MetricError> {
    let p = squad_normalize(pred);
    let pt = py_split(&p);
    max_over_golds("squad_f1", golds, |g| {
        let gn = squad_normalize(g);
        token_f1(&pt, &py_split(&gn))
    })
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn normalisation() {
        assert_eq!(squad_normalize("The  Eiffel Tower!"), "eiffel tower");
        assert_eq!(squad_normalize("U.S. (an) army"), "us army");
        // Only ASCII punctuation goes: the ideographic full stop stays.
        assert_eq!(squad_normalize("北京。"), "北京。");
    }

    #[test]
    fn exact_match_and_f1_by_hand() {
        assert_eq!(
            squad_em("The Eiffel Tower!", &["eiffel tower", "Tower"]).unwrap(),
            1.0
        );
        assert_eq!(
            squad_f1("The Eiffel Tower!", &["eiffel tower"]).unwrap(),
            1.0
        );
        // "in the year 1998" -> [in, year, 1998]; gold [1998]: P = 1/3, R = 1, F1 = 0.5.
        assert!((squad_f1("in the year 1998", &["1998"]).unwrap() - 0.5).abs() < 1e-12);
        // Against "year 1998": 2 shared, P = 2/3, R = 1, F1 = 0.8; max over golds = 0.8.
        let f = squad_f1("in the year 1998", &["1997", "year 1998"]).unwrap();
        assert!((f - 0.8).abs() < 1e-12, "{f}");
        assert_eq!(
            squad_em("in the year 1998", &["1997", "year 1998"]).unwrap(),
            0.0
        );
        // Repeated tokens count as a multiset: "paris paris" vs "paris": shared 1,
        // P = 1/2, R = 1, F1 = 2/3.
        assert!((squad_f1("Paris Paris", &["Paris"]).unwrap() - 2.0 / 3.0).abs() < 1e-12);
        // SQuAD keeps "。", so this is not an exact match (MLQA's zh rule would make it one).
        assert_eq!(squad_em("北京。", &["北京"]).unwrap(), 0.0);
        // Both empty after normalisation: EM 1, F1 0 (v1.1 behaviour).
        assert_eq!(squad_em("The", &["a"]).unwrap(), 1.0);
        assert_eq!(squad_f1("The", &["a"]).unwrap(), 0.0);
        assert!(squad_em("x", &[] as &[&str]).is_err());
    }
}
