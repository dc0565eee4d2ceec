//! A run's outcomes, kept column by column.
//!
//! A run holds one outcome per account and rule set: 9M at 1M accounts. As one struct each,
//! with a vector per list and a string per reason, they took 2.4 GB. Here each rule set's
//! outcomes are Arrow arrays in chunks of [`CHUNK`] accounts (about 0.7 GB at 1M accounts),
//! evaluated a chunk at a time on every core and read through [`OutcomeRef`]. The store
//! writes the same arrays.

use std::sync::Arc;

use duckdb::arrow::array::{Array, Float64Array, Float64Builder, ListArray, StringArray, StringBuilder};
use duckdb::arrow::buffer::OffsetBuffer;
use duckdb::arrow::datatypes::{DataType, Field};
use rayon::prelude::*;

use super::eval::{Outcome, RuleError};

/// Accounts per chunk: enough to make building the arrays cheap, few enough that the
/// outcomes of one chunk per core are small.
pub const CHUNK: usize = 4096;

/// One rule set's outcomes for every account, in row order.
#[derive(Debug, Clone, Default)]
pub struct SetOutcomes {
    chunks: Vec<Chunk>,
}

/// The outcomes of up to [`CHUNK`] consecutive accounts.
#[derive(Debug, Clone)]
pub struct Chunk {
    pub score: Float64Array,
    pub grade: StringArray,
    pub fired: Texts,
    pub reasons: Texts,
    pub tags: Texts,
    /// Rows (within the chunk) with errors, ascending, and their errors: few.
    error_rows: Vec<u32>,
    errors: Vec<RuleError>,
}

/// A list of texts per row: offsets into one array of values.
#[derive(Debug, Clone)]
pub struct Texts {
    offsets: OffsetBuffer<i32>,
    values: StringArray,
}

impl Texts {
    fn row(&self, i: usize) -> TextList<'_> {
        let offsets = self.offsets.as_ref();
        TextList::Column(&self.values, offsets[i] as usize, offsets[i + 1] as usize)
    }

    /// The lists as an Arrow list array, for the store.
    pub fn to_list_array(&self) -> ListArray {
        let field = Arc::new(Field::new("item", DataType::Utf8, true));
        ListArray::new(field, self.offsets.clone(), Arc::new(self.values.clone()), None)
    }
}

/// [`Texts`] a row at a time: the row's items, then [`TextsBuilder::end_row`].
pub struct TextsBuilder {
    lengths: Vec<usize>,
    values: StringBuilder,
    open: usize,
}

impl TextsBuilder {
    fn new(rows: usize) -> Self {
        TextsBuilder { lengths: Vec::with_capacity(rows), values: StringBuilder::new(), open: 0 }
    }

    pub fn item(&mut self, s: &str) {
        self.values.append_value(s);
        self.open += 1;
    }

    pub fn end_row(&mut self) {
        self.lengths.push(std::mem::take(&mut self.open));
    }

    fn finish(mut self) -> Texts {
        Texts { offsets: OffsetBuffer::from_lengths(self.lengths), values: self.values.finish() }
    }
}

/// A [`Chunk`] built an account at a time: from an evaluated [`Outcome`], or written field by
/// field by a columnar evaluation (no outcome built per account).
pub struct ChunkBuilder {
    score: Float64Builder,
    grade: StringBuilder,
    pub fired: TextsBuilder,
    pub reasons: TextsBuilder,
    pub tags: TextsBuilder,
    rows: u32,
    error_rows: Vec<u32>,
    errors: Vec<RuleError>,
}

impl ChunkBuilder {
    pub fn new(rows: usize) -> Self {
        ChunkBuilder {
            score: Float64Builder::with_capacity(rows),
            grade: StringBuilder::with_capacity(rows, rows * 8),
            fired: TextsBuilder::new(rows),
            reasons: TextsBuilder::new(rows),
            tags: TextsBuilder::new(rows),
            rows: 0,
            error_rows: Vec::new(),
            errors: Vec::new(),
        }
    }

    /// Ends an account written field by field: its fired rules, reasons and tags were given
    /// as items, in order; it has no errors.
    pub fn end_row(&mut self, score: Option<f64>, grade: Option<&str>) {
        self.score.append_option(score);
        self.grade.append_option(grade);
        self.fired.end_row();
        self.reasons.end_row();
        self.tags.end_row();
        self.rows += 1;
    }

    /// Appends an evaluated outcome.
    pub fn push(&mut self, o: &Outcome) {
        o.fired.iter().for_each(|s| self.fired.item(s));
        o.reasons.iter().for_each(|s| self.reasons.item(s));
        o.tags.iter().for_each(|s| self.tags.item(s));
        for e in &o.errors {
            self.error_rows.push(self.rows);
            self.errors.push(e.clone());
        }
        self.end_row(o.score, o.grade.as_deref());
    }

