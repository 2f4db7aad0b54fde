//! Size limits: how big and how deeply nested script values may grow, and whether an
//! allocation fits the machine before it is made.
//!
//! Two kinds of limit keep bad input from aborting the process:
//!
//! - **Value limits** ([`Limits`]): the script engine refuses arrays, strings and maps beyond a
//!   size, and peftlab's own code that walks nested values (equality, printing, conversion to
//!   JSON) refuses values nested deeper than [`Limits::max_depth`]. The defaults are far above
//!   what a study needs (a 5,010-item XNLI log is 5,010 elements) and are raised with the
//!   command-line flags `--max-array-size`, `--max-string-size`, `--max-map-size` and
//!   `--max-depth`. They are process-wide: the front end sets them once with [`set`] before it
//!   builds the engine.
//! - **Allocation checks** ([`check_alloc`]): a size option (an adapter rank, a resample count,
//!   a layer count read from `config.json`) is turned into the bytes it will need, with
//!   overflow-checked arithmetic, and compared with the memory this machine has available
//!   *before* anything is allocated. Rust aborts the process when an allocation fails, so this
//!   check is the only way such an input can end in an error instead.
//!
//! This module does not depend on `rhai`.
//!
//! ```
//! use peftlab::limits::{check_alloc, checked_count};
//! // 1e9 × (64 + 64) f32 parameters is 512 GB: refused before anything is allocated.
//! let n = checked_count("add_adapter: r = 1000000000", &[1_000_000_000, 128]).unwrap();
//! let err = check_alloc("add_adapter: r = 1000000000", n, 4).unwrap_err();
//! assert!(err.to_string().starts_with("add_adapter: r = 1000000000 needs 512.0 GB"), "{err}");
//! // An overflowing product is an error too.
//! assert!(checked_count("r", &[u64::MAX, 3]).is_err());
//! // Small requests pass.
//! check_alloc("lora_A", 8 * 64, 4).unwrap();
//! ```

use std::sync::atomic::{AtomicUsize, Ordering};

/// Engine limits on script values (see the module documentation).
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct Limits {
    /// Most elements in one array, nested arrays' elements included (rhai counts them so).
    pub max_array_size: usize,
    /// Most bytes in one string (and in all strings inside one array or map).
    pub max_string_size: usize,
    /// Most entries in one object map, nested maps' entries included.
    pub max_map_size: usize,
    /// Deepest nesting of arrays and maps that peftlab's functions walk.
    pub max_depth: usize,
}

impl Limits {
    /// The defaults: 16,777,216 array elements, 256 MiB of string, 1,048,576 map entries and 512
    /// levels of nesting.
    pub const DEFAULT: Limits = Limits {
        max_array_size: 16 << 20,
        max_string_size: 256 << 20,
        max_map_size: 1 << 20,
        max_depth: 512,
    };
}

impl Default for Limits {
    fn default() -> Self {
        Limits::DEFAULT
    }
}

static MAX_ARRAY: AtomicUsize = AtomicUsize::new(Limits::DEFAULT.max_array_size);
static MAX_STRING: AtomicUsize = AtomicUsize::new(Limits::DEFAULT.max_string_size);
static MAX_MAP: AtomicUsize = AtomicUsize::new(Limits::DEFAULT.max_map_size);
static MAX_DEPTH: AtomicUsize = AtomicUsize::new(Limits::DEFAULT.max_depth);

/// Sets the process-wide limits (the command line does this once, before building engines).
pub fn set(l: Limits) {
    MAX_ARRAY.store(l.max_array_size, Ordering::Relaxed);
    MAX_STRING.store(l.max_string_size, Ordering::Relaxed);
    MAX_MAP.store(l.max_map_size, Ordering::Relaxed);
    MAX_DEPTH.store(l.max_depth, Ordering::Relaxed);
}

/// The process-wide limits in force.
pub fn get() -> Limits {
    Limits {
        max_array_size: MAX_ARRAY.load(Ordering::Relaxed),
        max_string_size: MAX_STRING.load(Ordering::Relaxed),
        max_map_size: MAX_MAP.load(Ordering::Relaxed),
        max_depth: MAX_DEPTH.load(Ordering::Relaxed),
    }
}

/// The nesting limit in force ([`Limits::max_depth`]).
pub fn max_depth() -> usize {
    MAX_DEPTH.load(Ordering::Relaxed)
}

/// A size that cannot be served.
#[derive(Debug, Clone, PartialEq, Eq, thiserror::Error)]
pub enum SizeError {
    /// The element count overflows 64 bits.
    #[error("{what}: the size overflows (a product of {factors})")]
    Overflow {
        /// What was being sized.
        what: String,
        /// The factors, as text.
        factors: String,
    },
    /// The allocation is larger than the memory available.
    #[error(
        "{what} needs {}, more than the {} of memory available on this machine",
        human_bytes(*bytes),
        human_bytes(*available as u128)
    )]
    TooLarge {
        /// What was being sized.
        what: String,
        /// Bytes needed.
        bytes: u128,
        /// Bytes available.
        available: u64,
    },
    /// A value nested deeper than [`Limits::max_depth`].
    #[error("{what} is nested deeper than {limit} levels (raise the limit with --max-depth)")]
    TooDeep {
        /// Where.
        what: String,
        /// The limit in force.
        limit: usize,
    },
}

