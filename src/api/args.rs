//! Argument conversions shared by the bindings (token ids, label rows, string and number
//! arrays), each with an error that names the function and the bad value.

use rhai::{Array, Dynamic, INT};

use crate::host::{fail, RhaiResult};

fn int_of(fn_name: &str, what: &str, v: &Dynamic) -> RhaiResult<INT> {
    v.as_int()
        .map_err(|t| fail(format!("{fn_name}: {what} must be integers (got a {t})")))
}

/// A count (rows, draws, a group size) given as a script integer: a negative value is an error
/// naming the function, the argument and the value (never clamped to 0 or wrapped around).
pub fn count(fn_name: &str, what: &str, v: INT) -> RhaiResult<usize> {
    usize::try_from(v).map_err(|_| fail(format!("{fn_name}: {what} must be >= 0 (got {v})")))
}

/// A token id array.
pub fn ids(fn_name: &str, a: &Array) -> RhaiResult<Vec<u32>> {
    a.iter()
        .map(|v| {
            let i = int_of(fn_name, "token ids", v)?;
            u32::try_from(i).map_err(|_| fail(format!("{fn_name}: token id {i} is out of range")))
        })
        .collect()
}

/// Whether an array holds arrays (a batch) rather than numbers.
pub fn is_batch(a: &Array) -> bool {
    a.first().is_some_and(|v| v.is_array())
}

/// An array of id arrays.
pub fn id_rows(fn_name: &str, a: &Array) -> RhaiResult<Vec<Vec<u32>>> {
    a.iter()
        .enumerate()
        .map(|(i, row)| {
            let r = row.clone().into_array().map_err(|t| {
                fail(format!(
                    "{fn_name}: row {i} must be an array of ids (got a {t})"
                ))
            })?;
            ids(fn_name, &r)
        })
        .collect()
}

/// An array of label arrays (`-100` = ignored).
pub fn label_rows(fn_name: &str, a: &Array) -> RhaiResult<Vec<Vec<i64>>> {
    a.iter()
        .enumerate()
        .map(|(i, row)| {
            let r = row.clone().into_array().map_err(|t| {
                fail(format!(
                    "{fn_name}: labels row {i} must be an array (got a {t})"
                ))
            })?;
            r.iter().map(|v| int_of(fn_name, "labels", v)).collect()
        })
        .collect()
}

/// An array of strings.
pub fn strings(fn_name: &str, what: &str, a: &Array) -> RhaiResult<Vec<String>> {
    a.iter()
        .map(|v| {
            v.clone()
                .into_string()
                .map_err(|t| fail(format!("{fn_name}: {what} must be strings (got a {t})")))
        })
        .collect()
}

/// An array of numbers (integers accepted).
pub fn floats(fn_name: &str, what: &str, a: &Array) -> RhaiResult<Vec<f64>> {
    a.iter()
        .map(|v| {
            v.as_float()
                .or_else(|_| v.as_int().map(|i| i as f64))
                .map_err(|t| fail(format!("{fn_name}: {what} must be numbers (got a {t})")))
        })
        .collect()
}

/// Ids back to a script array.
pub fn to_array(ids: &[u32]) -> Array {
    ids.iter()
        .map(|&i| Dynamic::from_int(INT::from(i)))
        .collect()
}
