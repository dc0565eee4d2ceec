//! The report's full list: every account with its name, owner, ARR and each rule set's
//! grade and score, largest ARR first, written to the run folder; the mail attaches the
//! largest accounts.

use std::fmt::Write as _;
use std::io::Write;
use std::path::{Path, PathBuf};

use duckdb::arrow::array::{Array, ArrayRef, StringArray};
use rayon::prelude::*;

use super::Ctx;
use crate::entity::{cell, display_value, write_float};
use crate::outputs::{Attachment, OutputError, file_name, to_csv};

/// The written list and what the mail attaches of it.
pub(super) struct FullList {
    pub attachment: Option<Attachment>,
    pub file_name: String,
    pub attached: usize,
    pub path: PathBuf,
}

/// Writes the full list to `out_dir`, streamed a block at a time.
pub(super) fn write(c: Ctx, out_dir: &Path) -> Result<FullList, OutputError> {
    let Ctx { view, report, n, output, .. } = c;
    let started = std::time::Instant::now();
    let ordered = by_arr(c);
    // The amount's column is named as the report calls it (`arr` unless `amount:` is set).
    let amount = report.wording.amount.to_lowercase();
    let mut labels = vec!["account".to_string(), "name".to_string(), "owner".to_string(), amount];
    for set in view.rule_sets {
        labels.push(set.name.clone());
        labels.push(format!("{} score", set.name));
    }
    let dir = out_dir.join(output);
    std::fs::create_dir_all(&dir).map_err(OutputError::create_dir(&dir))?;
    let path = dir.join("accounts.csv");
    // Streamed block by block: a million accounts would otherwise be a gigabyte of cells.
    // Chunks of rows are formatted on every core, then written in order.
    let header = to_csv::<&str>(&labels, &[])?;
    let mut file = std::io::BufWriter::new(std::fs::File::create(&path).map_err(OutputError::write(&path))?);
    file.write_all(header.as_bytes()).map_err(OutputError::write(&path))?;
    const BLOCK: usize = 64 * 1024;
    const CHUNK: usize = 4096;
    for start in (0..n).step_by(BLOCK) {
        let end = (start + BLOCK).min(n);
        let by_set = gather(c, &ordered[start..end]);
        let parts: Vec<Result<Vec<u8>, OutputError>> = (start..end)
            .step_by(CHUNK)
            .collect::<Vec<_>>()
            .into_par_iter()
            .map(|from| rows_csv(c, &ordered, &by_set, start, from..(from + CHUNK).min(end)))
            .collect();
        for part in parts {
            file.write_all(&part?).map_err(OutputError::write(&path))?;
        }
    }
    file.flush().map_err(OutputError::write(&path))?;
    drop(file);
    tracing::debug!(rows = n, seconds = started.elapsed().as_secs_f64(), "Full list written.");
    let attached = n.min(report.attach_limit);
    let file_name = format!("{}-{}.csv", file_name(&view.job.name), view.as_of);
    let attachment = if attached > 0 {
        let rows = rows_csv(c, &ordered, &gather(c, &ordered[..attached]), 0, 0..attached)?;
        let rows = String::from_utf8(rows)?;
        Some(Attachment {
            file_name: file_name.clone(),
            content_type: "text/csv".into(),
            body: format!("{header}{rows}"),
        })
    } else {
        None
    };
    Ok(FullList { attachment, file_name, attached, path })
}

/// The rows, largest ARR first, then by key. Sorted as (ARR's order as an integer, row)
/// pairs: a comparison reading ARR by row missed the cache on most reads (0.4 s at 1M
/// accounts). The keys are unique, so the order is total and an unstable sort gives it.
fn by_arr(c: Ctx) -> Vec<usize> {
    let keys = &c.view.entity.keys;
    let mut pairs: Vec<(u64, u32)> = c
        .arr
        .par_iter()
        .enumerate()
        .map(|(r, &a)| (!total_order(a), u32::try_from(r).expect("fewer than 4G accounts")))
        .collect();
    pairs.par_sort_unstable_by(|a, b| {
        a.0.cmp(&b.0).then_with(|| crate::entity::keys::key_order(&keys[a.1 as usize], &keys[b.1 as usize]))
    });
    pairs.into_iter().map(|(_, r)| r as usize).collect()
}

/// Each set's grade and score for `rows`, in their order, column by column. The list is in
/// ARR order, and reading the outcomes row by row in that order missed the cache on nearly
/// every read (most of the time the list took at 1M accounts). A gather loop has its misses
/// in flight together; formatting then reads the columns in sequence. (Gathered for the
/// whole list at once they took 0.18 GB, hence a block at a time.)
fn gather<'a>(c: Ctx<'a>, rows: &[usize]) -> Vec<SetColumns<'a>> {
    c.view
        .outcomes
        .par_iter()
        .map(|outcomes| {
            let mut names: Vec<&str> = Vec::new();
            let grades = rows
                .iter()
                .map(|&r| match outcomes.get(r).grade() {
                    None => 0,
                    Some(g) => match names.iter().position(|n| *n == g) {
                        Some(i) => i as u32 + 1,
                        None => {
                            names.push(g);
                            names.len() as u32
                        }
                    },
                })
                .collect();
            SetColumns { names, grades, scores: rows.iter().map(|&r| outcomes.get(r).score()).collect() }
        })
        .collect()
}

