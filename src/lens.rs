//! Layer-wise language analysis: the logit lens plus language identification.
//!
//! The logit lens (nostalgebraist 2020; used for multilingual models by Wendler et al. 2024,
//! arXiv 2402.10588, and by the "Which LoRA?" study) decodes every layer's hidden state through
//! the final norm and the output head; the top-k tokens of each position are decoded to strings
//! and their language identified. This module holds the language identification and the
//! aggregation; [`crate::lab::Model::layer_languages`] runs the model.
//!
//! Language identification uses [lingua](https://github.com/pemistahl/lingua-rs) (pure Rust,
//! character 1–5-gram models plus script rules; the "Which LoRA?" paper used CLD3 and checked
//! with Lingua), restricted to the languages asked for
//! (`LanguageDetectorBuilder::from_languages`). Only the languages peftlab's studies use are
//! compiled in, see [`supported_codes`]: ar bg bn de el en es et fi fr hi id it ja ko ru sw ta te
//! th tr ur vi zh (XNLI's and TyDiQA's languages that lingua has, the `ui_strings` languages, and
//! en/ur/sw/hi/bn/te of the study); other codes are refused with an error listing these. To add
//! one, add its lingua feature in `Cargo.toml` (0.03–9 MB of binary each).
//!
//! On a single token identification is mostly a script decision: a token in Arabic script with
//! `langs: ["en", "ur"]` is Urdu, a Latin token is English. Tokens without letters (spaces,
//! digits, punctuation, byte fragments) are `other`, and so are tokens in a script none of the
//! languages uses (lingua's script filter leaves no candidate and it answers "unknown"; the tests
//! check Cyrillic, Han and Devanagari tokens among `["en", "ur"]`). Languages sharing a script
//! (en/sw, en/de, hi/mr, ur/ar) are separated by n-gram statistics, which are fairly reliable on
//! whole words but rough on 2–4 character sub-word pieces; where lingua cannot decide (two
//! languages score the same) the token is `other`. With a single language lingua only answers
//! when that language's unique or most common n-grams (or a script only it uses) are present,
//! so `langs: ["ur"]` alone counts fewer tokens than `["en", "ur"]`: compare at least two.
//!
//! The detector runs in lingua's high-accuracy mode (1–5-grams): low-accuracy mode uses trigrams
//! only and answers "unknown" for texts under three letters that the script does not decide,
//! i.e. for many sub-word tokens. High accuracy costs little memory here, because lingua reads
//! its models as FSTs straight from the binary's static data (no decoding into maps), so memory
//! grows only by the model pages a lookup touches, at most the requested languages' model sizes
//! (en 4.5 MB, ur 6.1 MB, sw 0.7 MB, hi 0.5 MB, bn 0.7 MB, te 0.3 MB). Measured peak RSS over
//! lingua's own test words: +4.6 MB for an en+ur detector on 4,000 words, +10.3 MB for all six
//! on 12,000 (accuracy on those words: 100 % and 98.3 %). Models are loaded lazily,
//! not preloaded: "loading" an FST only reads its header, and lazily lingua never opens the
//! models of languages whose script does not occur in the tokens.

use lingua::{IsoCode639_1, IsoCode639_3, Language, LanguageDetector, LanguageDetectorBuilder};
use std::str::FromStr;

/// Errors of the lens analysis.
#[derive(Debug, thiserror::Error)]
pub enum LensError {
    /// A language code the identifier does not cover.
    #[error("layer_languages: language '{0}' is not supported by the language identifier (supported ISO 639-1 codes: {1})")]
    Unsupported(String, String),
    /// Bad options.
    #[error("layer_languages: {0}")]
    Option(String),
}

