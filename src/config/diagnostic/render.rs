//! Diagnostics rendered for people, like rustc and ruff (a snippet with a caret), and as
//! JSON for editors and CI.

use std::fmt;

use serde_json::{Value, json};

use super::{Diagnostic, Diagnostics, Severity};

impl fmt::Display for Diagnostic {
    /// Renders like rustc and ruff:
    ///
    /// ```text
    /// error: unknown column `ar`
    ///   --> rules/risk.yaml:12:11
    ///    |
    /// 12 |     when: ar > 100000
    ///    |           ^^
    ///    = hint: did you mean `arr`?
    ///    = code: KW012
    /// ```
    ///
    /// The code closes the snippet rather than opening it (`error[KW012]:` in rustc's way):
    /// scripts and tests already match on `error: <message>`, and the code is for looking up.
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        let label = match self.severity {
            Severity::Error => "error",
            Severity::Warning => "warning",
        };
        writeln!(f, "{label}: {}", self.message)?;
        let source_line = self.span.file.as_ref().and_then(|file| file.line_text(self.span.line));
        let gutter = if source_line.is_some() { self.span.line.to_string().len() } else { 1 };
        let pad = " ".repeat(gutter);
        if self.span.file.is_some() {
            writeln!(f, "{pad}--> {}", self.location())?;
        }
        if let Some(text) = source_line {
            let text = text.replace('\t', " ");
            let before: String = text.chars().take(self.span.col.saturating_sub(1)).collect();
            let carets = "^".repeat(self.span.len.max(1));
            writeln!(f, "{pad} |")?;
            writeln!(f, "{} | {}", self.span.line, text.trim_end())?;
            writeln!(f, "{pad} | {}{carets}", " ".repeat(before.chars().count()))?;
        }
        if let Some(hint) = &self.hint {
            writeln!(f, "{pad} = hint: {hint}")?;
        }
        writeln!(f, "{pad} = code: {}", self.code)
    }
}

impl fmt::Display for Diagnostics {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        for (i, d) in self.0.iter().enumerate() {
            if i > 0 {
                writeln!(f)?;
            }
            write!(f, "{d}")?;
        }
        Ok(())
    }
}

impl Diagnostic {
    /// The diagnostic for tools: code, severity, message, where it starts and ends (1-based
    /// lines and columns, the end exclusive), and the hint.
    pub fn to_json(&self) -> Value {
        let file = self.span.file.as_ref().map(|f| f.display.clone());
        let at = |line: usize, col: usize| (self.span.line > 0).then_some((line, col));
        let start = at(self.span.line, self.span.col);
        let end = at(self.span.line, self.span.col + self.span.len.max(1));
        json!({
            "code": self.code.as_str(),
            "severity": match self.severity {
                Severity::Error => "error",
                Severity::Warning => "warning",
            },
            "message": self.message,
            "file": file,
            "line": start.map(|s| s.0),
            "column": start.map(|s| s.1),
            "end": end.map(|(line, column)| json!({"line": line, "column": column})),
            "hint": self.hint,
        })
    }
}

impl Diagnostics {
    /// Every diagnostic as [`Diagnostic::to_json`], in order.
    pub fn to_json(&self) -> Value {
        Value::Array(self.0.iter().map(Diagnostic::to_json).collect())
    }
}
