//! Errors and warnings as plain data.
//!
//! Owns the `Diagnostic` value every stage returns when input is wrong: what is wrong, where
//! (a span in a model file, or a row and column of a data file, or just a file), what was
//! expected, and a hint. Stages collect diagnostics instead of stopping at the first. This module
//! must not print: rendering to text happens only at the edge (`render`).

use std::path::{Path, PathBuf};

use crate::syntax::ast::Span;

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
        row: Option<usize>,
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
