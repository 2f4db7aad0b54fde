//! `Table`: a tidy table as rows of JSON-like maps (`crate::value::Row`), the data structure
//! that study scripts collect results in and that the statistics and plots read.
//!
//! Columns are kept in order of first appearance; a row that lacks a column reads as null.
//! Grouping follows first appearance too (like `pandas.groupby(sort=False)`), so outputs are
//! in the order the data were produced. I/O (CSV, JSON records) is in [`io`], text rendering
//! in [`display`].

pub mod display;
pub mod io;

use crate::num::{mean, sd};
use crate::value::{as_f64, as_key, num, Row, Value};
use std::cmp::Ordering;
use std::path::PathBuf;

/// Errors of table operations.
#[derive(Debug, thiserror::Error)]
pub enum TableError {
    /// `table(...)` got an element that is not a map.
    #[error("table: element {index} is {found}, expected a map (object)")]
    NotAMap {
        /// Position in the input, from 0.
        index: usize,
        /// JSON type of the element.
        found: &'static str,
    },
    /// A column name that no row has.
    #[error("{func}: unknown column '{column}' ({available})")]
    UnknownColumn {
        /// Function name.
        func: &'static str,
        /// The requested column.
        column: String,
        /// `columns: a, b, …`, or that the table is empty (no rows).
        available: String,
    },
    /// A value that should be a number is not.
    #[error("{func}: column '{column}' is not numeric: row {row} has {value}")]
    NonNumeric {
        /// Function name.
        func: &'static str,
        /// Column name.
        column: String,
        /// Row index, from 0.
        row: usize,
        /// The offending value as JSON, or `a missing value (null)` (a NaN put into a table is
        /// stored as null too).
        value: String,
    },
    /// A factor (grouping) column holds null.
    #[error("{func}: column '{column}' is null in row {row}; group labels must be present")]
    NullKey {
        /// Function name.
        func: &'static str,
        /// Column name.
        column: String,
        /// Row index, from 0.
        row: usize,
    },
    /// Reading or writing a file failed.
    #[error("{func}: {path}: {source}")]
    Io {
        /// Function name.
        func: &'static str,
        /// The file.
        path: PathBuf,
        /// The I/O error.
        source: std::io::Error,
    },
    /// A file could not be parsed or written in its format.
    #[error("{func}: {path}: {message}")]
    Format {
        /// Function name.
        func: &'static str,
        /// The file.
        path: PathBuf,
        /// What went wrong (with line/record where known).
        message: String,
    },
}

/// Shorthand for results of this module.
pub type Result<T> = std::result::Result<T, TableError>;

/// A table: rows of maps with columns in order of first appearance.
#[derive(Debug, Clone, Default, PartialEq)]
pub struct Table {
    columns: Vec<String>,
    rows: Vec<Row>,
}

fn type_name(v: &Value) -> &'static str {
    match v {
        Value::Null => "null",
        Value::Bool(_) => "a bool",
        Value::Number(_) => "a number",
        Value::String(_) => "a string",
        Value::Array(_) => "an array",
        Value::Object(_) => "a map",
    }
}

impl Table {
    /// An empty table.
    pub fn new() -> Self {
        Self::default()
    }

    /// A table of these rows.
    pub fn from_rows(rows: Vec<Row>) -> Self {
        let mut t = Table::new();
        for r in rows {
            t.push(r);
        }
        t
    }

    /// A table from values that must all be maps (the Rhai `table(array_of_maps)`).
    pub fn from_values(values: Vec<Value>) -> Result<Self> {
        let mut t = Table::new();
        for (index, v) in values.into_iter().enumerate() {
            match v {
                Value::Object(r) => t.push(r),
                other => {
                    return Err(TableError::NotAMap {
                        index,
                        found: type_name(&other),
                    })
                }
            }
        }
        Ok(t)
    }

    /// Appends a row (new keys become new columns).
    pub fn push(&mut self, row: Row) {
        for k in row.keys() {
            if !self.columns.iter().any(|c| c == k) {
                self.columns.push(k.clone());
            }
        }
        self.rows.push(row);
    }

    /// Number of rows.
    pub fn len(&self) -> usize {
        self.rows.len()
    }

    /// Whether the table has no rows.
    pub fn is_empty(&self) -> bool {
        self.rows.is_empty()
    }

    /// The rows.
    pub fn rows(&self) -> &[Row] {
        &self.rows
    }

    /// The rows, by value.
    pub fn into_rows(self) -> Vec<Row> {
        self.rows
    }

    /// Column names in order of first appearance.
    pub fn columns(&self) -> &[String] {
        &self.columns
    }

    /// Whether a column exists.
    pub fn has_column(&self, name: &str) -> bool {
        self.columns.iter().any(|c| c == name)
    }

