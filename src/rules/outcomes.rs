//! A run's outcomes, kept column by column.
//!
//! A run holds one outcome per account and rule set: 9M at 1M accounts. As one struct each,
//! with a vector per list and a string per reason, they took 2.4 GB. Here each rule set's
//! outcomes are Arrow arrays in chunks of [`CHUNK`] accounts (about 0.7 GB at 1M accounts),
//! evaluated a chunk at a time on every core and read through [`OutcomeRef`]. The store
//! writes the same arrays.

use rhai::Map;
use thin_vec::ThinVec;

use super::engine::number;
use std::sync::Arc;

use duckdb::arrow::array::{
    Array, ArrayRef, DictionaryArray, Float64Array, Float64Builder, ListArray, StringArray, StringBuilder, UInt16Array,
};
use duckdb::arrow::buffer::OffsetBuffer;
use duckdb::arrow::datatypes::{DataType, Field};
use hashbrown::hash_table::Entry;
use hashbrown::{DefaultHashBuilder, HashTable};
use rayon::prelude::*;
use std::hash::BuildHasher;

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
    values: Values,
}

#[derive(Debug, Clone)]
enum Values {
    Text(StringArray),
    /// Each item as a key into the chunk's distinct texts, two bytes an item: the rules
    /// that fired are keys into the set's rule ids (a set of 60 rules fires about 25M at 1M
    /// accounts), reasons and tags into the texts seen.
    Keys {
        keys: UInt16Array,
        names: StringArray,
    },
}

impl Texts {
    fn row(&self, i: usize) -> TextList<'_> {
        let offsets = self.offsets.as_ref();
        let (start, end) = (offsets[i] as usize, offsets[i + 1] as usize);
        match &self.values {
            Values::Text(values) => TextList::Column(values, start, end),
            Values::Keys { keys, names } => TextList::Keyed(&keys.values()[start..end], names),
        }
    }

    /// The type of [`Texts::to_list_array`].
    pub fn data_type(&self) -> DataType {
        let values = match &self.values {
            Values::Text(_) => DataType::Utf8,
            Values::Keys { .. } => DataType::Dictionary(Box::new(DataType::UInt16), Box::new(DataType::Utf8)),
        };
        DataType::List(Arc::new(Field::new("item", values, true)))
    }

    /// The lists as an Arrow list array, for the store: keyed items as a dictionary, which
    /// the Parquet writer stores as it would have encoded the texts.
    pub fn to_list_array(&self) -> ListArray {
        let values: ArrayRef = match &self.values {
            Values::Text(values) => Arc::new(values.clone()),
            Values::Keys { keys, names } => Arc::new(DictionaryArray::new(keys.clone(), Arc::new(names.clone()))),
        };
        let field = Arc::new(Field::new("item", values.data_type().clone(), true));
        ListArray::new(field, self.offsets.clone(), values, None)
    }
}

/// [`Texts`] a row at a time: the row's items, then [`TextsBuilder::end_row`].
///
/// Items are kept as two-byte keys into the chunk's distinct texts: a run's 9M reasons at
/// 1M accounts are 0.7M distinct texts (mostly the same few per rule), and as keys they take
/// a tenth of the memory. A chunk with more distinct texts than a key holds keeps them as
/// text.
pub struct TextsBuilder {
    lengths: Vec<usize>,
    open: usize,
    /// Items of the open row past [`MAX_ITEMS`], said in one last item.
    dropped: usize,
    values: ValuesBuilder,
}

/// The most items (reasons, tags, fired rules) one account keeps for one rule set: far
/// more than a rule set's rules give, but a script's lists are bounded.
pub const MAX_ITEMS: usize = 1_000;

/// The longest text one item keeps, in bytes; longer ones are cut at a character.
pub const MAX_TEXT: usize = 1_000;

