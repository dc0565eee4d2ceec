//! Located problems in a user's files, each with a stable [`Code`]; `render.rs` shows them
//! as `file:line:col` snippets for people and as JSON for tools.
//!
//! Every check in keepwell reports through [`Diagnostic`], so `keepwell check` can show all
//! problems at once, in file order, in one format that tests assert to the letter.

mod code;
mod render;

pub use code::Code;

use std::path::{Path, PathBuf};
use std::sync::Arc;

/// A file's text, kept so diagnostics can quote the offending line.
#[derive(Debug, Clone)]
pub struct SourceFile {
    /// The path as shown to the user (relative to the project root when possible).
    pub display: String,
    pub path: PathBuf,
    pub text: Arc<str>,
}

impl SourceFile {
    pub fn new(display: impl Into<String>, path: impl Into<PathBuf>, text: impl Into<Arc<str>>) -> Self {
        Self { display: display.into(), path: path.into(), text: text.into() }
    }

    /// The 1-based line `line` without its line ending.
    pub fn line_text(&self, line: usize) -> Option<&str> {
        self.text.lines().nth(line.checked_sub(1)?)
    }

    /// Byte offset of 1-based `line`, `col` (col counts characters).
    pub fn offset_of(&self, line: usize, col: usize) -> Option<usize> {
        let mut offset = 0;
        for (i, l) in self.text.split_inclusive('\n').enumerate() {
            if i + 1 == line {
                let chars = l.char_indices().nth(col.saturating_sub(1)).map(|(b, _)| b);
                return Some(offset + chars.unwrap_or(l.len()));
            }
            offset += l.len();
        }
        None
    }

    /// 1-based line and column of a byte offset.
    pub fn position_of(&self, offset: usize) -> (usize, usize) {
        let before = &self.text[..offset.min(self.text.len())];
        let line = before.matches('\n').count() + 1;
        let line_start = before.rfind('\n').map_or(0, |i| i + 1);
        (line, before[line_start..].chars().count() + 1)
    }

    /// A span covering the whole file's first line, for problems that have no better place.
    pub fn start(&self) -> Span {
        Span { file: Some(self.clone()), line: 1, col: 1, len: 0 }
    }

    pub fn span(&self, line: usize, col: usize, len: usize) -> Span {
        Span { file: Some(self.clone()), line, col, len }
    }
}

/// Where a problem is: a file position and how many characters to underline.
#[derive(Debug, Clone, Default)]
pub struct Span {
    pub file: Option<SourceFile>,
    pub line: usize,
    pub col: usize,
    pub len: usize,
}

impl Span {
    /// A problem about a file as a whole (missing, unreadable).
    pub fn file_only(display: &str, path: &Path) -> Self {
        Span { file: Some(SourceFile::new(display, path, "")), line: 0, col: 0, len: 0 }
    }

    pub fn none() -> Self {
        Span::default()
    }
}

#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Severity {
    Error,
    Warning,
}

#[derive(Debug, Clone)]
pub struct Diagnostic {
    pub code: Code,
    pub severity: Severity,
    pub message: String,
    pub span: Span,
    pub hint: Option<String>,
}

impl Diagnostic {
    pub fn error(code: Code, span: Span, message: impl Into<String>) -> Self {
        Diagnostic { code, severity: Severity::Error, message: message.into(), span, hint: None }
    }

    pub fn warning(code: Code, span: Span, message: impl Into<String>) -> Self {
        Diagnostic { code, severity: Severity::Warning, message: message.into(), span, hint: None }
    }

    pub fn with_hint(mut self, hint: impl Into<String>) -> Self {
        self.hint = Some(hint.into());
        self
    }

    pub fn with_hint_opt(mut self, hint: Option<String>) -> Self {
        self.hint = hint;
        self
    }

    /// `file:line:col` (or just the file, or nothing) for one-line log messages.
    pub fn location(&self) -> String {
        match &self.span.file {
            Some(f) if self.span.line > 0 => {
                format!("{}:{}:{}", f.display, self.span.line, self.span.col)
            }
            Some(f) => f.display.clone(),
            None => String::new(),
        }
    }
}

/// All problems found by a pass; a pass collects them instead of stopping at the first.
#[derive(Debug, Default, Clone)]
pub struct Diagnostics(pub Vec<Diagnostic>);

impl Diagnostics {
    pub fn push(&mut self, d: Diagnostic) {
        self.0.push(d);
    }

    pub fn extend(&mut self, other: Diagnostics) {
        self.0.extend(other.0);
    }

    pub fn has_errors(&self) -> bool {
        self.0.iter().any(|d| d.severity == Severity::Error)
    }

    pub fn errors(&self) -> usize {
        self.0.iter().filter(|d| d.severity == Severity::Error).count()
    }

    pub fn warnings(&self) -> usize {
        self.0.iter().filter(|d| d.severity == Severity::Warning).count()
    }

    pub fn is_empty(&self) -> bool {
        self.0.is_empty()
    }

    /// Sorted by file and position, so output is stable whatever order the checks ran in.
    pub fn sorted(mut self) -> Self {
        self.0.sort_by(|a, b| {
            let key = |d: &Diagnostic| (d.span.file.as_ref().map(|f| f.display.clone()), d.span.line, d.span.col);
            key(a).cmp(&key(b))
        });
        self
    }
}

/// The closest candidate to `name`, for "did you mean" hints.
pub fn did_you_mean<'a>(name: &str, candidates: impl IntoIterator<Item = &'a str>) -> Option<String> {
    candidates
        .into_iter()
        .map(|c| (strsim::damerau_levenshtein(name, c), c))
        .filter(|(d, c)| *d <= (name.len().max(c.len()) / 3).max(1) && *d > 0)
        .min()
        .map(|(_, c)| format!("did you mean `{c}`?"))
}