    fn require(&self, func: &'static str, name: &str) -> Result<()> {
        if self.has_column(name) {
            Ok(())
        } else {
            Err(TableError::UnknownColumn {
                func,
                column: name.to_string(),
                available: if self.rows.is_empty() {
                    "the table is empty: it has no rows".to_string()
                } else {
                    format!("columns: {}", self.columns.join(", "))
                },
            })
        }
    }

    /// The values of a column (null where a row lacks it).
    pub fn column(&self, name: &str) -> Result<Vec<Value>> {
        self.require("column", name)?;
        Ok(self
            .rows
            .iter()
            .map(|r| r.get(name).cloned().unwrap_or(Value::Null))
            .collect())
    }

    /// The values of a numeric column as `f64`; errors name the first row whose value is not
    /// a number (null included).
    pub fn numeric_column(&self, name: &str) -> Result<Vec<f64>> {
        self.numeric_column_for("numeric_column", name)
    }

    pub(crate) fn numeric_column_for(&self, func: &'static str, name: &str) -> Result<Vec<f64>> {
        self.require(func, name)?;
        self.rows
            .iter()
            .enumerate()
            .map(|(row, r)| {
                let v = r.get(name).unwrap_or(&Value::Null);
                match v {
                    Value::Number(_) => as_f64(v),
                    _ => None,
                }
                .ok_or_else(|| TableError::NonNumeric {
                    func,
                    column: name.to_string(),
                    row,
                    value: if v.is_null() {
                        "a missing value (null)".to_string()
                    } else {
                        v.to_string()
                    },
                })
            })
            .collect()
    }

    /// Labels of a grouping column as strings (`crate::value::as_key`); null is an error.
    pub(crate) fn key_column(&self, func: &'static str, name: &str) -> Result<Vec<String>> {
        self.require(func, name)?;
        self.rows
            .iter()
            .enumerate()
            .map(|(row, r)| match r.get(name) {
                None | Some(Value::Null) => Err(TableError::NullKey {
                    func,
                    column: name.to_string(),
                    row,
                }),
                Some(v) => Ok(as_key(v)),
            })
            .collect()
    }

    /// The rows for which `pred` holds.
    pub fn filter(&self, mut pred: impl FnMut(&Row) -> bool) -> Table {
        Table::from_rows(self.rows.iter().filter(|r| pred(r)).cloned().collect())
    }

    /// Only the named columns, in the given order.
    pub fn select(&self, names: &[&str]) -> Result<Table> {
        for n in names {
            self.require("select", n)?;
        }
        let mut t = Table::new();
        t.columns = names.iter().map(|s| s.to_string()).collect();
        t.rows = self
            .rows
            .iter()
            .map(|r| {
                names
                    .iter()
                    .filter_map(|n| r.get(*n).map(|v| (n.to_string(), v.clone())))
                    .collect()
            })
            .collect();
        Ok(t)
    }

    /// Rows sorted by a column (stable): numbers numerically, then strings, then bools, with
    /// nulls last in both directions.
    pub fn sort_by(&self, name: &str, descending: bool) -> Result<Table> {
        self.require("sort_by", name)?;
        let mut rows = self.rows.clone();
        let null = Value::Null;
        rows.sort_by(|a, b| {
            let (x, y) = (a.get(name).unwrap_or(&null), b.get(name).unwrap_or(&null));
            match (x.is_null(), y.is_null()) {
                (true, true) => Ordering::Equal,
                (true, false) => Ordering::Greater,
                (false, true) => Ordering::Less,
                _ if descending => compare_values(y, x),
                _ => compare_values(x, y),
            }
        });
        Ok(Table {
            columns: self.columns.clone(),
            rows,
        })
    }

    /// This table's rows followed by `other`'s.
    pub fn concat(&self, other: &Table) -> Table {
        let mut t = self.clone();
        for r in &other.rows {
            t.push(r.clone());
        }
        t
    }

    /// Values of the numeric column `value` grouped by the labels of `factor`, groups in
    /// order of first appearance.
    pub fn groups(&self, value: &str, factor: &str) -> Result<Vec<(String, Vec<f64>)>> {
        self.groups_for("groups", value, factor)
    }

    /// [`Table::groups`] with errors naming `func`.
    pub(crate) fn groups_for(
        &self,
        func: &'static str,
        value: &str,
        factor: &str,
    ) -> Result<Vec<(String, Vec<f64>)>> {
        let y = self.numeric_column_for(func, value)?;
        let keys = self.key_column(func, factor)?;
        let mut out: Vec<(String, Vec<f64>)> = Vec::new();
        for (k, v) in keys.into_iter().zip(y) {
            match out.iter_mut().find(|g| g.0 == k) {
                Some(g) => g.1.push(v),
                None => out.push((k, vec![v])),
            }
        }
        Ok(out)
    }