/// `s` cut to [`MAX_TEXT`] bytes at a character boundary, marked with `…`.
fn bounded(s: &str) -> std::borrow::Cow<'_, str> {
    if s.len() <= MAX_TEXT {
        return std::borrow::Cow::Borrowed(s);
    }
    let mut end = MAX_TEXT;
    while !s.is_char_boundary(end) {
        end -= 1;
    }
    std::borrow::Cow::Owned(format!("{}…", &s[..end]))
}

enum ValuesBuilder {
    Text(StringBuilder),
    Keys {
        keys: Vec<u16>,
        names: Names,
        /// The first names are the ids given to [`TextsBuilder::keyed`], in order.
        ids: usize,
    },
}

/// The distinct texts of a chunk, in the order first seen, with a hash index: laid out as
/// an Arrow string array's offsets and bytes, which [`Names::finish`] hands over as they are.
struct Names {
    text: String,
    /// Name `k` is `text[offsets[k]..offsets[k + 1]]`.
    offsets: Vec<i32>,
    index: HashTable<u16>,
    hasher: DefaultHashBuilder,
}

impl Default for Names {
    fn default() -> Self {
        Names { text: String::new(), offsets: vec![0], index: HashTable::new(), hasher: DefaultHashBuilder::default() }
    }
}

impl Names {
    fn get<'a>(text: &'a str, offsets: &[i32], key: u16) -> &'a str {
        let k = usize::from(key);
        &text[offsets[k] as usize..offsets[k + 1] as usize]
    }

    /// The key of `s`, added if it is new; `None` when every key is taken.
    fn key(&mut self, s: &str) -> Option<u16> {
        let Names { text, offsets, index, hasher } = self;
        let hash = hasher.hash_one(s);
        let entry =
            index.entry(hash, |&k| Self::get(text, offsets, k) == s, |&k| hasher.hash_one(Self::get(text, offsets, k)));
        match entry {
            Entry::Occupied(e) => Some(*e.get()),
            Entry::Vacant(e) => {
                let key = u16::try_from(offsets.len() - 1).ok()?;
                let end = i32::try_from(text.len() + s.len()).ok()?;
                text.push_str(s);
                offsets.push(end);
                e.insert(key);
                Some(key)
            }
        }
    }

    fn finish(self) -> StringArray {
        StringArray::new(OffsetBuffer::new(self.offsets.into()), self.text.into_bytes().into(), None)
    }
}

impl TextsBuilder {
    fn new(rows: usize) -> Self {
        Self::keyed(rows, &[]).expect("no names")
    }

    /// Items written as keys into `names` with [`TextsBuilder::key`]; `None` when there are
    /// too many names for a key.
    fn keyed(rows: usize, ids: &[&str]) -> Option<Self> {
        let mut names = Names::default();
        for id in ids {
            names.key(id)?;
        }
        Some(TextsBuilder {
            lengths: Vec::with_capacity(rows),
            open: 0,
            dropped: 0,
            values: ValuesBuilder::Keys { keys: Vec::with_capacity(rows), names, ids: ids.len() },
        })
    }

    /// Adds an item to the open row: at most [`MAX_ITEMS`] a row, each at most
    /// [`MAX_TEXT`] bytes, so no rule (a script's reasons) can grow a run without bound.
    pub fn item(&mut self, s: &str) {
        if self.open >= MAX_ITEMS {
            self.dropped += 1;
            return;
        }
        self.push(&bounded(s));
    }

    fn push(&mut self, s: &str) {
        match &mut self.values {
            ValuesBuilder::Text(values) => values.append_value(s),
            ValuesBuilder::Keys { keys, names, .. } => match names.key(s) {
                Some(key) => keys.push(key),
                None => {
                    // More names than keys: the items so far become text.
                    let mut text = StringBuilder::new();
                    keys.iter().for_each(|&k| text.append_value(Names::get(&names.text, &names.offsets, k)));
                    text.append_value(s);
                    self.values = ValuesBuilder::Text(text);
                }
            },
        }
        self.open += 1;
    }

