//! The entity table as rules see it: Arrow columns read from DuckDB, turned into rhai values
//! one cell at a time, only for the columns a rule set reads.

pub mod keys;

use std::collections::HashMap;
use std::sync::Arc;

use chrono::NaiveDate;
use duckdb::arrow::array::{
    Array, ArrayRef, AsArray, BooleanArray, Date32Array, Float32Array, Float64Array, Int8Array, Int16Array, Int32Array,
    Int64Array, LargeStringArray, StringArray, StringViewArray, UInt8Array, UInt16Array, UInt32Array, UInt64Array,
};
use duckdb::arrow::datatypes::{DataType, TimeUnit};
use duckdb::arrow::record_batch::RecordBatch;
use rhai::Dynamic;

/// What a column holds, as far as rule checks care.
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum ColumnType {
    Integer,
    Float,
    Text,
    Bool,
    Date,
    /// TIMESTAMP and TIMESTAMPTZ (read in UTC): a moment, its time of day kept.
    Timestamp,
    List,
    Other(String),
}

impl ColumnType {
    /// From a DuckDB type name as `DESCRIBE` prints it.
    pub fn from_duckdb(t: &str) -> Self {
        let t = t.to_ascii_uppercase();
        if t.ends_with("[]") {
            return ColumnType::List;
        }
        match t.split('(').next().unwrap_or("") {
            "TINYINT" | "SMALLINT" | "INTEGER" | "BIGINT" | "HUGEINT" | "UTINYINT" | "USMALLINT" | "UINTEGER"
            | "UBIGINT" => ColumnType::Integer,
            "FLOAT" | "DOUBLE" | "DECIMAL" => ColumnType::Float,
            "VARCHAR" => ColumnType::Text,
            "BOOLEAN" => ColumnType::Bool,
            "DATE" => ColumnType::Date,
            "TIMESTAMP"
            | "TIMESTAMP WITH TIME ZONE"
            | "TIMESTAMPTZ"
            | "TIMESTAMP_S"
            | "TIMESTAMP_MS"
            | "TIMESTAMP_NS" => ColumnType::Timestamp,
            _ => ColumnType::Other(t),
        }
    }

    pub fn is_number(&self) -> bool {
        matches!(self, ColumnType::Integer | ColumnType::Float)
    }
}

/// The columns of the entity view, by name.
#[derive(Debug, Clone, Default)]
pub struct Schema {
    pub columns: Vec<(String, ColumnType)>,
}

impl Schema {
    pub fn get(&self, name: &str) -> Option<&ColumnType> {
        self.columns.iter().find(|(n, _)| n == name).map(|(_, t)| t)
    }

    pub fn names(&self) -> impl Iterator<Item = &str> {
        self.columns.iter().map(|(n, _)| n.as_str())
    }
}

/// One row per account, as read from the entity view.
#[derive(Debug, Clone)]
pub struct Entity {
    pub key_column: String,
    pub schema: Schema,
    pub batch: RecordBatch,
    pub keys: Vec<Arc<str>>,
    index: HashMap<String, usize>,
}

/// The entity's rows lack the key column the job names.
#[derive(Debug, thiserror::Error)]
#[error("the entity has no column `{0}`")]
pub struct NoKeyColumn(pub String);

impl Entity {
    pub fn new(key_column: &str, schema: Schema, batch: RecordBatch) -> Result<Self, NoKeyColumn> {
        let index: HashMap<String, usize> =
            batch.schema().fields().iter().enumerate().map(|(i, f)| (f.name().clone(), i)).collect();
        let key_idx = *index.get(key_column).ok_or_else(|| NoKeyColumn(key_column.to_string()))?;
        let key_array = batch.column(key_idx);
        let keys =
            (0..batch.num_rows()).map(|r| Arc::<str>::from(display_value(&cell(key_array, r)).as_str())).collect();
        Ok(Entity { key_column: key_column.to_string(), schema, batch, keys, index })
    }

    pub fn len(&self) -> usize {
        self.batch.num_rows()
    }

    pub fn is_empty(&self) -> bool {
        self.len() == 0
    }

    pub fn column(&self, name: &str) -> Option<&ArrayRef> {
        self.index.get(name).map(|&i| self.batch.column(i))
    }

    /// The value of `column` for the account at `row`, or `()` when missing.
    pub fn value(&self, column: &str, row: usize) -> Dynamic {
        self.column(column).map_or(Dynamic::UNIT, |a| cell(a, row))
    }

    pub fn row_of(&self, key: &str) -> Option<usize> {
        self.keys.iter().position(|k| &**k == key)
    }
}

