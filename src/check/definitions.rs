//! Defined quantities (`name := expr`): what their names may refer to (coefficient labels,
//! earlier definitions, the `vary` name) and the functions they may call, with `var`/`sd`/
//! `cov`/`cor` taking labels of random effects. Owns those rules; it must not evaluate anything.

use std::collections::{BTreeMap, BTreeSet};

use crate::diagnostics::{did_you_mean, Diagnostic};
use crate::model::{Coefficient, Definition, EquationSpec, RandomTermSpec};
use crate::syntax::ast::{Arg, Expr, ExprKind, Ident, ModelFile, Span, Statement, UnaryOp};

use super::Checker;

/// The functions a definition may call.
pub(crate) const DEFINITION_FUNCTIONS: &[&str] =
    &["exp", "log", "sqrt", "abs", "var", "sd", "cov", "cor"];

/// The names a definition at one point of the file can use.
struct DefinitionScope {
    labels: BTreeSet<String>,
    /// Label → the random terms (indices into `ModelSpec::random`) with an effect it names.
    random_labels: BTreeMap<String, BTreeSet<usize>>,
    earlier: Vec<String>,
}

impl Checker<'_> {
    pub(crate) fn check_definitions(
        &mut self,
        file: &ModelFile,
        equations: &[EquationSpec],
        random: &[RandomTermSpec],
    ) -> Vec<Definition> {
        let mut labels = BTreeSet::new();
        for equation in equations {
            let coefficients = equation
                .intercept
                .iter()
                .chain(equation.terms.iter().map(|t| &t.coefficient));
            for coefficient in coefficients {
                if let Coefficient::Free { label: Some(label) } = coefficient {
                    labels.insert(label.clone());
                }
            }
        }
        let mut random_labels: BTreeMap<String, BTreeSet<usize>> = BTreeMap::new();
        for (index, term) in random.iter().enumerate() {
            for effect in &term.effects {
                if let Some(label) = &effect.label {
                    random_labels
                        .entry(label.clone())
                        .or_default()
                        .insert(index);
                }
            }
        }
        let mut scope = DefinitionScope {
            labels,
            random_labels,
            earlier: Vec::new(),
        };
        let mut definitions = Vec::new();
        for statement in &file.statements {
            let Statement::Define { name, value, span } = statement else {
                continue;
            };
            self.check_definition_name(name, &scope);
            self.check_definition_expr(value, &scope);
            scope.earlier.push(name.name.clone());
            definitions.push(Definition {
                name: name.name.clone(),
                value: value.clone(),
                span: *span,
            });
        }
        definitions
    }

    fn check_definition_name(&mut self, name: &Ident, scope: &DefinitionScope) {
        let clash = if scope.earlier.contains(&name.name) {
            Some("an earlier definition")
        } else if self
            .scope
            .vary
            .as_ref()
            .is_some_and(|(v, _)| *v == name.name)
        {
            Some("the `vary` name")
        } else {
            None
        };
        // A label with this name is reported at the label (equations check it).
        if let Some(what) = clash {
            self.error(
                Diagnostic::at(format!("`{}` is already {what}", name.name), name.span)
                    .with_hint("give the defined quantity a new name"),
            );
        }
    }

    fn check_definition_expr(&mut self, expr: &Expr, scope: &DefinitionScope) {
        match &expr.kind {
            ExprKind::Number(_) => {}
            ExprKind::String(_) | ExprKind::Missing => self.error(
                Diagnostic::at("a definition computes with numbers only", expr.span)
                    .with_expected("labels, numbers and + - * / ^"),
            ),
            ExprKind::Name(name) => self.check_definition_name_use(name, expr.span, scope),
            ExprKind::Unary { op, operand } => {
                if *op == UnaryOp::Not {
                    self.error(Diagnostic::at(
                        "`!` has no place in a definition",
                        expr.span,
                    ));
                }
                self.check_definition_expr(operand, scope);
            }
            ExprKind::Binary { op, lhs, rhs } => {
                use crate::syntax::ast::BinaryOp::*;
                if !matches!(op, Add | Sub | Mul | Div | Pow) {
                    self.error(
                        Diagnostic::at(
                            format!("`{}` has no place in a definition", op.symbol()),
                            expr.span,
                        )
                        .with_expected("+ - * / ^"),
                    );
                }
                self.check_definition_expr(lhs, scope);
                self.check_definition_expr(rhs, scope);
            }
            ExprKind::Call { function, args } => {
                self.check_definition_call(function, args, expr.span, scope)
            }
        }
    }

    fn check_definition_name_use(&mut self, name: &str, span: Span, scope: &DefinitionScope) {
        let known = scope.labels.contains(name)
            || scope.earlier.iter().any(|d| d == name)
            || self.scope.vary.as_ref().is_some_and(|(v, _)| v == name);
        if known {
            return;
        }
        let mut d = Diagnostic::at(format!("no label or definition `{name}`"), span)
            .with_expected("a coefficient label, an earlier definition or the `vary` name");
        let candidates = scope
            .labels
            .iter()
            .chain(scope.earlier.iter())
            .map(String::as_str);
        if let Some(hint) = did_you_mean(name, candidates) {
            d = d.with_hint(hint);
        } else if self.scope.is_frame_variable(name, usize::MAX) {
            d = d.with_hint(format!(
                "`{name}` is a column; label its coefficient (`a*{name}`) and use the label"
            ));
        } else if self.definition_names_later(name) {
            d = d.with_hint(format!(
                "`{name}` is defined further down; move its definition up"
            ));
        }
        self.error(d);
    }

    fn definition_names_later(&self, name: &str) -> bool {
        self.definition_names.iter().any(|(d, _)| d == name)
    }

    fn check_definition_call(
        &mut self,
        function: &Ident,
        args: &[Arg],
        span: Span,
        scope: &DefinitionScope,
    ) {
        let name = function.name.as_str();
        for arg in args {
            if let Some(arg_name) = &arg.name {
                self.error(Diagnostic::at(
                    format!("`{name}` takes no named argument `{}`", arg_name.name),
                    arg_name.span,
                ));
            }
        }
        let arity = match name {
            "exp" | "log" | "sqrt" | "abs" | "var" | "sd" => 1,
            "cov" | "cor" => 2,
            _ => {
                let mut d = Diagnostic::at(format!("unknown function `{name}`"), function.span)
                    .with_expected(format!("one of {}", DEFINITION_FUNCTIONS.join(", ")));
                if let Some(hint) = did_you_mean(name, DEFINITION_FUNCTIONS.iter().copied()) {
                    d = d.with_hint(hint);
                }
                self.error(d);
                return;
            }
        };
        if args.len() != arity {
            let plural = if arity == 1 { "" } else { "s" };
            self.error(Diagnostic::at(
                format!(
                    "`{name}` takes {arity} argument{plural}, not {}",
                    args.len()
                ),
                span,
            ));
            return;
        }
        if matches!(name, "exp" | "log" | "sqrt" | "abs") {
            self.check_definition_expr(&args[0].value, scope);
            return;
        }
        let mut terms = Vec::new();
        for arg in args {
            if let Some(term) = self.random_label_arg(&arg.value, name, scope) {
                terms.push(term);
            }
        }
        if let [first, second] = terms.as_slice() {
            if first.is_disjoint(second) {
                self.error(
                    Diagnostic::at(
                        format!(
                            "the random parts in `{name}` are in different random terms, so the \
                             model makes their covariance zero"
                        ),
                        span,
                    )
                    .with_hint(
                        "random effects are correlated only within one grouping's block \
                         (written with `|`, not `||`)",
                    ),
                );
            }
        }
    }

    /// An argument of var/sd/cov/cor: a label with a random part; gives its terms.
    fn random_label_arg(
        &mut self,
        expr: &Expr,
        function: &str,
        scope: &DefinitionScope,
    ) -> Option<BTreeSet<usize>> {
        let ExprKind::Name(label) = &expr.kind else {
            self.error(
                Diagnostic::at(
                    format!("`{function}` takes labels, not expressions"),
                    expr.span,
                )
                .with_expected("the label of a coefficient with a random part"),
            );
            return None;
        };
        if let Some(terms) = scope.random_labels.get(label) {
            return Some(terms.clone());
        }
        let mut d = if scope.labels.contains(label) {
            Diagnostic::at(
                format!("`{label}` labels a coefficient without a random part"),
                expr.span,
            )
            .with_hint(format!(
                "`{function}` needs a random effect: add `{label}` to a random term, e.g. \
                 `(1 + {label} | group)`"
            ))
        } else if self.scope.is_frame_variable(label, usize::MAX) {
            Diagnostic::at(format!("`{label}` is a column, not a label"), expr.span).with_hint(
                format!(
                    "label the coefficient (`s*{label}`), give it a random part \
                     (`(1 + s | group)`) and write `{function}(s)`"
                ),
            )
        } else {
            Diagnostic::at(format!("no random effect is labelled `{label}`"), expr.span)
        };
        d = d.with_expected("the label of a coefficient with a random part");
        if d.hint.is_none() {
            if let Some(hint) = did_you_mean(label, scope.random_labels.keys().map(String::as_str))
            {
                d = d.with_hint(hint);
            }
        }
        self.error(d);
        None
    }
}
