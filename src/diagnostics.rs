//! Errors and warnings as plain data.
//!
//! Owns the `Diagnostic` value every stage returns when input is wrong: what is wrong, where
//! (a span in a model file, or a row and column of a data file, or just a file), what was
//! expected, and a hint. Stages collect diagnostics instead of stopping at the first. This module
//! must not print: rendering to text happens only at the edge (`render`).

use std::path::{Path, PathBuf};

/// A half-open byte range `[start, end)` into a model file's source.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash, Default, serde::Serialize)]
pub struct Span {
    pub start: usize,
    pub end: usize,
}

impl Span {
    pub fn new(start: usize, end: usize) -> Self {
        Span { start, end }
    }

    /// The smallest span covering both.
    pub fn join(self, other: Span) -> Span {
        Span {
            start: self.start.min(other.start),
            end: self.end.max(other.end),
        }
    }
}

#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Severity {
    Error,
    Warning,
}

/// Where a diagnostic points.
#[derive(Debug, Clone, PartialEq)]
pub enum Location {
    /// A span in the model file being processed.
    Source(Span),
    /// A cell or row of a data file: `row` is the 1-based data row (the header is not counted).
    Data {
        path: PathBuf,
        /// 1-based data row (the header not counted).
        row: Option<usize>,
        /// The file line that row starts on, as an editor numbers it.
        line: Option<u64>,
        column: Option<String>,
    },
    /// A file as a whole (missing, unreadable).
    File(PathBuf),
    /// Nowhere in particular (e.g. an optimizer that did not converge).
    None,
}

/// One problem found in the input.
#[derive(Debug, Clone, PartialEq)]
pub struct Diagnostic {
    pub severity: Severity,
    pub message: String,
    pub location: Location,
    /// What was expected at the location ("expected a column name").
    pub expected: Option<String>,
    /// A suggestion when one is obvious ("did you mean `neg_emotion`?").
    pub hint: Option<String>,
}

impl Diagnostic {
    pub fn error(message: impl Into<String>, location: Location) -> Self {
        Diagnostic {
            severity: Severity::Error,
            message: message.into(),
            location,
            expected: None,
            hint: None,
        }
    }

    pub fn warning(message: impl Into<String>, location: Location) -> Self {
        Diagnostic {
            severity: Severity::Warning,
            ..Diagnostic::error(message, location)
        }
    }

    pub fn at(message: impl Into<String>, span: Span) -> Self {
        Diagnostic::error(message, Location::Source(span))
    }

    pub fn with_expected(mut self, expected: impl Into<String>) -> Self {
        self.expected = Some(expected.into());
        self
    }

    pub fn with_hint(mut self, hint: impl Into<String>) -> Self {
        self.hint = Some(hint.into());
        self
    }

    pub fn is_error(&self) -> bool {
        self.severity == Severity::Error
    }
}

/// The closest candidate to `name` by edit distance, if it is close enough to be a likely typo.
pub fn did_you_mean<'a>(
    name: &str,
    candidates: impl IntoIterator<Item = &'a str>,
) -> Option<String> {
    let mut best: Option<(f64, &str)> = None;
    for candidate in candidates {
        let score = strsim::jaro_winkler(name, candidate);
        if best.is_none_or(|(s, _)| score > s) {
            best = Some((score, candidate));
        }
    }
    best.filter(|(score, _)| *score >= 0.8)
        .map(|(_, c)| format!("did you mean `{c}`?"))
}

/// A model file's name and text, for rendering source diagnostics.
pub struct SourceFile<'a> {
    pub path: &'a Path,
    pub text: &'a str,
}