/// One Arrow cell as a rhai value; SQL NULL becomes `()`.
pub fn cell(array: &ArrayRef, row: usize) -> Dynamic {
    if array.is_null(row) {
        return Dynamic::UNIT;
    }
    macro_rules! int {
        ($t:ty) => {
            Dynamic::from_int(array.as_any().downcast_ref::<$t>().map_or(0, |a| a.value(row) as i64))
        };
    }
    match array.data_type() {
        DataType::Int8 => int!(Int8Array),
        DataType::Int16 => int!(Int16Array),
        DataType::Int32 => int!(Int32Array),
        DataType::Int64 => int!(Int64Array),
        DataType::UInt8 => int!(UInt8Array),
        DataType::UInt16 => int!(UInt16Array),
        DataType::UInt32 => int!(UInt32Array),
        DataType::UInt64 => int!(UInt64Array),
        DataType::Float32 => {
            Dynamic::from_float(array.as_any().downcast_ref::<Float32Array>().map_or(0.0, |a| a.value(row) as f64))
        }
        DataType::Float64 => {
            Dynamic::from_float(array.as_any().downcast_ref::<Float64Array>().map_or(0.0, |a| a.value(row)))
        }
        DataType::Decimal128(_, scale) => {
            let v = array.as_primitive::<duckdb::arrow::datatypes::Decimal128Type>().value(row);
            Dynamic::from_float(v as f64 / 10f64.powi(*scale as i32))
        }
        DataType::Utf8 => text(array.as_any().downcast_ref::<StringArray>().map(|a| a.value(row))),
        DataType::LargeUtf8 => text(array.as_any().downcast_ref::<LargeStringArray>().map(|a| a.value(row))),
        DataType::Utf8View => text(array.as_any().downcast_ref::<StringViewArray>().map(|a| a.value(row))),
        DataType::Boolean => {
            Dynamic::from_bool(array.as_any().downcast_ref::<BooleanArray>().is_some_and(|a| a.value(row)))
        }
        DataType::Date32 => {
            let days = array.as_any().downcast_ref::<Date32Array>().map_or(0, |a| a.value(row));
            date_from_days(days as i64)
        }
        DataType::Timestamp(unit, _) => {
            use duckdb::arrow::datatypes as t;
            // Arrow holds the moment since the epoch in UTC, for TIMESTAMPTZ too.
            let moment = match unit {
                TimeUnit::Second => {
                    chrono::DateTime::from_timestamp(array.as_primitive::<t::TimestampSecondType>().value(row), 0)
                }
                TimeUnit::Millisecond => chrono::DateTime::from_timestamp_millis(
                    array.as_primitive::<t::TimestampMillisecondType>().value(row),
                ),
                TimeUnit::Microsecond => chrono::DateTime::from_timestamp_micros(
                    array.as_primitive::<t::TimestampMicrosecondType>().value(row),
                ),
                TimeUnit::Nanosecond => Some(chrono::DateTime::from_timestamp_nanos(
                    array.as_primitive::<t::TimestampNanosecondType>().value(row),
                )),
            };
            moment.map_or(Dynamic::UNIT, |m| Dynamic::from(m.naive_utc()))
        }
        DataType::List(_) => {
            let list = array.as_list::<i32>();
            let values = list.value(row);
            let items: rhai::Array = (0..values.len()).map(|i| cell(&values, i)).collect();
            Dynamic::from_array(items)
        }
        _ => fallback(array, row),
    }
}

fn fallback(array: &ArrayRef, row: usize) -> Dynamic {
    duckdb::arrow::util::display::array_value_to_string(array, row).map_or(Dynamic::UNIT, Dynamic::from)
}

fn text(s: Option<&str>) -> Dynamic {
    s.map_or(Dynamic::UNIT, |s| Dynamic::from(rhai::ImmutableString::from(s)))
}

fn date_from_days(days: i64) -> Dynamic {
    NaiveDate::from_ymd_opt(1970, 1, 1)
        .and_then(|epoch| epoch.checked_add_signed(chrono::Duration::days(days)))
        .map_or(Dynamic::UNIT, Dynamic::from)
}

/// A timestamp as DuckDB writes it: `2026-11-23 14:05:00`, a fraction of a second only when
/// there is one.
pub fn format_timestamp(t: &chrono::NaiveDateTime) -> String {
    use chrono::Timelike;
    let mut out = t.format("%Y-%m-%d %H:%M:%S").to_string();
    let micros = t.nanosecond() / 1000;
    if micros != 0 {
        out.push('.');
        out.push_str(format!("{micros:06}").trim_end_matches('0'));
    }
    out
}