    /// Mean of `value` per combination of the `by` columns (first-appearance order). Output
    /// rows: the `by` columns (their original values), `value` (the mean), `n` and `sd`
    /// (sample sd, ddof = 1; null when n = 1).
    pub fn group_mean(&self, by: &[&str], value: &str) -> Result<Table> {
        for b in by {
            self.require("group_mean", b)?;
        }
        let y = self.numeric_column_for("group_mean", value)?;
        let mut groups: Vec<(String, Vec<Value>, Vec<f64>)> = Vec::new();
        for (r, v) in self.rows.iter().zip(y) {
            let vals: Vec<Value> = by
                .iter()
                .map(|b| r.get(*b).cloned().unwrap_or(Value::Null))
                .collect();
            let key = Value::Array(vals.clone()).to_string();
            match groups.iter_mut().find(|g| g.0 == key) {
                Some(g) => g.2.push(v),
                None => groups.push((key, vals, vec![v])),
            }
        }
        let rows = groups
            .into_iter()
            .map(|(_, vals, ys)| {
                let mut row: Row = by.iter().map(|b| b.to_string()).zip(vals).collect();
                row.insert(value.to_string(), num(mean(&ys)));
                row.insert("n".into(), Value::from(ys.len() as u64));
                row.insert("sd".into(), num(sd(&ys)));
                row
            })
            .collect();
        Ok(Table::from_rows(rows))
    }

    /// A wide table: one row per distinct `row_key` value, one column per distinct `col_key`
    /// value (both in order of first appearance, column names as plain strings), holding the
    /// mean of `value` over the rows with that pair (the mean also when there is a single
    /// row; null when there is none). The first column is `row_key`.
    pub fn pivot(&self, row_key: &str, col_key: &str, value: &str) -> Result<Table> {
        self.require("pivot", row_key)?;
        let cols = self.key_column("pivot", col_key)?;
        let y = self.numeric_column_for("pivot", value)?;
        let mut col_names: Vec<String> = Vec::new();
        for c in &cols {
            if !col_names.contains(c) {
                col_names.push(c.clone());
            }
        }
        // (row key JSON, original value, per-column values)
        let mut rows: Vec<(String, Value, Vec<Vec<f64>>)> = Vec::new();
        for ((r, c), v) in self.rows.iter().zip(&cols).zip(y) {
            let rv = r.get(row_key).cloned().unwrap_or(Value::Null);
            let key = rv.to_string();
            let ci = col_names.iter().position(|n| n == c).unwrap_or(0);
            let idx = match rows.iter().position(|x| x.0 == key) {
                Some(i) => i,
                None => {
                    rows.push((key, rv, vec![Vec::new(); col_names.len()]));
                    rows.len() - 1
                }
            };
            if let Some(cell) = rows[idx].2.get_mut(ci) {
                cell.push(v);
            }
        }
        // A column value equal to the row key's name is renamed `col_key=value`.
        let out_names: Vec<String> = col_names
            .iter()
            .map(|c| {
                if c == row_key {
                    format!("{col_key}={c}")
                } else {
                    c.clone()
                }
            })
            .collect();
        let mut t = Table::new();
        t.columns.push(row_key.to_string());
        t.columns.extend(out_names.iter().cloned());
        for (_, rv, cells) in rows {
            let mut row = Row::new();
            row.insert(row_key.to_string(), rv);
            for (name, ys) in out_names.iter().zip(cells) {
                let v = if ys.is_empty() {
                    Value::Null
                } else {
                    num(mean(&ys))
                };
                row.insert(name.clone(), v);
            }
            t.rows.push(row);
        }
        Ok(t)
    }
}

/// Orders non-null values: numbers (numerically) < strings < bools < arrays/maps (as JSON).
fn compare_values(a: &Value, b: &Value) -> Ordering {
    fn class(v: &Value) -> u8 {
        match v {
            Value::Number(_) => 0,
            Value::String(_) => 1,
            Value::Bool(_) => 2,
            _ => 3,
        }
    }
    match (a, b) {
        (Value::Number(_), Value::Number(_)) => {
            let (x, y) = (as_f64(a).unwrap_or(0.0), as_f64(b).unwrap_or(0.0));
            x.total_cmp(&y)
        }
        (Value::String(x), Value::String(y)) => x.cmp(y),
        (Value::Bool(x), Value::Bool(y)) => x.cmp(y),
        _ => class(a)
            .cmp(&class(b))
            .then_with(|| a.to_string().cmp(&b.to_string())),
    }
}

#[cfg(test)]
mod tests;
