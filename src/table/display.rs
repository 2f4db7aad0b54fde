//! Text rendering of tables: a one-line summary (`Table(12 rows × 5 cols: method, r, …)`) and
//! an aligned grid (`Display`), numbers right-aligned, floats with 4 significant digits (as
//! C's/Python's `%.4g`), at most [`MAX_ROWS`] rows shown.

use super::Table;
use crate::value::Value;
use std::fmt;

/// Rows shown by `Display` before the rest is elided (head and tail are shown).
pub const MAX_ROWS: usize = 40;

/// Formats a float like `%.4g`: 4 significant digits, trailing zeros trimmed, scientific
/// notation below 1e-4 and from 1e4 on (e.g. `0.5953`, `59.28`, `6.29e-07`, `1.235e+04`).
pub fn fmt_g4(x: f64) -> String {
    if !x.is_finite() {
        return x.to_string();
    }
    if x == 0.0 {
        return "0".into();
    }
    // Decide the exponent after rounding to 4 significant digits.
    let sci = format!("{x:.3e}");
    let (mant, exp) = sci.split_once('e').unwrap_or((sci.as_str(), "0"));
    let exp: i32 = exp.parse().unwrap_or(0);
    if !(-4..4).contains(&exp) {
        let mant = trim_zeros(mant);
        let sign = if exp < 0 { '-' } else { '+' };
        format!("{mant}e{sign}{:02}", exp.abs())
    } else {
        let decimals = (3 - exp).max(0) as usize;
        trim_zeros(&format!("{x:.decimals$}")).to_string()
    }
}

fn trim_zeros(s: &str) -> &str {
    if s.contains('.') {
        s.trim_end_matches('0').trim_end_matches('.')
    } else {
        s
    }
}

/// A cell as text: strings raw, integers as is, floats by [`fmt_g4`], null empty.
pub fn cell_text(v: &Value) -> String {
    match v {
        Value::Null => String::new(),
        Value::String(s) => s.clone(),
        Value::Bool(b) => b.to_string(),
        Value::Number(n) => {
            if n.is_i64() || n.is_u64() {
                n.to_string()
            } else {
                fmt_g4(n.as_f64().unwrap_or(f64::NAN))
            }
        }
        other => other.to_string(),
    }
}

impl Table {
    /// One-line summary: `Table(12 rows × 5 cols: method, r, seed, f1, loss)`.
    pub fn summary(&self) -> String {
        const SHOWN: usize = 12;
        let mut names = self
            .columns()
            .iter()
            .take(SHOWN)
            .cloned()
            .collect::<Vec<_>>()
            .join(", ");
        if self.columns().len() > SHOWN {
            names.push_str(", …");
        }
        let rows = if self.len() == 1 { "row" } else { "rows" };
        let cols = if self.columns().len() == 1 {
            "col"
        } else {
            "cols"
        };
        if self.columns().is_empty() {
            format!("Table({} {rows} × 0 cols)", self.len())
        } else {
            format!(
                "Table({} {rows} × {} {cols}: {names})",
                self.len(),
                self.columns().len()
            )
        }
    }
}

/// The aligned text form of a table (see [`Table::to_text`]).
struct Pretty<'a>(&'a Table);

impl Table {
    /// The table as aligned text: a header, a rule and one line per row (floats with 4
    /// significant decimals; long tables show their first and last rows).
    pub fn to_text(&self) -> String {
        Pretty(self).to_string()
    }
}

/// A table displays as its one-line summary (`Table(12 rows × 5 cols: ...)`); use
/// [`Table::to_text`] for the aligned rows.
impl fmt::Display for Table {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.write_str(&self.summary())
    }
}

impl fmt::Display for Pretty<'_> {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        let cols = self.0.columns();
        let n = self.0.len();
        let shown: Vec<usize> = if n <= MAX_ROWS {
            (0..n).collect()
        } else {
            (0..MAX_ROWS - 5).chain(n - 5..n).collect()
        };
        let null = Value::Null;
        let cells: Vec<Vec<(String, bool)>> = shown
            .iter()
            .map(|&i| {
                cols.iter()
                    .map(|c| {
                        let v = self.0.rows()[i].get(c).unwrap_or(&null);
                        (cell_text(v), v.is_number())
                    })
                    .collect()
            })
            .collect();
        let widths: Vec<usize> = cols
            .iter()
            .enumerate()
            .map(|(j, c)| {
                cells
                    .iter()
                    .map(|r| r[j].0.chars().count())
                    .chain([c.chars().count()])
                    .max()
                    .unwrap_or(0)
            })
            .collect();
        let line = |f: &mut fmt::Formatter<'_>, texts: Vec<(String, bool)>| -> fmt::Result {
            let parts: Vec<String> = texts
                .iter()
                .zip(&widths)
                .map(|((t, right), w)| {
                    if *right {
                        format!("{t:>w$}")
                    } else {
                        format!("{t:<w$}")
                    }
                })
                .collect();
            writeln!(f, "{}", parts.join("  ").trim_end())
        };
        writeln!(f, "{}", self.0.summary())?;
        if cols.is_empty() {
            return Ok(());
        }
        // Headers of columns whose shown values are all numbers (or null) align right.
        let numeric: Vec<bool> = (0..cols.len())
            .map(|j| {
                cells.iter().any(|r| r[j].1) && cells.iter().all(|r| r[j].1 || r[j].0.is_empty())
            })
            .collect();
        line(
            f,
            cols.iter()
                .zip(&numeric)
                .map(|(c, &r)| (c.clone(), r))
                .collect(),
        )?;
        line(f, widths.iter().map(|w| ("-".repeat(*w), false)).collect())?;
        for (pos, row) in cells.into_iter().enumerate() {
            if n > MAX_ROWS && pos == MAX_ROWS - 5 {
                writeln!(f, "… ({} more rows)", n - MAX_ROWS)?;
            }
            line(f, row)?;
        }
        Ok(())
    }
}