/// `n` bytes as text with a decimal unit (`512.0 GB`).
pub fn human_bytes(n: u128) -> String {
    const UNITS: [&str; 6] = ["bytes", "kB", "MB", "GB", "TB", "PB"];
    if n < 1000 {
        return format!("{n} bytes");
    }
    let mut x = n as f64;
    let mut u = 0;
    while x >= 1000.0 && u + 1 < UNITS.len() {
        x /= 1000.0;
        u += 1;
    }
    format!("{x:.1} {}", UNITS[u])
}

/// The product of `factors` with overflow checking.
pub fn checked_count(what: &str, factors: &[u64]) -> Result<u128, SizeError> {
    let mut n: u128 = 1;
    for &f in factors {
        n = n
            .checked_mul(u128::from(f))
            .filter(|&n| n <= u128::from(u64::MAX))
            .ok_or_else(|| SizeError::Overflow {
                what: what.to_string(),
                factors: factors
                    .iter()
                    .map(u64::to_string)
                    .collect::<Vec<_>>()
                    .join(" × "),
            })?;
    }
    Ok(n)
}

/// Memory this process may still allocate, in bytes: `MemAvailable` of `/proc/meminfo` (plus
/// free swap), or, where that file does not exist, a fixed 16 GiB.
pub fn available_memory() -> u64 {
    fn field(text: &str, key: &str) -> Option<u64> {
        let line = text.lines().find(|l| l.starts_with(key))?;
        let kb: u64 = line.split_whitespace().nth(1)?.parse().ok()?;
        kb.checked_mul(1024)
    }
    match std::fs::read_to_string("/proc/meminfo") {
        Ok(t) => match field(&t, "MemAvailable:") {
            Some(avail) => avail.saturating_add(field(&t, "SwapFree:").unwrap_or(0)),
            None => 16 << 30,
        },
        Err(_) => 16 << 30,
    }
}

/// Checks that `count` elements of `elem_bytes` bytes each fit in the available memory.
pub fn check_alloc(what: &str, count: u128, elem_bytes: u64) -> Result<(), SizeError> {
    let bytes = count.saturating_mul(u128::from(elem_bytes));
    // Small requests never need the (file-reading) memory probe.
    if bytes <= 64 << 20 {
        return Ok(());
    }
    let available = available_memory();
    if bytes > u128::from(available) {
        return Err(SizeError::TooLarge {
            what: what.to_string(),
            bytes,
            available,
        });
    }
    Ok(())
}

/// [`checked_count`] then [`check_alloc`]: the product of `factors` elements of `elem_bytes`.
pub fn check_elems(what: &str, factors: &[u64], elem_bytes: u64) -> Result<(), SizeError> {
    check_alloc(what, checked_count(what, factors)?, elem_bytes)
}

/// `Err(TooDeep)` when `depth` exceeds [`max_depth`].
pub fn check_depth(what: &str, depth: usize) -> Result<(), SizeError> {
    let limit = max_depth();
    if depth > limit {
        Err(SizeError::TooDeep {
            what: what.to_string(),
            limit,
        })
    } else {
        Ok(())
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn human_bytes_and_counts() {
        assert_eq!(human_bytes(999), "999 bytes");
        assert_eq!(human_bytes(1_500), "1.5 kB");
        assert_eq!(human_bytes(512_000_000_000), "512.0 GB");
        assert_eq!(checked_count("x", &[3, 4, 5]).unwrap(), 60);
        let e = checked_count("r", &[u64::MAX, 2]).unwrap_err();
        assert_eq!(
            e.to_string(),
            format!("r: the size overflows (a product of {} × 2)", u64::MAX)
        );
    }

    #[test]
    fn allocation_beyond_memory_is_refused() {
        let avail = available_memory();
        assert!(avail > 0);
        let e = check_alloc("thing", u128::from(avail) + 1, 1).unwrap_err();
        assert!(matches!(e, SizeError::TooLarge { .. }), "{e}");
        assert!(check_alloc("thing", 1 << 20, 8).is_ok());
        // The product saturates instead of wrapping.
        assert!(check_alloc("thing", u128::MAX, 8).is_err());
    }

    #[test]
    fn depth_limit() {
        assert!(check_depth("v", max_depth()).is_ok());
        let e = check_depth("the value", max_depth() + 1).unwrap_err();
        assert_eq!(
            e.to_string(),
            format!(
                "the value is nested deeper than {} levels (raise the limit with --max-depth)",
                max_depth()
            )
        );
    }
}
