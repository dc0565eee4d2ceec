//! Reading YAML files into raw structs, with every error located.
//!
//! serde-saphyr gives each [`Spanned`] value its line and column; [`TextMap`] turns a
//! position inside an embedded expression or template back into a file position.

use std::path::Path;

use serde::de::DeserializeOwned;
use serde_saphyr::{Options, Spanned};

use crate::config::diagnostic::Code;
use crate::config::diagnostic::{Diagnostic, SourceFile, Span};

/// Parse options shared by every keepwell YAML file: `no` stays a string, duplicate keys
/// are errors, and hostile files hit a size budget instead of exhausting memory.
fn options() -> Options {
    let mut options = Options::default();
    options.strict_booleans = true;
    options.with_snippet = false;
    options
}

/// Reads and parses `path`, or returns one located diagnostic.
pub fn read<T: DeserializeOwned>(path: &Path, display: &str) -> Result<(T, SourceFile), Box<Diagnostic>> {
    let text = std::fs::read_to_string(path).map_err(|e| {
        Box::new(Diagnostic::error(
            Code::Unreadable,
            Span::file_only(display, path),
            format!("cannot read `{display}`: {e}"),
        ))
    })?;
    let file = SourceFile::new(display, path, text);
    let value = parse(&file)?;
    Ok((value, file))
}

pub fn parse<T: DeserializeOwned>(file: &SourceFile) -> Result<T, Box<Diagnostic>> {
    serde_saphyr::from_str_with_options::<T>(&file.text, options()).map_err(|e| {
        let span = match e.location() {
            Some(loc) if loc.line() > 0 => file.span(loc.line() as usize, loc.column() as usize, 1),
            _ => file.start(),
        };
        let message = clean_message(&e.to_string());
        // Underline the whole unknown key, not just its first character.
        let span = match message.strip_prefix("unknown field `").and_then(|rest| rest.split_once('`')) {
            Some((field, _)) => crate::config::diagnostic::Span { len: field.chars().count(), ..span },
            None => span,
        };
        // The scanner reports a tab where the value before it started, often a line early:
        // point at the tab itself.
        if message.contains("tab") {
            let from = span.line.max(1);
            let tab =
                file.text.lines().enumerate().skip(from - 1).find_map(|(i, l)| l.find('\t').map(|c| (i + 1, c + 1)));
            if let Some((line, col)) = tab {
                return Box::new(
                    Diagnostic::error(Code::Yaml, file.span(line, col, 1), "a tab where YAML needs spaces")
                        .with_hint("YAML indents with spaces only: replace the tab with spaces"),
                );
            }
        }
        let lines: Vec<&str> = file.text.lines().collect();
        // A key with nothing under it (`accounts:`) and the next line no deeper: the error is
        // on that next line, which belongs inside the key.
        if indentation_hint(&message).is_some()
            && let Some(line) = lines.get(span.line.wrapping_sub(1))
            && line.trim_end().ends_with(':')
            && let Some((next, text)) = next_content(&lines, span.line)
            && indent(text) <= indent(line)
        {
            let key = line.trim().trim_end_matches(':');
            return Box::new(
                Diagnostic::error(
                    Code::Yaml,
                    file.span(next, indent(text) + 1, text.trim().split(':').next().unwrap_or("").len()),
                    format!("nothing is nested under `{key}:`"),
                )
                .with_hint(format!(
                    "indent this line deeper than `{key}:` to put it inside; YAML nests by spaces, two per level"
                )),
            );
        }
        let hint = field_hint(&message)
            .or_else(|| nesting_hint(&message, &lines, span.line))
            .or_else(|| indentation_hint(&message));
        Box::new(Diagnostic::error(Code::Yaml, span, message).with_hint_opt(hint))
    })
}

/// `unknown field `primary_ky`, expected one of path, ...`: the closest expected field.
fn field_hint(message: &str) -> Option<String> {
    let rest = message.strip_prefix("unknown field `")?;
    let (field, rest) = rest.split_once('`')?;
    let expected =
        rest.split_once("expected one of ").map(|(_, e)| e).or_else(|| rest.split_once("expected ").map(|(_, e)| e))?;
    let names: Vec<&str> = expected.split(',').map(|n| n.trim().trim_matches('`')).collect();
    crate::config::diagnostic::did_you_mean(field, names)
}

/// An unknown key right under a key with nothing after its colon (`entity:` then `view:`
/// at the same indentation) was meant inside it.
fn nesting_hint(message: &str, lines: &[&str], line: usize) -> Option<String> {
    let field = message.strip_prefix("unknown field `")?.split_once('`')?.0;
    let this = lines.get(line.checked_sub(1)?)?;
    let above = lines[..line - 1].iter().rev().find(|l| !l.trim().is_empty() && !l.trim_start().starts_with('#'))?;
    (above.trim_end().ends_with(':') && indent(above) == indent(this)).then(|| {
        let key = above.trim().trim_end_matches(':');
        format!("if `{field}` belongs to `{key}:` above, indent it two spaces deeper")
    })
}