/// Render diagnostics as plain text (no colour, so output is stable), one block per diagnostic:
///
/// ```text
/// error: unexpected `)`
///  --> model.tandem:3:12
///   |
/// 3 | y ~ 1 + x )
///   |           ^
///   = expected: `+`, a statement or end of file
///   = hint: ...
/// ```
///
/// Source locations need `source` to show the line; without it only the byte range is given.
/// Columns count characters, not bytes. A span over several lines is underlined to the end of
/// its first line.
///
/// Repeats are capped: a message is shown at its first `SHOWN_PER_MESSAGE` places and at most
/// `SHOWN_IN_ALL` diagnostics are shown; a closing note counts what was left out (an equation
/// with thousands of repeated terms must not print thousands of blocks).
pub fn render(diagnostics: &[Diagnostic], source: Option<&SourceFile>) -> String {
    let mut out = String::new();
    let mut seen: Vec<(Severity, &str, usize)> = Vec::new();
    let (mut shown, mut hidden) = (0, [0usize; 2]);
    for diagnostic in diagnostics {
        let key = (diagnostic.severity, diagnostic.message.as_str());
        let times = match seen.iter_mut().find(|(s, m, _)| (*s, *m) == key) {
            Some(entry) => {
                entry.2 += 1;
                entry.2
            }
            None => {
                seen.push((key.0, key.1, 1));
                1
            }
        };
        if times > SHOWN_PER_MESSAGE || shown >= SHOWN_IN_ALL {
            hidden[usize::from(!diagnostic.is_error())] += 1;
            continue;
        }
        if shown > 0 {
            out.push('\n');
        }
        render_one(&mut out, diagnostic, source);
        shown += 1;
    }
    if hidden != [0, 0] {
        use std::fmt::Write;
        let count = |n: usize, what: &str| match n {
            0 => None,
            1 => Some(format!("1 more {what}")),
            n => Some(format!("{n} more {what}s")),
        };
        let parts: Vec<String> = [count(hidden[0], "error"), count(hidden[1], "warning")]
            .into_iter()
            .flatten()
            .collect();
        let repeated: Vec<String> = seen
            .iter()
            .filter(|(_, _, n)| *n > SHOWN_PER_MESSAGE)
            .map(|(_, m, n)| format!("\"{}\" {n} times", visible(m)))
            .collect();
        let _ = write!(out, "\nnote: {} not shown", parts.join(" and "));
        if !repeated.is_empty() {
            let _ = write!(out, " (in all: {})", repeated.join("; "));
        }
        out.push('\n');
    }
    out
}

/// Places shown of one message (the same severity and text).
const SHOWN_PER_MESSAGE: usize = 3;
/// Diagnostics shown in all.
const SHOWN_IN_ALL: usize = 50;

fn render_one(out: &mut String, diagnostic: &Diagnostic, source: Option<&SourceFile>) {
    use std::fmt::Write;
    let severity = match diagnostic.severity {
        Severity::Error => "error",
        Severity::Warning => "warning",
    };
    let _ = writeln!(out, "{severity}: {}", visible(&diagnostic.message));
    // Notes line up with the snippet's gutter (`  =` after line 9, `   =` after line 99).
    let mut gutter = 1;
    match (&diagnostic.location, source) {
        (Location::Source(span), Some(file)) => gutter = render_snippet(out, *span, file),
        (Location::Source(span), None) => {
            let _ = writeln!(out, " --> model file, bytes {}..{}", span.start, span.end);
        }
        (
            Location::Data {
                path,
                row,
                line,
                column,
            },
            _,
        ) => {
            let _ = write!(out, " --> {}", visible(&path.display().to_string()));
            match (line, row) {
                (Some(line), Some(row)) => {
                    let _ = write!(out, ", line {line} (data row {row})");
                }
                (Some(line), None) => {
                    let _ = write!(out, ", line {line}");
                }
                (None, Some(row)) => {
                    let _ = write!(out, ", data row {row}");
                }
                (None, None) => {}
            }
            if let Some(column) = column {
                let _ = write!(out, ", column `{}`", visible(column));
            }
            out.push('\n');
        }
        (Location::File(path), _) => {
            let _ = writeln!(out, " --> {}", visible(&path.display().to_string()));
        }
        (Location::None, _) => {}
    }
    if let Some(expected) = &diagnostic.expected {
        let _ = writeln!(out, "{:gutter$} = expected: {}", "", visible(expected));
    }
    if let Some(hint) = &diagnostic.hint {
        let _ = writeln!(out, "{:gutter$} = hint: {}", "", visible(hint));
    }
}