    /// The item `ids[key]` of a builder made by `TextsBuilder::keyed` with `ids`; anything
    /// else takes it as the text `name`.
    #[inline]
    pub fn key(&mut self, key: u16, name: &str) {
        if self.open >= MAX_ITEMS {
            self.dropped += 1;
            return;
        }
        match &mut self.values {
            ValuesBuilder::Keys { keys, ids, .. } if usize::from(key) < *ids => {
                keys.push(key);
                self.open += 1;
            }
            _ => self.item(name),
        }
    }

    pub fn end_row(&mut self) {
        if self.dropped > 0 {
            let more = format!("… and {} more", std::mem::take(&mut self.dropped));
            self.push(&more);
        }
        self.lengths.push(std::mem::take(&mut self.open));
    }

    fn finish(self) -> Texts {
        let values = match self.values {
            ValuesBuilder::Text(mut values) => Values::Text(values.finish()),
            ValuesBuilder::Keys { keys, names, .. } => {
                Values::Keys { keys: UInt16Array::from(keys), names: names.finish() }
            }
        };
        Texts { offsets: OffsetBuffer::from_lengths(self.lengths), values }
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
        Self::with_ids(rows, None)
    }

    /// A builder whose fired rules are keys into `ids` (see [`TextsBuilder::key`]).
    fn with_ids(rows: usize, ids: Option<&[&str]>) -> Self {
        ChunkBuilder {
            score: Float64Builder::with_capacity(rows),
            grade: StringBuilder::with_capacity(rows, rows * 8),
            fired: ids.and_then(|ids| TextsBuilder::keyed(rows, ids)).unwrap_or_else(|| TextsBuilder::new(rows)),
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
        Self::build_with_ids(rows, None, init, write)
    }

    /// [`SetOutcomes::build`] with the fired rules kept as keys into `ids`: `write` gives
    /// them with `chunk.fired.key(..)`.
    pub fn build_with_ids<T, I, F>(rows: usize, ids: Option<&[&str]>, init: I, write: F) -> SetOutcomes
    where
        I: Fn() -> T + Sync + Send,
        F: Fn(&mut T, usize, &mut ChunkBuilder) + Sync + Send,
    {
        let chunks = (0..rows.div_ceil(CHUNK))
            .into_par_iter()
            .map_init(init, |state, c| {
                let range = c * CHUNK..rows.min((c + 1) * CHUNK);
                let mut chunk = ChunkBuilder::with_ids(range.len(), ids);
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
    /// Keys into names.
    Keyed(&'a [u16], &'a StringArray),
    Shared(&'a [Arc<str>]),
    Owned(&'a [String]),
}

impl<'a> TextList<'a> {
    pub fn len(self) -> usize {
        match self {
            TextList::Column(_, start, end) => end - start,
            TextList::Keyed(keys, _) => keys.len(),
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
            TextList::Keyed(keys, names) => names.value(usize::from(keys[i])),
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

/// An account's result for one rule set.
#[derive(Debug, Clone, Default, PartialEq)]
pub struct Outcome {
    /// `None` when a rule failed for this account (a partial score would mislead), for
    /// classifications, and for scorecards whose every measure is N/A.
    pub score: Option<f64>,
    pub grade: Option<Arc<str>>,
    // Thin vectors (one pointer, nothing allocated while empty): a run holds one outcome per
    // account and rule set, 9M of them at 1M accounts, and most lists are empty.
    pub fired: ThinVec<Arc<str>>,
    pub reasons: ThinVec<String>,
    pub tags: ThinVec<Arc<str>>,
    pub errors: ThinVec<RuleError>,
}

#[derive(Debug, Clone, PartialEq)]
pub struct RuleError {
    pub rule: Arc<str>,
    pub message: String,
}

/// What a script returned, from rhai's map or from its translated columns.
#[derive(Debug, Default, PartialEq)]
pub struct ScriptResult {
    pub score: Option<f64>,
    pub grade: Option<String>,
    pub fired: Vec<String>,
    pub reasons: Vec<String>,
    pub tags: Vec<String>,
}

impl ScriptResult {
    /// What rhai's map holds: lists are shown as text, anything else in them is ignored.
    pub fn of(map: &Map) -> ScriptResult {
        let strings = |key: &str| -> Vec<String> {
            map.get(key)
                .and_then(|v| v.clone().into_array().ok())
                .unwrap_or_default()
                .iter()
                .map(crate::entity::display_value)
                .collect()
        };
        ScriptResult {
            score: map.get("score").and_then(number),
            grade: map.get("grade").filter(|g| !g.is_unit()).map(crate::entity::display_value),
            fired: strings("fired"),
            reasons: strings("reasons"),
            tags: strings("tags"),
        }
    }
}

/// A script's outcome: neither a score nor a grade is an error.
pub(crate) fn script_outcome(r: ScriptResult) -> Outcome {
    let mut outcome = Outcome {
        score: r.score,
        grade: r.grade.map(|g| Arc::from(g.as_str())),
        fired: r.fired.iter().map(|s| Arc::from(s.as_str())).collect(),
        reasons: r.reasons.into(),
        tags: r.tags.iter().map(|s| Arc::from(s.as_str())).collect(),
        errors: ThinVec::new(),
    };
    if outcome.score.is_none() && outcome.grade.is_none() {
        outcome.errors.push(RuleError {
            rule: Arc::from("script"),
            message: "the script returned neither `score` nor `grade`".into(),
        });
    }
    outcome
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

    /// Fired rules kept as keys into the set's rule ids read back as their texts, a text
    /// given that is not among the ids included, and store as the same lists of text.
    #[test]
    fn fired_rules_kept_as_keys_read_back_and_store_as_text() {
        use duckdb::arrow::compute::cast;
        let rows = CHUNK + 9;
        let expected: Vec<Outcome> = (0..rows).map(outcome).collect();
        // `r0` is not among the ids: it is added to the chunk's names.
        let keyed =
            SetOutcomes::build_with_ids(rows, Some(&["r1", "r9"]), || (), |_, row, chunk| chunk.push(&expected[row]));
        let plain = SetOutcomes::from_outcomes(&expected);
        for (row, o) in expected.iter().enumerate() {
            assert_same(keyed.get(row), o);
        }
        for (k, p) in keyed.chunks().iter().zip(plain.chunks()) {
            let list = k.fired.to_list_array();
            assert!(matches!(list.value_type(), DataType::Dictionary(..)), "{:?}", list.data_type());
            let as_text = cast(&list, p.fired.to_list_array().data_type()).unwrap();
            assert_eq!(as_text.as_ref(), &p.fired.to_list_array() as &dyn Array);
        }
        // `key` on a builder of texts writes the name.
        let mut texts = TextsBuilder::new(1);
        texts.key(3, "r3");
        texts.end_row();
        assert_eq!(texts.finish().row(0).iter().collect::<Vec<_>>(), ["r3"]);
    }

    /// More names than a key holds: the items so far become texts, and read back the same.
    #[test]
    fn a_keyed_list_with_too_many_names_becomes_text() {
        let names: Vec<String> = (0..u16::MAX).map(|n| format!("n{n}")).collect();
        let names: Vec<&str> = names.iter().map(|n| n.as_str()).collect();
        let mut texts = TextsBuilder::keyed(2, &names).expect("65,535 names fit");
        texts.key(7, "n7");
        texts.item("x");
        texts.end_row();
        texts.item("y");
        texts.key(2, "n2");
        texts.end_row();
        assert!(matches!(texts.values, ValuesBuilder::Text(_)), "y has no key left");
        let texts = texts.finish();
        assert_eq!(texts.row(0).iter().collect::<Vec<_>>(), ["n7", "x"]);
        assert_eq!(texts.row(1).iter().collect::<Vec<_>>(), ["y", "n2"]);
    }

    #[test]
    fn an_empty_run_has_no_chunks() {
        let set = SetOutcomes::evaluate(0, || (), |_, row| outcome(row));
        assert!(set.is_empty());
        assert_eq!(set.iter().count(), 0);
    }
}