    pub fn finish(mut self) -> Chunk {
        Chunk {
            score: self.score.finish(),
            grade: self.grade.finish(),
            fired: self.fired.finish(),
            reasons: self.reasons.finish(),
            tags: self.tags.finish(),
            error_rows: self.error_rows,
            errors: self.errors,
        }
    }
}

impl Chunk {
    fn new(rows: &[Outcome]) -> Chunk {
        let mut b = ChunkBuilder::new(rows.len());
        rows.iter().for_each(|o| b.push(o));
        b.finish()
    }

    pub fn len(&self) -> usize {
        self.score.len()
    }

    pub fn is_empty(&self) -> bool {
        self.score.is_empty()
    }

    /// Each error with its row within the chunk.
    pub fn errors(&self) -> impl Iterator<Item = (usize, &RuleError)> {
        self.error_rows.iter().map(|&r| r as usize).zip(&self.errors)
    }
}

impl SetOutcomes {
    /// Evaluates `rows` accounts a chunk at a time on every core: `init` makes each thread's
    /// state and `outcome` evaluates one row.
    pub fn evaluate<T, I, F>(rows: usize, init: I, outcome: F) -> SetOutcomes
    where
        I: Fn() -> T + Sync + Send,
        F: Fn(&mut T, usize) -> Outcome + Sync + Send,
    {
        Self::build(rows, init, |state, row, chunk| chunk.push(&outcome(state, row)))
    }

    /// Like [`SetOutcomes::evaluate`], with `write` appending each row to its chunk itself.
    pub fn build<T, I, F>(rows: usize, init: I, write: F) -> SetOutcomes
    where
        I: Fn() -> T + Sync + Send,
        F: Fn(&mut T, usize, &mut ChunkBuilder) + Sync + Send,
    {
        let chunks = (0..rows.div_ceil(CHUNK))
            .into_par_iter()
            .map_init(init, |state, c| {
                let range = c * CHUNK..rows.min((c + 1) * CHUNK);
                let mut chunk = ChunkBuilder::new(range.len());
                range.for_each(|row| write(state, row, &mut chunk));
                chunk.finish()
            })
            .collect();
        SetOutcomes { chunks }
    }

    /// Outcomes evaluated elsewhere, in row order.
    pub fn from_outcomes(outcomes: &[Outcome]) -> SetOutcomes {
        SetOutcomes { chunks: outcomes.chunks(CHUNK).map(Chunk::new).collect() }
    }

    /// Every chunk but the last is full.
    pub fn len(&self) -> usize {
        self.chunks.last().map_or(0, |last| (self.chunks.len() - 1) * CHUNK + last.len())
    }

    pub fn is_empty(&self) -> bool {
        self.chunks.is_empty()
    }

    pub fn get(&self, row: usize) -> OutcomeRef<'_> {
        OutcomeRef::Stored(&self.chunks[row / CHUNK], row % CHUNK)
    }

    pub fn iter(&self) -> impl Iterator<Item = OutcomeRef<'_>> {
        self.chunks.iter().flat_map(|c| (0..c.len()).map(move |i| OutcomeRef::Stored(c, i)))
    }

    /// The chunks in row order: the first row of chunk `n` is `n * CHUNK`.
    pub fn chunks(&self) -> &[Chunk] {
        &self.chunks
    }

    /// Every error with its row.
    pub fn errors(&self) -> impl Iterator<Item = (usize, &RuleError)> {
        self.chunks.iter().enumerate().flat_map(|(n, c)| c.errors().map(move |(i, e)| (n * CHUNK + i, e)))
    }
}

/// One account's outcome for one rule set: stored in a run's columns, or evaluated alone
/// (`explain`, rule tests).
#[derive(Debug, Clone, Copy)]
pub enum OutcomeRef<'a> {
    Stored(&'a Chunk, usize),
    Owned(&'a Outcome),
}

impl<'a> From<&'a Outcome> for OutcomeRef<'a> {
    fn from(o: &'a Outcome) -> Self {
        OutcomeRef::Owned(o)
    }
}

impl<'a> OutcomeRef<'a> {
    pub fn score(self) -> Option<f64> {
        match self {
            OutcomeRef::Stored(c, i) => c.score.is_valid(i).then(|| c.score.value(i)),
            OutcomeRef::Owned(o) => o.score,
        }
    }

