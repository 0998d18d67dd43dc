//! What a bare name in a model file can refer to, and the "no column `x`" diagnostic with its
//! did-you-mean. Owns the scope of data columns, `let`s (with their position in the file, since a
//! `let` exists only after its statement) and the `vary` name. It must not decide whether a name
//! is allowed where it appears: callers say which kinds of names they accept.

use crate::diagnostics::{did_you_mean, Diagnostic};
use crate::syntax::ast::Span;

use super::schema::{ColumnKind, Schema};

/// A `let` as declared: its name, where, and the index of its statement.
#[derive(Debug, Clone)]
pub(crate) struct LetDecl {
    pub name: String,
    pub span: Span,
    pub statement: usize,
}

/// What a name refers to among variables (the analysis frame's columns and `vary`).
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub(crate) enum Lookup {
    Column(ColumnKind),
    /// A `let` defined before the position asked about (always numeric).
    Let,
    /// A `let` that exists only further down the file.
    LaterLet(Span),
    Vary,
    Unknown,
}

/// The names a model file's variables resolve against.
pub(crate) struct Scope<'a> {
    pub schema: &'a Schema,
    pub lets: Vec<LetDecl>,
    /// The `vary` statement's name and numeric values.
    pub vary: Option<(String, Vec<f64>)>,
    /// Whether anything resolved a name to `vary` (a `vary` nothing uses fits one model over).
    pub vary_used: std::cell::Cell<bool>,
}

impl Scope<'_> {
    /// Resolves `name` as seen by statement number `position` (`usize::MAX`: the end of the
    /// file, where every `let` exists).
    pub fn lookup(&self, name: &str, position: usize) -> Lookup {
        if let Some(kind) = self.schema.kind(name) {
            return Lookup::Column(kind);
        }
        // The first declaration wins; a second one is itself an error reported at the `let`.
        if let Some(decl) = self.lets.iter().find(|l| l.name == name) {
            return if decl.statement < position {
                Lookup::Let
            } else {
                Lookup::LaterLet(decl.span)
            };
        }
        if self.is_vary(name) {
            return Lookup::Vary;
        }
        Lookup::Unknown
    }

    /// Whether `name` is the `vary` name (and so used).
    pub fn is_vary(&self, name: &str) -> bool {
        let vary = self.vary.as_ref().is_some_and(|(v, _)| v == name);
        if vary {
            self.vary_used.set(true);
        }
        vary
    }

    /// A column or a `let` (the analysis frame's columns), as seen from `position`.
    pub fn is_frame_variable(&self, name: &str, position: usize) -> bool {
        matches!(self.lookup(name, position), Lookup::Column(_) | Lookup::Let)
    }

    /// Candidates for a did-you-mean over variables: columns and the `let`s visible at
    /// `position`.
    fn variable_candidates(&self, position: usize) -> Vec<&str> {
        self.schema
            .names()
            .chain(
                self.lets
                    .iter()
                    .filter(|l| l.statement < position)
                    .map(|l| l.name.as_str()),
            )
            .collect()
    }

    /// The diagnostic for a name that is not a column or `let` where one is needed:
    /// "no column `neg_emo` in ot_sessions.csv", with a did-you-mean over columns, the visible
    /// `let`s and `extra` candidates (labels, where they are allowed too).
    pub fn unknown_variable(
        &self,
        name: &str,
        span: Span,
        position: usize,
        extra: &[&str],
    ) -> Diagnostic {
        if let Lookup::LaterLet(_) = self.lookup(name, position) {
            return Diagnostic::at(
                format!("`{name}` is used before the `let` that defines it"),
                span,
            )
            .with_hint(format!(
                "`let` statements run in file order; move `let {name} = ...` above this line"
            ));
        }
        let mut diagnostic = Diagnostic::at(
            format!("no column `{name}` in {}", self.schema.file_name),
            span,
        );
        let mut candidates = self.variable_candidates(position);
        candidates.extend_from_slice(extra);
        if let Some(hint) = did_you_mean(name, candidates) {
            diagnostic = diagnostic.with_hint(hint);
        }
        diagnostic
    }
}
