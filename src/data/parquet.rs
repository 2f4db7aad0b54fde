//! Parquet files as dataset rows, through the row (record) API of the Apache `parquet` crate
//! (`SerializedFileReader` → `record::Row`/`Field`), without Arrow.
//!
//! Conversion to JSON-like values: integers and floats become numbers (non-finite floats
//! `null`), strings strings, binary columns a string when they are valid UTF-8 and otherwise an
//! array of byte values, decimals a float (`unscaled / 10^scale`), dates the number of days and
//! timestamps/times the integer count of their unit, structs maps, lists arrays and maps maps
//! (keys rendered as strings). This covers the Hugging Face schemas (`answers.text`,
//! `answers.answer_start`, nested structs).

use std::fs::File;
use std::path::Path;

use parquet::file::reader::{FileReader, SerializedFileReader};
use parquet::record::{Field, Row as PqRow};

use super::DataError;
use crate::value::{num, Row, Value};

/// Reads the rows of a parquet file (at most `limit`).
pub fn read_parquet(path: &Path, limit: Option<usize>) -> Result<Vec<Row>, DataError> {
    let file_name = path.display().to_string();
    let f = File::open(path).map_err(|e| DataError::Io {
        path: file_name.clone(),
        source: e,
    })?;
    let reader = SerializedFileReader::new(f).map_err(|e| DataError::Parse {
        file: file_name.clone(),
        line: 0,
        msg: format!("not a readable parquet file: {e}"),
    })?;
    let columns: Vec<String> = reader
        .metadata()
        .file_metadata()
        .schema_descr()
        .root_schema()
        .get_fields()
        .iter()
        .map(|f| f.name().to_string())
        .collect();
    super::unique_columns(&file_name, 0, &columns)?;
    let mut rows = Vec::new();
    for (i, r) in reader.into_iter().enumerate() {
        crate::interrupt::check()?;
        if limit.is_some_and(|l| rows.len() >= l) {
            break;
        }
        let r = r.map_err(|e| DataError::Parse {
            file: file_name.clone(),
            line: i + 1,
            msg: format!("row {}: {e}", i + 1),
        })?;
        rows.push(row_to_map(&r));
    }
    Ok(rows)
}

fn row_to_map(r: &PqRow) -> Row {
    let mut m = Row::new();
    for (name, field) in r.get_column_iter() {
        m.insert(name.clone(), field_to_value(field));
    }
    m
}

fn field_to_value(f: &Field) -> Value {
    match f {
        Field::Null => Value::Null,
        Field::Bool(b) => Value::Bool(*b),
        Field::Byte(x) => Value::from(*x),
        Field::Short(x) => Value::from(*x),
        Field::Int(x) => Value::from(*x),
        Field::Long(x) => Value::from(*x),
        Field::UByte(x) => Value::from(*x),
        Field::UShort(x) => Value::from(*x),
        Field::UInt(x) => Value::from(*x),
        Field::ULong(x) => Value::from(*x),
        Field::Float16(x) => num(f64::from(x.to_f32())),
        Field::Float(x) => num(f64::from(*x)),
        Field::Double(x) => num(*x),
        Field::Decimal(d) => num(decimal_to_f64(d.data(), d.scale())),
        Field::Str(s) => Value::String(s.clone()),
        Field::Bytes(b) => match std::str::from_utf8(b.data()) {
            Ok(s) => Value::String(s.to_string()),
            Err(_) => Value::Array(b.data().iter().map(|&x| Value::from(x)).collect()),
        },
        Field::Date(d) => Value::from(*d),
        Field::TimeMillis(t) => Value::from(*t),
        Field::TimeMicros(t) => Value::from(*t),
        Field::TimestampMillis(t) => Value::from(*t),
        Field::TimestampMicros(t) => Value::from(*t),
        Field::Group(r) => Value::Object(row_to_map(r)),
        Field::ListInternal(l) => Value::Array(l.elements().iter().map(field_to_value).collect()),
        Field::MapInternal(m) => {
            let mut out = Row::new();
            for (k, v) in m.entries() {
                let key = match field_to_value(k) {
                    Value::String(s) => s,
                    other => other.to_string(),
                };
                out.insert(key, field_to_value(v));
            }
            Value::Object(out)
        }
    }
}

/// Big-endian two's-complement unscaled value divided by `10^scale`.
fn decimal_to_f64(bytes: &[u8], scale: i32) -> f64 {
    if bytes.is_empty() || bytes.len() > 16 {
        return f64::NAN;
    }
    let negative = bytes.first().is_some_and(|b| b & 0x80 != 0);
    let mut v: i128 = if negative { -1 } else { 0 };
    for &b in bytes {
        v = (v << 8) | i128::from(b);
    }
    v as f64 / 10f64.powi(scale)
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn decimals() {
        // 0x04D2 = 1234, scale 2 -> 12.34; 0xFB2E = -1234 -> -12.34.
        assert!((decimal_to_f64(&[0x04, 0xD2], 2) - 12.34).abs() < 1e-12);
        assert!((decimal_to_f64(&[0xFB, 0x2E], 2) + 12.34).abs() < 1e-12);
    }
}