    pub fn grade(self) -> Option<&'a str> {
        match self {
            OutcomeRef::Stored(c, i) => c.grade.is_valid(i).then(|| c.grade.value(i)),
            OutcomeRef::Owned(o) => o.grade.as_deref(),
        }
    }

    pub fn fired(self) -> TextList<'a> {
        match self {
            OutcomeRef::Stored(c, i) => c.fired.row(i),
            OutcomeRef::Owned(o) => TextList::Shared(&o.fired),
        }
    }

    pub fn reasons(self) -> TextList<'a> {
        match self {
            OutcomeRef::Stored(c, i) => c.reasons.row(i),
            OutcomeRef::Owned(o) => TextList::Owned(&o.reasons),
        }
    }

    pub fn tags(self) -> TextList<'a> {
        match self {
            OutcomeRef::Stored(c, i) => c.tags.row(i),
            OutcomeRef::Owned(o) => TextList::Shared(&o.tags),
        }
    }

    pub fn errors(self) -> &'a [RuleError] {
        match self {
            OutcomeRef::Stored(c, i) => {
                let start = c.error_rows.partition_point(|&r| (r as usize) < i);
                let end = c.error_rows.partition_point(|&r| (r as usize) <= i);
                &c.errors[start..end]
            }
            OutcomeRef::Owned(o) => &o.errors,
        }
    }
}

/// An outcome's rule ids, reasons or tags.
#[derive(Debug, Clone, Copy)]
pub enum TextList<'a> {
    /// Values `start..end` of a column.
    Column(&'a StringArray, usize, usize),
    Shared(&'a [Arc<str>]),
    Owned(&'a [String]),
}

impl<'a> TextList<'a> {
    pub fn len(self) -> usize {
        match self {
            TextList::Column(_, start, end) => end - start,
            TextList::Shared(v) => v.len(),
            TextList::Owned(v) => v.len(),
        }
    }

    pub fn is_empty(self) -> bool {
        self.len() == 0
    }

    pub fn get(self, i: usize) -> &'a str {
        match self {
            TextList::Column(values, start, _) => values.value(start + i),
            TextList::Shared(v) => &v[i],
            TextList::Owned(v) => &v[i],
        }
    }

    pub fn first(self) -> Option<&'a str> {
        (!self.is_empty()).then(|| self.get(0))
    }

    pub fn iter(self) -> impl ExactSizeIterator<Item = &'a str> + Clone {
        (0..self.len()).map(move |i| self.get(i))
    }

    pub fn contains(self, s: &str) -> bool {
        self.iter().any(|t| t == s)
    }

    pub fn to_vec(self) -> Vec<String> {
        self.iter().map(str::to_string).collect()
    }
}

impl PartialEq for TextList<'_> {
    fn eq(&self, other: &Self) -> bool {
        self.len() == other.len() && self.iter().zip(other.iter()).all(|(a, b)| a == b)
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use thin_vec::thin_vec;

    fn outcome(n: usize) -> Outcome {
        let text = |s: String| -> Arc<str> { Arc::from(s.as_str()) };
        Outcome {
            score: (!n.is_multiple_of(3)).then_some(n as f64 / 2.0),
            grade: (!n.is_multiple_of(5)).then(|| text(format!("g{}", n % 4))),
            fired: (0..n % 3).map(|k| text(format!("r{k}"))).collect(),
            reasons: (0..n % 4).map(|k| format!("reason {k} of {n}")).collect(),
            tags: (0..n % 2).map(|k| text(format!("t{k}"))).collect(),
            errors: if n.is_multiple_of(7) {
                thin_vec![
                    RuleError { rule: text("a".into()), message: format!("first of {n}") },
                    RuleError { rule: text("b".into()), message: format!("second of {n}") }
                ]
            } else {
                thin_vec![]
            },
        }
    }

    fn assert_same(stored: OutcomeRef, o: &Outcome) {
        let owned = OutcomeRef::from(o);
        assert_eq!(stored.score(), owned.score());
        assert_eq!(stored.grade(), owned.grade());
        assert_eq!(stored.fired(), owned.fired());
        assert_eq!(stored.reasons(), owned.reasons());
        assert_eq!(stored.tags(), owned.tags());
        assert_eq!(stored.errors(), owned.errors());
    }

    /// Across chunk borders, every field reads back as it was evaluated.
    #[test]
    fn columns_read_back_what_was_evaluated() {
        let rows = 2 * CHUNK + 17;
        let expected: Vec<Outcome> = (0..rows).map(outcome).collect();
        let evaluated = SetOutcomes::evaluate(rows, || (), |_, row| outcome(row));
        let converted = SetOutcomes::from_outcomes(&expected);
        for set in [&evaluated, &converted] {
            assert_eq!(set.len(), rows);
            assert_eq!(set.chunks().len(), 3);
            for (row, o) in expected.iter().enumerate() {
                assert_same(set.get(row), o);
            }
            assert_eq!(set.iter().count(), rows);
            let errors: Vec<(usize, String)> = set.errors().map(|(r, e)| (r, e.message.clone())).collect();
            let want: Vec<(usize, String)> = expected
                .iter()
                .enumerate()
                .flat_map(|(r, o)| o.errors.iter().map(move |e| (r, e.message.clone())))
                .collect();
            assert_eq!(errors, want);
        }
    }

    #[test]
    fn an_empty_run_has_no_chunks() {
        let set = SetOutcomes::evaluate(0, || (), |_, row| outcome(row));
        assert!(set.is_empty());
        assert_eq!(set.iter().count(), 0);
    }
}