fn indent(line: &str) -> usize {
    line.len() - line.trim_start_matches(' ').len()
}

/// The first line after `line` (1-based) with something other than a comment.
fn next_content<'a>(lines: &[&'a str], line: usize) -> Option<(usize, &'a str)> {
    lines
        .iter()
        .enumerate()
        .skip(line)
        .find(|(_, l)| !l.trim().is_empty() && !l.trim_start().starts_with('#'))
        .map(|(i, l)| (i + 1, *l))
}

/// Most structural YAML errors come from a line indented more or less than it should be.
fn indentation_hint(message: &str) -> Option<String> {
    let structural = ["mapping", "block", "indent", "did not find expected", "sequence"];
    structural.iter().any(|w| message.contains(w)).then(|| {
        "check this line's indentation against the lines above: YAML nests by spaces, two per level".to_string()
    })
}

/// serde-saphyr appends its own position; ours is shown in the snippet, so drop it.
fn clean_message(message: &str) -> String {
    let first = message.lines().next().unwrap_or(message).trim();
    let first = match first.rfind(" at line ") {
        Some(i) => &first[..i],
        None => first,
    };
    first.trim_end_matches([':', ',']).to_string()
}

/// The span of a spanned value, underlining `len` characters.
pub fn span_of<T>(file: &SourceFile, value: &Spanned<T>, len: usize) -> Span {
    let loc = &value.referenced;
    if loc.line() == 0 {
        return file.start();
    }
    let (line, mut col) = (loc.line() as usize, loc.column() as usize);
    // A quoted value's position is its opening quote; point at the text inside.
    let quoted =
        file.line_text(line).and_then(|l| l.chars().nth(col.saturating_sub(1))).is_some_and(|c| c == '"' || c == '\'');
    if quoted {
        col += 1;
    }
    file.span(line, col, len)
}

/// Maps positions inside a string value (an expression or a template) to file positions.
///
/// YAML may quote the text or fold it into a block, so each of the text's lines is looked up
/// in the file at or after the value's position; a line that cannot be found (escapes in a
/// quoted string) falls back to the value's own position.
#[derive(Debug, Clone)]
pub struct TextMap {
    file: SourceFile,
    fallback: (usize, usize),
    lines: Vec<Option<(usize, usize)>>,
}

impl TextMap {
    pub fn new(file: &SourceFile, value: &Spanned<String>) -> Self {
        let fallback = (value.referenced.line() as usize, value.referenced.column() as usize);
        let mut lines = Vec::new();
        let mut search_line = fallback.0.max(1);
        let mut search_col = fallback.1.max(1);
        for text_line in value.value.lines() {
            let needle = text_line.trim_start();
            let indent = text_line.len() - needle.len();
            let mut found = None;
            if !needle.is_empty() {
                for line_no in search_line..search_line + 50 {
                    let Some(line) = file.line_text(line_no) else {
                        break;
                    };
                    let from = if line_no == search_line { search_col - 1 } else { 0 };
                    let byte_from = line.char_indices().nth(from).map_or(line.len(), |(b, _)| b);
                    if let Some(pos) = line[byte_from..].find(needle) {
                        let col = line[..byte_from + pos].chars().count() + 1;
                        found = Some((line_no, col.saturating_sub(indent).max(1)));
                        break;
                    }
                }
            }
            if let Some((line_no, _)) = found {
                search_line = line_no + 1;
                search_col = 1;
            }
            lines.push(found);
        }
        TextMap { file: file.clone(), fallback, lines }
    }

    /// The file span of 1-based `line`, `col` inside the text.
    pub fn span(&self, line: usize, col: usize, len: usize) -> Span {
        match self.lines.get(line.saturating_sub(1)).copied().flatten() {
            Some((l, c)) => self.file.span(l, c + col.saturating_sub(1), len),
            None => self.file.span(self.fallback.0, self.fallback.1, len),
        }
    }

    /// The span of the whole value's start.
    pub fn start(&self, len: usize) -> Span {
        self.span(1, 1, len)
    }

    /// The span of byte offset `offset` inside the text.
    pub fn span_at_offset(&self, text: &str, offset: usize, len: usize) -> Span {
        let before = &text[..offset.min(text.len())];
        let line = before.matches('\n').count() + 1;
        let line_start = before.rfind('\n').map_or(0, |i| i + 1);
        self.span(line, before[line_start..].chars().count() + 1, len)
    }
}