/// Maps `en`, `zh_CN`, `eng`, `urd_Arab`, ... (ISO 639-1 or 639-3, with an optional region or
/// script suffix) to lingua's language; `None` if it is not one of the compiled-in languages.
pub fn lang_of(code: &str) -> Option<Language> {
    let base = code
        .split(['_', '-'])
        .next()
        .unwrap_or(code)
        .to_ascii_lowercase();
    match base.len() {
        2 => IsoCode639_1::from_str(&base)
            .ok()
            .map(|c| Language::from_iso_code_639_1(&c)),
        3 => IsoCode639_3::from_str(&base)
            .ok()
            .map(|c| Language::from_iso_code_639_3(&c)),
        _ => None,
    }
}

/// The ISO 639-1 codes of the languages the identifier covers, sorted.
pub fn supported_codes() -> Vec<String> {
    let mut codes: Vec<String> = Language::all()
        .iter()
        .map(|l| l.iso_code_639_1().to_string())
        .collect();
    codes.sort();
    codes
}

/// Identifies token strings among a fixed set of languages.
pub struct LangId {
    detector: LanguageDetector,
    langs: Vec<Language>,
    /// The codes as the caller gave them.
    pub codes: Vec<String>,
}

impl LangId {
    /// A detector restricted to `codes` (at least one, no language twice).
    pub fn new(codes: &[String]) -> Result<Self, LensError> {
        if codes.is_empty() {
            return Err(LensError::Option(
                "langs must name at least one language".into(),
            ));
        }
        let mut langs = Vec::new();
        for c in codes {
            let l = lang_of(c)
                .ok_or_else(|| LensError::Unsupported(c.clone(), supported_codes().join(", ")))?;
            if let Some(i) = langs.iter().position(|&k| k == l) {
                return Err(LensError::Option(format!(
                    "langs names {l:?} twice ('{}' and '{c}')",
                    codes[i]
                )));
            }
            langs.push(l);
        }
        Ok(LangId {
            detector: LanguageDetectorBuilder::from_languages(&langs).build(),
            langs,
            codes: codes.to_vec(),
        })
    }

    /// The index (into `codes`) of the token's language, or `None` for "other".
    pub fn identify(&self, token: &str) -> Option<usize> {
        if !token.chars().any(|c| c.is_alphabetic() || is_mark(c)) {
            return None;
        }
        let l = self.detector.detect_language_of(token)?;
        self.langs.iter().position(|&k| k == l)
    }
}

fn is_mark(c: char) -> bool {
    // Combining marks of Brahmic scripts (e.g. Devanagari vowel signs) are letters in effect.
    matches!(c as u32, 0x0900..=0x0DFF | 0x0E00..=0x0E7F | 0x1000..=0x109F)
}

/// Proportions per language (then `other`) of the identified tokens.
pub fn proportions(ids: &[Option<usize>], n_langs: usize) -> Vec<f64> {
    let mut counts = vec![0usize; n_langs + 1];
    for id in ids {
        counts[id.unwrap_or(n_langs)] += 1;
    }
    let total = ids.len().max(1) as f64;
    counts.into_iter().map(|c| c as f64 / total).collect()
}

#[cfg(test)]
mod tests {
    use super::*;

    /// Four real sentences and four common words per language, written by hand (generator:
    /// `make_which_lora_fixtures.py`, which checks their scripts).
    const SAMPLES: &str = include_str!(concat!(
        env!("CARGO_MANIFEST_DIR"),
        "/tests/fixtures/lang_id/samples.json"
    ));
    const SIX: [&str; 6] = ["en", "ur", "sw", "hi", "bn", "te"];

    fn samples(lang: &str, kind: &str) -> Vec<String> {
        let v: serde_json::Value = serde_json::from_str(SAMPLES).unwrap();
        let list = v[lang][kind].as_array().unwrap();
        assert_eq!(list.len(), 4, "{lang} {kind}");
        list.iter()
            .map(|s| s.as_str().unwrap().to_string())
            .collect()
    }

    fn codes(c: &[&str]) -> Vec<String> {
        c.iter().map(|s| s.to_string()).collect()
    }

