//! Small text helpers shared across layers: Python's whitespace predicate (tokenisation-aware
//! scoring in `model` and lm-eval's string handling in `eval` both need it), lower-case hex and
//! SHA-256 digests (hashes of configs, checkpoints, items files and cells).

use sha2::{Digest, Sha256};

/// Python `str.isspace()`: Unicode whitespace plus the ASCII separators U+001C–U+001F.
pub fn is_py_space(c: char) -> bool {
    c.is_whitespace() || ('\u{1c}'..='\u{1f}').contains(&c)
}

/// Lower-case hex of bytes.
pub fn hex(bytes: &[u8]) -> String {
    use std::fmt::Write;
    let mut s = String::with_capacity(bytes.len() * 2);
    for b in bytes {
        let _ = write!(s, "{b:02x}");
    }
    s
}

/// Lower-case hex SHA-256 of bytes.
pub fn sha256_hex(bytes: &[u8]) -> String {
    hex(&Sha256::digest(bytes))
}

/// Byte offset of the earliest occurrence of any non-empty stop string in `text`.
pub fn first_stop(text: &str, stops: &[String]) -> Option<usize> {
    stops
        .iter()
        .filter(|s| !s.is_empty())
        .filter_map(|s| text.find(s.as_str()))
        .min()
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn hex_and_sha256_of_known_inputs() {
        assert_eq!(hex(&[0x00, 0x0f, 0xa5, 0xff]), "000fa5ff");
        // FIPS 180-2 test vector.
        assert_eq!(
            sha256_hex(b"abc"),
            "ba7816bf8f01cfea414140de5dae2223b00361a396177a9cb410ff61f20015ad"
        );
    }

    #[test]
    fn first_stop_is_the_earliest_non_empty_match() {
        let stops = ["\n\n".to_string(), String::new(), "Q:".to_string()];
        assert_eq!(first_stop("a Q: b\n\nc", &stops), Some(2));
        assert_eq!(first_stop("ab\n\nQ:", &stops), Some(2));
        assert_eq!(first_stop("abc", &stops), None);
        assert_eq!(first_stop("abc", &[String::new()]), None);
    }

    #[test]
    fn python_whitespace() {
        for c in [
            ' ', '\t', '\n', '\u{b}', '\u{c}', '\r', '\u{1c}', '\u{1f}', '\u{85}', '\u{a0}',
            '\u{3000}',
        ] {
            assert!(is_py_space(c), "{c:?}");
        }
        for c in ['a', '\u{0}', '\u{1b}', '\u{200b}'] {
            assert!(!is_py_space(c), "{c:?}");
        }
    }
}