/// `text` with every control character but newline and tab written as an escape (`\x00`,
/// `\r`, `\x1B`, `\u{85}`): a NUL or an escape sequence from a damaged data cell, echoed into a
/// message, must not reach the terminal raw.
pub fn visible(text: &str) -> std::borrow::Cow<'_, str> {
    if !text
        .chars()
        .any(|c| c.is_control() && c != '\n' && c != '\t')
    {
        return std::borrow::Cow::Borrowed(text);
    }
    let mut out = String::with_capacity(text.len() + 8);
    for c in text.chars() {
        match c {
            '\n' | '\t' => out.push(c),
            '\r' => out.push_str("\\r"),
            c if c.is_control() && (c as u32) < 0x80 => {
                out.push_str(&format!("\\x{:02X}", c as u32));
            }
            c if c.is_control() => out.push_str(&format!("\\u{{{:X}}}", c as u32)),
            c => out.push(c),
        }
    }
    std::borrow::Cow::Owned(out)
}

/// ` --> path:line:col`, the source line and a caret line under the span.
/// Returns the width of the line-number gutter.
fn render_snippet(out: &mut String, span: Span, file: &SourceFile) -> usize {
    use std::fmt::Write;
    let text = file.text;
    let start = floor_char_boundary(text, span.start);
    let end = floor_char_boundary(text, span.end.max(span.start)).max(start);
    let line_start = text[..start].rfind('\n').map_or(0, |i| i + 1);
    let line_end = text[start..].find('\n').map_or(text.len(), |i| start + i);
    let line_number = text[..start].matches('\n').count() + 1;
    let column = text[line_start..start].chars().count() + 1;
    let _ = writeln!(
        out,
        " --> {}:{line_number}:{column}",
        visible(&file.path.display().to_string())
    );

    let line = text[line_start..line_end].trim_end_matches('\r');
    // A line longer than the window is cut around the span, marked with `…` at the cuts.
    let before = text[line_start..start].chars().count();
    let total = line.chars().count();
    let first = if total <= WINDOW_BEFORE + WINDOW_AFTER {
        0
    } else {
        before.saturating_sub(WINDOW_BEFORE)
    };
    let last = (before + WINDOW_AFTER)
        .max(first + WINDOW_BEFORE + WINDOW_AFTER)
        .min(total);
    let (cut_front, cut_back) = (first > 0, last < total);
    let line: String = line.chars().skip(first).take(last - first).collect();
    let line = line.as_str();
    // Control characters (binary junk) would garble the output; each becomes one visible
    // replacement character so that the caret columns stay right.
    let shown: String = line
        .chars()
        .map(|c| {
            if c.is_control() && c != '\t' {
                '\u{FFFD}'
            } else {
                c
            }
        })
        .collect();
    let mut prefix: String = text[line_start..start]
        .chars()
        .skip(first)
        .map(|c| if c == '\t' { '\t' } else { ' ' })
        .collect();
    if cut_front {
        prefix.insert(0, ' ');
    }
    let underlined = text[start..end.min(line_end)]
        .chars()
        .count()
        .clamp(1, (last - before).max(1));
    let gutter = " ".repeat(line_number.to_string().len());
    let _ = writeln!(out, "{gutter} |");
    let _ = writeln!(
        out,
        "{line_number} | {}{shown}{}",
        if cut_front { "…" } else { "" },
        if cut_back { "…" } else { "" }
    );
    let _ = writeln!(out, "{gutter} | {prefix}{}", "^".repeat(underlined));
    gutter.len()
}

/// Characters of a long source line shown before and after the start of a span.
const WINDOW_BEFORE: usize = 60;
const WINDOW_AFTER: usize = 100;

fn floor_char_boundary(text: &str, index: usize) -> usize {
    let mut index = index.min(text.len());
    while !text.is_char_boundary(index) {
        index -= 1;
    }
    index
}

#[cfg(test)]
mod tests {
    use super::visible;

    #[test]
    fn control_characters_are_escaped_and_the_rest_kept() {
        assert_eq!(visible("plain é\tand\nlines"), "plain é\tand\nlines");
        assert_eq!(visible("25\u{0}8.7\r"), "25\\x008.7\\r");
        assert_eq!(visible("\u{1b}[31m\u{85}"), "\\x1B[31m\\u{85}");
    }
}
