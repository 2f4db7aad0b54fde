//! Layer-wise language analysis: the logit lens plus language identification.
//!
//! The logit lens (nostalgebraist 2020; used for multilingual models by Wendler et al. 2024,
//! arXiv 2402.10588, and by the "Which LoRA?" study) decodes every layer's hidden state through
//! the final norm and the output head; the top-k tokens of each position are decoded to strings
//! and their language identified. This module holds the language identification and the
//! aggregation; [`crate::lab::Model::layer_languages`] runs the model.
//!
//! Language identification uses `whatlang` (pure Rust, 69 languages, ISO 639-3), restricted to
//! the languages asked for. On a single token it is essentially a script decision: a token in
//! Arabic script with `langs: ["en", "ur"]` is Urdu, a Latin token is English; tokens without
//! letters (spaces, digits, punctuation, byte fragments) and tokens in a script none of the
//! languages uses count as `other`. Two languages sharing a script (en/de, hi/mr, ur/ar) are
//! separated only by trigram statistics, which are unreliable on 2–4 character tokens: compare
//! languages of different scripts, or read such proportions as rough. Swahili is not among
//! whatlang's languages and is refused with a clear error.

use whatlang::{Detector, Lang};

/// Errors of the lens analysis.
#[derive(Debug, thiserror::Error)]
pub enum LensError {
    /// A language code whatlang cannot identify.
    #[error("layer_languages: language '{0}' is not supported by the language identifier (supported ISO 639-1 codes: {1})")]
    Unsupported(String, String),
    /// Bad options.
    #[error("layer_languages: {0}")]
    Option(String),
}

const CODES: &[(&str, Lang)] = &[
    ("af", Lang::Afr),
    ("ak", Lang::Aka),
    ("am", Lang::Amh),
    ("ar", Lang::Ara),
    ("az", Lang::Aze),
    ("be", Lang::Bel),
    ("bg", Lang::Bul),
    ("bn", Lang::Ben),
    ("ca", Lang::Cat),
    ("cs", Lang::Ces),
    ("cy", Lang::Cym),
    ("da", Lang::Dan),
    ("de", Lang::Deu),
    ("el", Lang::Ell),
    ("en", Lang::Eng),
    ("eo", Lang::Epo),
    ("es", Lang::Spa),
    ("et", Lang::Est),
    ("fa", Lang::Pes),
    ("fi", Lang::Fin),
    ("fr", Lang::Fra),
    ("gu", Lang::Guj),
    ("he", Lang::Heb),
    ("hi", Lang::Hin),
    ("hr", Lang::Hrv),
    ("hu", Lang::Hun),
    ("hy", Lang::Hye),
    ("id", Lang::Ind),
    ("it", Lang::Ita),
    ("ja", Lang::Jpn),
    ("jv", Lang::Jav),
    ("ka", Lang::Kat),
    ("km", Lang::Khm),
    ("kn", Lang::Kan),
    ("ko", Lang::Kor),
    ("la", Lang::Lat),
    ("lt", Lang::Lit),
    ("lv", Lang::Lav),
    ("mk", Lang::Mkd),
    ("ml", Lang::Mal),
    ("mr", Lang::Mar),
    ("my", Lang::Mya),
    ("nb", Lang::Nob),
    ("ne", Lang::Nep),
    ("nl", Lang::Nld),
    ("or", Lang::Ori),
    ("pa", Lang::Pan),
    ("pl", Lang::Pol),
    ("pt", Lang::Por),
    ("ro", Lang::Ron),
    ("ru", Lang::Rus),
    ("si", Lang::Sin),
    ("sk", Lang::Slk),
    ("sl", Lang::Slv),
    ("sn", Lang::Sna),
    ("sr", Lang::Srp),
    ("sv", Lang::Swe),
    ("ta", Lang::Tam),
    ("te", Lang::Tel),
    ("th", Lang::Tha),
    ("tk", Lang::Tuk),
    ("tl", Lang::Tgl),
    ("tr", Lang::Tur),
    ("uk", Lang::Ukr),
    ("ur", Lang::Urd),
    ("uz", Lang::Uzb),
    ("vi", Lang::Vie),
    ("yi", Lang::Yid),
    ("zh", Lang::Cmn),
    ("zu", Lang::Zul),
];

/// Maps `en`, `zh_CN`, `eng`, ... to whatlang's language.
pub fn lang_of(code: &str) -> Option<Lang> {
    let base = code
        .split(['_', '-'])
        .next()
        .unwrap_or(code)
        .to_ascii_lowercase();
    CODES
        .iter()
        .find(|(c, _)| *c == base)
        .map(|(_, l)| *l)
        .or_else(|| Lang::from_code(base))
}

/// Identifies token strings among a fixed set of languages.
pub struct LangId {
    detector: Detector,
    langs: Vec<Lang>,
    /// The codes as the caller gave them.
    pub codes: Vec<String>,
}

impl LangId {
    /// A detector restricted to `codes`.
    pub fn new(codes: &[String]) -> Result<Self, LensError> {
        if codes.is_empty() {
            return Err(LensError::Option(
                "langs must name at least one language".into(),
            ));
        }
        let mut langs = Vec::new();
        for c in codes {
            let l = lang_of(c).ok_or_else(|| {
                LensError::Unsupported(
                    c.clone(),
                    CODES.iter().map(|(c, _)| *c).collect::<Vec<_>>().join(", "),
                )
            })?;
            langs.push(l);
        }
        Ok(LangId {
            detector: Detector::with_allowlist(langs.clone()),
            langs,
            codes: codes.to_vec(),
        })
    }

    /// The index (into `codes`) of the token's language, or `None` for "other".
    pub fn identify(&self, token: &str) -> Option<usize> {
        if !token.chars().any(char::is_alphabetic) && !token.chars().any(is_mark) {
            return None;
        }
        let info = self.detector.detect(token)?;
        self.langs.iter().position(|&l| l == info.lang())
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

    #[test]
    fn scripts_decide_single_tokens() {
        let id = LangId::new(&["en".into(), "ur".into(), "hi".into()]).unwrap();
        assert_eq!(id.identify(" the"), Some(0));
        assert_eq!(id.identify("ہے"), Some(1));
        assert_eq!(id.identify("ें"), Some(2));
        assert_eq!(id.identify(" 42,"), None);
        assert_eq!(id.identify("Привет"), None);
        let e = LangId::new(&["sw".into()]).err().unwrap().to_string();
        assert!(e.contains("'sw'") && e.contains("ur"), "{e}");
        assert_eq!(
            proportions(&[Some(0), None, Some(0), Some(1)], 2),
            vec![0.5, 0.25, 0.25]
        );
    }
}
