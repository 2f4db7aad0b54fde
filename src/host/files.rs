//! File helpers used by the core bindings and the study-cell store: atomic writes, streaming
//! SHA-256, JSON files and RFC 3339 timestamps. No `rhai` here.
//!
//! The date conversion is Howard Hinnant's `civil_from_days` algorithm
//! (<https://howardhinnant.github.io/date_algorithms.html#civil_from_days>).

use std::fs;
use std::io::Read;
use std::path::{Path, PathBuf};
use std::time::{SystemTime, UNIX_EPOCH};

use sha2::{Digest, Sha256};

use crate::interrupt::{self, Interrupted};

/// Errors of the file helpers.
#[derive(Debug, thiserror::Error)]
pub enum FileError {
    /// Reading or writing failed.
    #[error("{action} {}: {source}", shown_path(path))]
    Io {
        /// What was being done ("cannot read", "cannot write", ...).
        action: &'static str,
        /// The file.
        path: PathBuf,
        /// The I/O error.
        #[source]
        source: std::io::Error,
    },
    /// The file is not valid JSON.
    #[error("'{path}' is not valid JSON: {source}")]
    Json {
        /// The file.
        path: PathBuf,
        /// The parse error.
        #[source]
        source: serde_json::Error,
    },
    /// The user pressed Ctrl-C.
    #[error(transparent)]
    Interrupted(#[from] Interrupted),
}

/// Longest path shown whole in an error; a longer one is cut to its first 80 characters.
const MAX_SHOWN_PATH: usize = 120;

/// `'path'` for an error message; an overlong "path" (typically text passed where a path was
/// expected, e.g. `write_text(path, text)`) is cut to its first 80 characters with its length.
pub fn shown_path(path: &Path) -> String {
    let s = path.to_string_lossy();
    let n = s.chars().count();
    if n <= MAX_SHOWN_PATH {
        format!("'{s}'")
    } else {
        let head: String = s.chars().take(80).collect();
        format!("'{head}…' ({n} characters; is the argument order right?)")
    }
}

fn io<'a>(action: &'static str, path: &'a Path) -> impl FnOnce(std::io::Error) -> FileError + 'a {
    move |source| FileError::Io {
        action,
        path: path.to_path_buf(),
        source,
    }
}

/// Writes `bytes` to `path` atomically ([`crate::fsutil::write_atomic`]) with a file error.
pub fn write_atomic(path: &Path, bytes: &[u8]) -> Result<(), FileError> {
    crate::fsutil::write_atomic(path, bytes).map_err(|e| FileError::Io {
        action: "cannot write",
        path: path.to_path_buf(),
        source: e,
    })
}

/// Lowercase hex SHA-256 of a file, read in 1 MiB chunks; polls the interrupt flag per chunk.
pub fn sha256_file(path: &Path) -> Result<String, FileError> {
    let mut f = fs::File::open(path).map_err(io("cannot open", path))?;
    let mut h = Sha256::new();
    let mut buf = vec![0u8; 1 << 20];
    loop {
        interrupt::check()?;
        let n = f.read(&mut buf).map_err(io("cannot read", path))?;
        if n == 0 {
            break;
        }
        h.update(&buf[..n]);
    }
    Ok(crate::text::hex(&h.finalize()))
}

/// Lowercase hex SHA-256 of bytes.
pub fn sha256_bytes(bytes: &[u8]) -> String {
    crate::text::sha256_hex(bytes)
}

/// Reads and parses a JSON file.
pub fn read_json(path: &Path) -> Result<serde_json::Value, FileError> {
    let text = fs::read_to_string(path).map_err(io("cannot read", path))?;
    serde_json::from_str(&text).map_err(|source| FileError::Json {
        path: path.to_path_buf(),
        source,
    })
}

/// Writes a JSON value (pretty-printed, with a final newline) atomically.
pub fn write_json(path: &Path, value: &serde_json::Value, pretty: bool) -> Result<(), FileError> {
    let mut text = if pretty {
        serde_json::to_string_pretty(value)
    } else {
        serde_json::to_string(value)
    }
    .map_err(|source| FileError::Json {
        path: path.to_path_buf(),
        source,
    })?;
    text.push('\n');
    write_atomic(path, text.as_bytes())
}

/// Seconds since the Unix epoch (wall clock).
pub fn unix_seconds(t: SystemTime) -> f64 {
    match t.duration_since(UNIX_EPOCH) {
        Ok(d) => d.as_secs_f64(),
        Err(e) => -e.duration().as_secs_f64(),
    }
}

/// RFC 3339 UTC timestamp with second precision, e.g. `2024-02-29T13:05:09Z`.
pub fn rfc3339_utc(t: SystemTime) -> String {
    let secs = unix_seconds(t).floor() as i64;
    let days = secs.div_euclid(86_400);
    let rem = secs.rem_euclid(86_400);
    let (y, m, d) = civil_from_days(days);
    format!(
        "{y:04}-{m:02}-{d:02}T{:02}:{:02}:{:02}Z",
        rem / 3600,
        rem % 3600 / 60,
        rem % 60
    )
}

/// (year, month, day) of a day count since 1970-01-01 (proleptic Gregorian calendar).
fn civil_from_days(z: i64) -> (i64, i64, i64) {
    let z = z + 719_468;
    let era = z.div_euclid(146_097);
    let doe = z.rem_euclid(146_097);
    let yoe = (doe - doe / 1460 + doe / 36_524 - doe / 146_096) / 365;
    let y = yoe + era * 400;
    let doy = doe - (365 * yoe + yoe / 4 - yoe / 100);
    let mp = (5 * doy + 2) / 153;
    let d = doy - (153 * mp + 2) / 5 + 1;
    let m = if mp < 10 { mp + 3 } else { mp - 9 };
    (if m <= 2 { y + 1 } else { y }, m, d)
}

#[cfg(test)]
mod tests {
    use super::*;
    use std::time::Duration;

