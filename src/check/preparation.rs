//! The preparation statements in file order: `group`, `order`, `factor`, `let`, `keep`. Owns
//! what each may name (columns and earlier `let`s), the rule that a `let` introduces a new
//! name, and that `factor` applies to text columns. It must not check the expressions' insides
//! (that is `expressions`) or evaluate anything.

use std::collections::BTreeSet;

use crate::diagnostics::Diagnostic;
use crate::syntax::ast::{FactorSpec, Ident, ModelFile, Statement};

use super::expressions::ValueKind;
use super::names::Lookup;
use super::Checker;

impl Checker<'_> {
    pub(crate) fn check_preparation(&mut self, file: &ModelFile) {
        let mut factored: Vec<&Ident> = Vec::new();
        for (position, statement) in file.statements.iter().enumerate() {
            match statement {
                Statement::Group { name, .. } | Statement::Order { name, .. } => {
                    self.expect_frame_variable(name, position);
                }
                Statement::Factor { column, spec, .. } => {
                    if factored.iter().any(|c| c.name == column.name) {
                        self.error(
                            Diagnostic::at(
                                format!("a second `factor` statement for `{}`", column.name),
                                column.span,
                            )
                            .with_hint(
                                "the first one stays in effect; say the levels in one statement",
                            ),
                        );
                    } else {
                        factored.push(column);
                    }
                    self.check_factor(column, spec, position);
                }
                Statement::Let { name, value, .. } => {
                    self.check_let_name(name, position);
                    let kind = self.check_preparation_expr(value, position);
                    if kind == ValueKind::Text {
                        self.error(
                            Diagnostic::at(
                                format!("`let {}` would be text", name.name),
                                value.span,
                            )
                            .with_expected("a numeric expression")
                            .with_hint("`let` makes numbers; compare text with a level to get 0/1"),
                        );
                    }
                }
                Statement::Keep { condition, .. } => {
                    let kind = self.check_preparation_expr(condition, position);
                    if kind == ValueKind::Text {
                        self.error(
                            Diagnostic::at("`keep` needs a condition, not text", condition.span)
                                .with_expected("a condition such as x > 0 or complete(x, y)"),
                        );
                    }
                }
                _ => {}
            }
        }
    }

    fn expect_frame_variable(&mut self, name: &Ident, position: usize) {
        if !self.scope.is_frame_variable(&name.name, position) {
            let d = self
                .scope
                .unknown_variable(&name.name, name.span, position, &[]);
            self.error(d);
        }
    }

    fn check_let_name(&mut self, name: &Ident, position: usize) {
        let message = match self.scope.lookup(&name.name, position) {
            Lookup::Column(_) => Some(format!(
                "`let {}`: `{}` is already a column of {}",
                name.name, name.name, self.scope.schema.file_name
            )),
            Lookup::Let => Some(format!(
                "`let {}`: `{}` is already defined by an earlier `let`",
                name.name, name.name
            )),
            Lookup::Vary => Some(format!(
                "`let {}`: `{}` is the `vary` name",
                name.name, name.name
            )),
            Lookup::LaterLet(_) | Lookup::Unknown => None,
        };
        if let Some(message) = message {
            self.error(Diagnostic::at(message, name.span).with_hint(format!(
                "a `let` makes a new column; pick another name, e.g. `{}_2`",
                name.name
            )));
        }
    }

    fn check_factor(&mut self, column: &Ident, spec: &FactorSpec, position: usize) {
        match self.scope.lookup(&column.name, position) {
            // A numeric data column is made categorical (check_with gives it the text kind).
            Lookup::Column(_) => {}
            Lookup::Let => {
                self.error(
                    Diagnostic::at(
                        format!(
                            "`factor` applies to data columns; `{}` is a `let`",
                            column.name
                        ),
                        column.span,
                    )
                    .with_hint(
                        "a `let` computes numbers; to group by its values, compute the column \
                         in the data, or use `factor` on the data column it is made from",
                    ),
                );
            }
            Lookup::LaterLet(_) | Lookup::Vary | Lookup::Unknown => {
                let d = self
                    .scope
                    .unknown_variable(&column.name, column.span, position, &[]);
                self.error(d);
            }
        }
        if let FactorSpec::Levels(levels) = spec {
            let mut seen = BTreeSet::new();
            for level in levels {
                if !seen.insert(level.value.as_str()) {
                    self.error(
                        Diagnostic::at(
                            format!("level \"{}\" is listed twice", level.value),
                            level.span,
                        )
                        .with_hint("list each level once, the reference first"),
                    );
                }
            }
        }
    }
}
