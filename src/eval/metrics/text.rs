//! Character classes and string helpers that reproduce Python's `str` semantics used by the
//! reference metric scripts (SQuAD v1.1 `evaluate-v1.1.py`, facebookresearch/MLQA
//! `mlqa_evaluation_v1.py`, csebuetnlp/xl-sum `multilingual_rouge_scoring`).
//!
//! * `str.split()` splits on every character for which `str.isspace()` is true: Unicode
//!   `White_Space` plus U+001C..U+001F (which Rust's `split_whitespace` keeps).
//! * `string.punctuation` is Rust's `is_ascii_punctuation`.
//! * `unicodedata.category(c).startswith("P")` is the regex class `\p{P}`.
//! * Python's `\w` on `str` patterns is `isalnum() or "_"`, i.e. `[\p{L}\p{N}_]` (combining
//!   marks are not word characters).

use std::sync::LazyLock;

use regex::Regex;

static PUNCT_P: LazyLock<Regex> =
    LazyLock::new(|| Regex::new(r"^\p{P}$").expect("constant pattern"));
static WORD: LazyLock<Regex> =
    LazyLock::new(|| Regex::new(r"^[\p{L}\p{N}_]$").expect("constant pattern"));
static CONTROL: LazyLock<Regex> =
    LazyLock::new(|| Regex::new(r"^\p{C}$").expect("constant pattern"));
static SPACE_SEP: LazyLock<Regex> =
    LazyLock::new(|| Regex::new(r"^\p{Zs}$").expect("constant pattern"));
static LETTER_OR_MARK: LazyLock<Regex> =
    LazyLock::new(|| Regex::new(r"^[\p{L}\p{M}]$").expect("constant pattern"));
static NUMBER: LazyLock<Regex> =
    LazyLock::new(|| Regex::new(r"^\p{N}$").expect("constant pattern"));

fn matches(re: &Regex, c: char) -> bool {
    let mut buf = [0u8; 4];
    re.is_match(c.encode_utf8(&mut buf))
}

pub use crate::text::is_py_space;

/// Python `str.split()` (no argument): split on runs of whitespace, no empty pieces.
pub fn py_split(s: &str) -> Vec<&str> {
    s.split(is_py_space).filter(|t| !t.is_empty()).collect()
}

/// `" ".join(s.split())`.
pub fn py_whitespace_fix(s: &str) -> String {
    py_split(s).join(" ")
}

/// Unicode general category P* (Pc, Pd, Ps, Pe, Pi, Pf, Po).
pub fn is_unicode_punct(c: char) -> bool {
    matches(&PUNCT_P, c)
}

/// The MLQA `PUNCT` set: Unicode P* plus Python's `string.punctuation` (which adds the ASCII
/// symbols `$+<=>^`|~`).
pub fn is_mlqa_punct(c: char) -> bool {
    c.is_ascii_punctuation() || is_unicode_punct(c)
}

/// Python `\w` on a `str` pattern.
pub fn is_py_word(c: char) -> bool {
    matches(&WORD, c)
}

/// Unicode general category C* (Cc, Cf, Cs, Co, Cn).
pub fn is_control_category(c: char) -> bool {
    matches(&CONTROL, c)
}

/// Unicode general category Zs.
pub fn is_space_separator(c: char) -> bool {
    matches(&SPACE_SEP, c)
}

/// Unicode letters and combining marks (L*, M*).
pub fn is_letter_or_mark(c: char) -> bool {
    matches(&LETTER_OR_MARK, c)
}

/// Unicode numbers (N*).
pub fn is_number(c: char) -> bool {
    matches(&NUMBER, c)
}

/// Python `re.sub(r"\b(w1|w2|...)\b", " ", text)` for plain words: every maximal run of word
/// characters that equals one of `words` is replaced by a single space. (A match of
/// `\b(...)\b` consists of word characters only and is bounded by non-word characters, so it is
/// exactly such a run.)
pub fn replace_words(text: &str, words: &[&str]) -> String {
    let mut out = String::with_capacity(text.len());
    let mut run = String::new();
    let flush = |run: &mut String, out: &mut String| {
        if words.contains(&run.as_str()) {
            out.push(' ');
        } else {
            out.push_str(run);
        }
        run.clear();
    };
    for c in text.chars() {
        if is_py_word(c) {
            run.push(c);
        } else {
            flush(&mut run, &mut out);
            out.push(c);
        }
    }
    flush(&mut run, &mut out);
    out
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn python_split_and_classes() {
        // U+001F splits in Python but is not White_Space in Rust.
        assert_eq!(py_split(" a\u{1f}b\u{3000}c\n"), vec!["a", "b", "c"]);
        assert!(is_unicode_punct('؟') && is_unicode_punct('。') && is_unicode_punct('«'));
        assert!(!is_unicode_punct('$') && is_mlqa_punct('$') && is_mlqa_punct('^'));
        assert!(is_py_word('ب') && is_py_word('9') && is_py_word('_') && !is_py_word('-'));
        // A Devanagari vowel sign is a mark: not a Python word character.
        assert!(!is_py_word('\u{093f}') && is_letter_or_mark('\u{093f}'));
        assert!(is_control_category('\u{200d}') && !is_control_category('a'));
        assert!(is_space_separator('\u{a0}') && !is_space_separator('\n'));
    }

    #[test]
    fn word_replacement_respects_boundaries() {
        assert_eq!(
            replace_words("the theme of a cat", &["a", "the"]),
            "  theme of   cat"
        );
        assert_eq!(
            replace_words("la casa, las dos", &["la", "las"]),
            "  casa,   dos"
        );
    }
}