    #[test]
    fn overlong_paths_are_cut_in_errors() {
        let text = "x".repeat(15_000);
        let e = write_atomic(Path::new(&format!("/nonexistent-dir-peftlab/{text}")), b"a")
            .unwrap_err()
            .to_string();
        assert!(e.len() < 400, "{} characters", e.len());
        assert!(
            e.contains("(15025 characters; is the argument order right?)"),
            "{e}"
        );
        assert_eq!(shown_path(Path::new("out/a.txt")), "'out/a.txt'");
    }

    #[test]
    fn rfc3339_known_instants() {
        // Checked with Python: datetime.fromtimestamp(t, timezone.utc).isoformat()
        let at = |s: u64| rfc3339_utc(UNIX_EPOCH + Duration::from_secs(s));
        assert_eq!(at(0), "1970-01-01T00:00:00Z");
        assert_eq!(at(951_782_400), "2000-02-29T00:00:00Z");
        assert_eq!(at(1_709_211_909), "2024-02-29T13:05:09Z");
        assert_eq!(at(4_102_444_799), "2099-12-31T23:59:59Z");
    }

    #[test]
    fn sha256_and_atomic_write() {
        let dir = tempfile::tempdir().unwrap();
        let p = dir.path().join("a/b/x.txt");
        write_atomic(&p, b"abc").unwrap();
        // sha256("abc") from FIPS 180-2, appendix B.1.
        assert_eq!(
            sha256_file(&p).unwrap(),
            "ba7816bf8f01cfea414140de5dae2223b00361a396177a9cb410ff61f20015ad"
        );
        assert_eq!(sha256_bytes(b"abc"), sha256_file(&p).unwrap());
        let leftovers: Vec<_> = fs::read_dir(p.parent().unwrap()).unwrap().collect();
        assert_eq!(leftovers.len(), 1);
        let e = sha256_file(&dir.path().join("missing"))
            .unwrap_err()
            .to_string();
        assert!(e.starts_with("cannot open '"), "{e}");
    }
}