/// A value as a person reads it: dates as `YYYY-MM-DD`, timestamps as
/// `YYYY-MM-DD HH:MM:SS`, missing as an empty string,
/// floats without a trailing `.0` when whole.
pub fn display_value(v: &Dynamic) -> String {
    if v.is_unit() {
        String::new()
    } else if let Some(d) = v.read_lock::<NaiveDate>() {
        d.format("%Y-%m-%d").to_string()
    } else if let Some(t) = v.read_lock::<chrono::NaiveDateTime>() {
        format_timestamp(&t)
    } else if let Ok(f) = v.as_float() {
        format_float(f)
    } else if v.is_array() {
        let items: Vec<String> = v.clone().into_array().unwrap_or_default().iter().map(display_value).collect();
        items.join("; ")
    } else {
        v.to_string()
    }
}

/// A value as an escalation list keeps it: as [`display_value`], but decimals with every
/// digit they have (`0.3333333333333333`), so a list loses nothing unless its column asks
/// for a format (`round(x, 1)`, `money(x)`).
pub fn exact_value(v: &Dynamic) -> String {
    if let Ok(f) = v.as_float() {
        exact_float(f)
    } else if v.is_array() {
        let items: Vec<String> = v.clone().into_array().unwrap_or_default().iter().map(exact_value).collect();
        items.join("; ")
    } else {
        display_value(v)
    }
}

/// A decimal with the fewest digits that read back as the same number; whole numbers
/// without a decimal point.
pub fn exact_float(f: f64) -> String {
    if f.fract() == 0.0 && f.abs() < 1e15 { format!("{}", f as i64) } else { format!("{f}") }
}

pub fn format_float(f: f64) -> String {
    let mut out = String::new();
    write_float(&mut out, f);
    out
}

/// [`format_float`] appended to `out`, for writing many without a `String` each.
pub fn write_float(out: &mut String, f: f64) {
    use std::fmt::Write;
    if f.fract() == 0.0 && f.abs() < 1e15 {
        let _ = write!(out, "{}", f as i64);
    } else {
        let start = out.len();
        let _ = write!(out, "{f:.4}");
        let kept = out[start..].trim_end_matches('0').trim_end_matches('.').len();
        out.truncate(start + kept);
    }
}

/// A rhai value as a template value.
pub fn to_template_value(v: &Dynamic) -> minijinja::Value {
    if v.is_unit() {
        minijinja::Value::from(())
    } else if let Ok(i) = v.as_int() {
        minijinja::Value::from(i)
    } else if let Ok(f) = v.as_float() {
        // Whole numbers read as such in reasons and mail: 120000, not 120000.0.
        if f.fract() == 0.0 && f.abs() < 1e15 { minijinja::Value::from(f as i64) } else { minijinja::Value::from(f) }
    } else if let Ok(b) = v.as_bool() {
        minijinja::Value::from(b)
    } else if v.is_array() {
        let items: Vec<minijinja::Value> =
            v.clone().into_array().unwrap_or_default().iter().map(to_template_value).collect();
        minijinja::Value::from(items)
    } else if v.is_map() {
        let map = v.clone().cast::<rhai::Map>();
        let map: std::collections::BTreeMap<String, minijinja::Value> =
            map.iter().map(|(k, v)| (k.to_string(), to_template_value(v))).collect();
        minijinja::Value::from(map)
    } else {
        minijinja::Value::from(display_value(v))
    }
}

/// A rhai value as JSON, for the store and `--json` output.
pub fn to_json(v: &Dynamic) -> serde_json::Value {
    if v.is_unit() {
        serde_json::Value::Null
    } else if let Ok(i) = v.as_int() {
        serde_json::Value::from(i)
    } else if let Ok(f) = v.as_float() {
        serde_json::Number::from_f64(f).map_or(serde_json::Value::Null, serde_json::Value::Number)
    } else if let Ok(b) = v.as_bool() {
        serde_json::Value::from(b)
    } else if v.is_array() {
        serde_json::Value::Array(v.clone().into_array().unwrap_or_default().iter().map(to_json).collect())
    } else if v.is_map() {
        let map = v.clone().cast::<rhai::Map>();
        serde_json::Value::Object(map.iter().map(|(k, v)| (k.to_string(), to_json(v))).collect())
    } else {
        serde_json::Value::from(display_value(v))
    }
}

#[cfg(test)]
mod tests {
    use super::{format_float, write_float};

    #[test]
    fn floats_are_written_without_trailing_zeros() {
        let cases = [
            (0.0, "0"),
            (76.93, "76.93"),
            (-2.5, "-2.5"),
            (1e15, "1000000000000000"),
            (1.0 / 3.0, "0.3333"),
            (0.00001, "0"),
        ];
        for (f, text) in cases {
            assert_eq!(format_float(f), text);
        }
        // Appended to what is there.
        let mut out = "x,".to_string();
        write_float(&mut out, 12.50);
        write_float(&mut out, 3.0);
        assert_eq!(out, "x,12.53");
    }
}