    #[test]
    fn scripts_decide_single_tokens() {
        let id = LangId::new(&codes(&["en", "ur", "hi"])).unwrap();
        assert_eq!(id.identify(" the"), Some(0));
        assert_eq!(id.identify("ہے"), Some(1));
        assert_eq!(id.identify("ें"), Some(2));
        assert_eq!(id.identify(" 42,"), None);
        assert_eq!(id.identify("Привет"), None);
        assert_eq!(
            proportions(&[Some(0), None, Some(0), Some(1)], 2),
            vec![0.5, 0.25, 0.25]
        );
    }

    #[test]
    fn sentences_are_identified_among_six_languages() {
        let id = LangId::new(&codes(&SIX)).unwrap();
        for (i, lang) in SIX.iter().enumerate() {
            for s in samples(lang, "sentences") {
                assert_eq!(id.identify(&s), Some(i), "{lang}: {s:?}");
            }
        }
    }

    #[test]
    fn tokens_are_identified_against_english() {
        for lang in SIX {
            let pair = if lang == "en" {
                codes(&["en", "sw"])
            } else {
                codes(&["en", lang])
            };
            let want = usize::from(lang != "en");
            let id = LangId::new(&pair).unwrap();
            for t in samples(lang, "tokens") {
                assert_eq!(id.identify(&t), Some(want), "{lang} among {pair:?}: {t:?}");
                // As a tokenizer piece with its leading space, too.
                assert_eq!(
                    id.identify(&format!(" {t}")),
                    Some(want),
                    "{lang}: \" {t}\""
                );
            }
        }
    }

    #[test]
    fn tokens_without_letters_or_in_other_scripts_are_other() {
        let id = LangId::new(&codes(&["en", "ur"])).unwrap();
        for t in [
            "", " ", "42", " 3.14", ",", "...", "\n", "!?", "%", "(", "\u{FFFD}",
        ] {
            assert_eq!(id.identify(t), None, "{t:?}");
        }
        // Cyrillic, Han and Devanagari: scripts neither English nor Urdu uses.
        for t in ["Привет", "хорошо", "你好", "नहीं"] {
            assert_eq!(id.identify(t), None, "{t:?}");
        }
        // The same scripts are identified once a language using them is asked for.
        let id = LangId::new(&codes(&["en", "ru", "zh", "hi"])).unwrap();
        assert_eq!(id.identify("Привет"), Some(1));
        assert_eq!(id.identify("你好"), Some(2));
        assert_eq!(id.identify("नहीं"), Some(3));
    }

    #[test]
    fn codes_map_to_languages_and_unsupported_codes_are_refused() {
        for (code, lang) in [
            ("en", Language::English),
            ("EN", Language::English),
            ("sw", Language::Swahili),
            ("zh_CN", Language::Chinese),
            ("urd_Arab", Language::Urdu),
            ("tel", Language::Telugu),
        ] {
            assert_eq!(lang_of(code), Some(lang), "{code}");
        }
        // Exactly the list in the module docs and the `layer_languages` binding doc: XNLI's and
        // TyDiQA's languages that lingua has, the ui_strings languages, en/ur/sw/hi/bn/te.
        assert_eq!(
            supported_codes().join(" "),
            "ar bg bn de el en es et fi fr hi id it ja ko ru sw ta te th tr ur vi zh"
        );
        // Amharic is not among lingua's languages; Portuguese is but is not compiled in.
        for bad in ["am", "pt", "xx", "english", ""] {
            let e = LangId::new(&codes(&[bad])).err().unwrap().to_string();
            assert!(
                e.contains(&format!("'{bad}'")) && e.contains("sw, ta, te"),
                "{e}"
            );
        }
        let e = LangId::new(&[]).err().unwrap().to_string();
        assert!(e.contains("at least one"), "{e}");
        let e = LangId::new(&codes(&["en", "eng"]))
            .err()
            .unwrap()
            .to_string();
        assert!(e.contains("twice") && e.contains("'eng'"), "{e}");
    }
}