/// Rows `range` of the list (`ordered`) as CSV, written field by field (a million accounts
/// are 22 million cells); `by_set` holds the rows from `base`.
fn rows_csv(
    c: Ctx,
    ordered: &[usize],
    by_set: &[SetColumns],
    base: usize,
    range: std::ops::Range<usize>,
) -> Result<Vec<u8>, OutputError> {
    let mut w = csv::WriterBuilder::new().has_headers(false).from_writer(Vec::new());
    let mut buf = String::new();
    let from = range.start;
    for (i, &r) in ordered[range].iter().enumerate() {
        row(c, &mut w, by_set, from + i - base, r, &mut buf)?;
    }
    w.into_inner().map_err(|e| OutputError::Csv(e.into_error().into()))
}

/// One account's row: `r` is its row in the entity, `i` its place in `by_set`.
fn row(
    c: Ctx,
    w: &mut csv::Writer<Vec<u8>>,
    by_set: &[SetColumns],
    i: usize,
    r: usize,
    buf: &mut String,
) -> csv::Result<()> {
    let key = &*c.view.entity.keys[r];
    w.write_field(key)?;
    w.write_field(c.name_col.map_or(key, |col| text_cell(col, r, buf)))?;
    w.write_field(c.owner_col.map_or("", |col| text_cell(col, r, buf)))?;
    buf.clear();
    let _ = write!(buf, "{:.2}", c.arr[r]);
    w.write_field(&*buf)?;
    for set in by_set {
        w.write_field(match set.grades[i] {
            0 => "",
            g => set.names[g as usize - 1],
        })?;
        buf.clear();
        if let Some(x) = set.scores[i] {
            write_cents(buf, x);
        }
        w.write_field(&*buf)?;
    }
    w.write_record(None::<&[u8]>)
}

/// The largest number of cents written from integers: below it, the double nearest a number
/// of cents differs from it by under 1e-5, far from any rounding boundary of 4 decimals.
const EXACT_CENTS: f64 = 1e13;

/// Writes `x` rounded to cents as [`write_float`] writes `(x * 100).round() / 100`, from the
/// cents as integers: the list writes a score for each account and rule set, and 9M
/// scores, two in three with cents, averaged 190 ns each as floats and 40 as integers.
fn write_cents(out: &mut String, x: f64) {
    let cents = (x * 100.0).round();
    // Too large, infinite or NaN.
    if cents.is_nan() || cents.abs() >= EXACT_CENTS {
        return write_float(out, cents / 100.0);
    }
    let (sign, c) = if cents <= -1.0 { ("-", -cents as i64) } else { ("", cents as i64) };
    let _ = match c % 100 {
        0 => write!(out, "{sign}{}", c / 100),
        f if f % 10 == 0 => write!(out, "{sign}{}.{}", c / 100, f / 10),
        f => write!(out, "{sign}{}.{f:02}", c / 100),
    };
}

/// `f`'s place in `f64::total_cmp`'s order, as an unsigned integer.
fn total_order(f: f64) -> u64 {
    let bits = f.to_bits();
    // Negative numbers: every bit flipped (larger magnitudes come first); others: the sign bit set.
    if bits >> 63 == 1 { !bits } else { bits | 1 << 63 }
}

/// A text column's value as text, read in place when the column holds text.
fn text_cell<'a>(column: &'a ArrayRef, row: usize, buf: &'a mut String) -> &'a str {
    if let Some(a) = column.as_any().downcast_ref::<StringArray>() {
        return if a.is_null(row) { "" } else { a.value(row) };
    }
    *buf = display_value(&cell(column, row));
    buf
}

/// One rule set's grades and scores in the list's order: `grades` index `names` from 1
/// (0: no grade).
struct SetColumns<'a> {
    names: Vec<&'a str>,
    grades: Vec<u32>,
    scores: Vec<Option<f64>>,
}

#[cfg(test)]
mod tests {
    use super::{total_order, write_cents};
    use crate::entity::format_float;
    use proptest::prelude::*;

    /// Cents written from integers read exactly as the float formatting they replace.
    fn check_cents(x: f64) {
        let mut cents = String::new();
        write_cents(&mut cents, x);
        assert_eq!(cents, format_float((x * 100.0).round() / 100.0), "cents {x:?}");
    }

    #[test]
    fn cents_match_float_formatting() {
        for x in [
            0.0,
            -0.0,
            0.004,
            -0.004,
            0.005,
            -0.005,
            0.01,
            -0.05,
            0.1,
            0.125,
            1.0,
            12.5,
            -12.5,
            3000.0,
            3e6,
            1234.56,
            -1234.56,
            99.995,
            1e10 + 0.01,
            9.99e10,
            1e11,
            1e13,
            -1e14,
            1.5e300,
            1e-300,
            f64::MIN_POSITIVE,
            f64::INFINITY,
            f64::NEG_INFINITY,
            f64::NAN,
        ] {
            check_cents(x);
        }
    }

    proptest! {
        #[test]
        fn cents_match_for_any_number(x in any::<f64>()) {
            check_cents(x);
        }

        #[test]
        fn cents_match_for_decimals(cents in -10_000_000_000_000i64..10_000_000_000_000i64, scale in 0u32..4) {
            check_cents(cents as f64 / 10f64.powi(scale as i32));
        }
    }

    /// The integer order is `f64::total_cmp`'s, signed zeros, infinities and NaN included.
    #[test]
    fn total_order_is_total_cmp() {
        let values = [
            f64::NEG_INFINITY,
            -3e6,
            -1.5,
            -f64::MIN_POSITIVE,
            -0.0,
            0.0,
            f64::MIN_POSITIVE,
            0.01,
            3000.0,
            3_000.000_000_1,
            3e6,
            f64::INFINITY,
            f64::NAN,
            -f64::NAN,
        ];
        for a in values {
            for b in values {
                assert_eq!(total_order(a).cmp(&total_order(b)), a.total_cmp(&b), "{a} against {b}");
            }
        }
    }
}
