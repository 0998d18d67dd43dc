//! Expressions of `let` and `keep`: names, operators, and the preparation functions with their
//! arities (the functions and their parameters are `crate::functions`'). Owns the kind of each
//! expression (number or text) as far as it can be told without data. It must not evaluate
//! anything (that is `prepare`).

use crate::diagnostics::{did_you_mean, Diagnostic};
use crate::functions::{self, Builtin, Context, Function};
use crate::syntax::ast::{Arg, BinaryOp, Expr, ExprKind, Ident, Span, UnaryOp};

use super::names::Lookup;
use super::schema::ColumnKind;
use super::Checker;

/// What an expression yields, as far as names and literals tell.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub(crate) enum ValueKind {
    Number,
    Text,
    /// `NA`: fits anywhere.
    Missing,
    /// Already reported as an error; fits anywhere so the error is not repeated.
    Unknown,
}

impl Checker<'_> {
    /// Checks an expression of the statement at `position` and tells what it yields.
    pub(crate) fn check_preparation_expr(&mut self, expr: &Expr, position: usize) -> ValueKind {
        match &expr.kind {
            ExprKind::Number(_) => ValueKind::Number,
            ExprKind::String(_) => ValueKind::Text,
            ExprKind::Missing => ValueKind::Missing,
            ExprKind::Name(name) => match self.scope.lookup(name, position) {
                Lookup::Column(ColumnKind::Numeric) | Lookup::Let | Lookup::Vary => {
                    ValueKind::Number
                }
                Lookup::Column(ColumnKind::Text) => ValueKind::Text,
                // A named constant (`pi`) only where no column or earlier `let` has its name.
                Lookup::Unknown if functions::constant(name).is_some() => ValueKind::Number,
                Lookup::LaterLet(_) | Lookup::Unknown => {
                    let d = self.scope.unknown_variable(name, expr.span, position, &[]);
                    self.error(d);
                    ValueKind::Unknown
                }
            },
            ExprKind::Unary { op, operand } => {
                let kind = self.check_preparation_expr(operand, position);
                let what = match op {
                    UnaryOp::Neg => "`-`",
                    UnaryOp::Not => "`!`",
                };
                self.expect_number(kind, operand, what);
                ValueKind::Number
            }
            ExprKind::Binary { op, lhs, rhs } => {
                let left = self.check_preparation_expr(lhs, position);
                let right = self.check_preparation_expr(rhs, position);
                match op {
                    BinaryOp::Eq | BinaryOp::Ne => {
                        let mixed = matches!(
                            (left, right),
                            (ValueKind::Text, ValueKind::Number)
                                | (ValueKind::Number, ValueKind::Text)
                        );
                        if mixed {
                            self.error(
                                Diagnostic::at(
                                    format!("`{}` compares text with a number", op.symbol()),
                                    expr.span,
                                )
                                .with_hint(
                                    "compare a text column with one of its levels in quotes, \
                                     e.g. Sex == \"Female\"",
                                ),
                            );
                        }
                    }
                    _ => {
                        let what = format!("`{}`", op.symbol());
                        self.expect_number(left, lhs, &what);
                        self.expect_number(right, rhs, &what);
                    }
                }
                ValueKind::Number
            }
            ExprKind::Call { function, args } => {
                self.check_preparation_call(function, args, expr.span, position)
            }
        }
    }

    /// Reports text where a number is needed (`what` is the operator or function).
    fn expect_number(&mut self, kind: ValueKind, expr: &Expr, what: &str) {
        if kind != ValueKind::Text {
            return;
        }
        let diagnostic = match &expr.kind {
            ExprKind::Name(name) => Diagnostic::at(
                format!("`{name}` is a text column; {what} needs numbers"),
                expr.span,
            )
            .with_hint(format!(
                "compare it with one of its levels to get 0/1, e.g. {name} == \"...\""
            )),
            _ => Diagnostic::at(format!("text where {what} needs a number"), expr.span),
        };
        self.error(diagnostic.with_expected("a number"));
    }

    fn check_preparation_call(
        &mut self,
        function: &Ident,
        args: &[Arg],
        span: Span,
        position: usize,
    ) -> ValueKind {
        let name = function.name.as_str();
        let Some(entry) = functions::find(name, Context::Preparation) else {
            let functions = functions::names(Context::Preparation);
            let mut d = Diagnostic::at(format!("unknown function `{name}`"), function.span)
                .with_expected(format!("one of {}", functions.join(", ")));
            if let Some(hint) = did_you_mean(name, functions.iter().copied()) {
                d = d.with_hint(hint);
            }
            self.error(d);
            for arg in args {
                self.check_preparation_expr(&arg.value, position);
            }
            return ValueKind::Unknown;
        };
        for arg in args {
            if let Some(arg_name) = &arg.name {
                self.error(
                    Diagnostic::at(
                        format!("`{name}` takes no named argument `{}`", arg_name.name),
                        arg_name.span,
                    )
                    .with_hint(format!("write the value alone: {name}(..., value)")),
                );
            }
        }
        self.check_preparation_arity(entry, args, span);
        match entry.id {
            Builtin::Complete => {
                for arg in args {
                    self.expect_variable_name(&arg.value, name, position);
                }
            }
            Builtin::IsMissing => {
                for arg in args {
                    self.check_preparation_expr(&arg.value, position);
                }
            }
            Builtin::Within | Builtin::Between => {
                self.check_group_mean_args(name, args, span, position)
            }
            Builtin::Lag | Builtin::Lead | Builtin::Diff => {
                self.check_shift_args(name, args, span, position)
            }
            _ => {
                for arg in args {
                    let kind = self.check_preparation_expr(&arg.value, position);
                    self.expect_number(kind, &arg.value, &format!("`{name}`"));
                }
            }
        }
        ValueKind::Number
    }

    /// The number of arguments a preparation function takes (the catalogue's parameters).
    fn check_preparation_arity(&mut self, entry: &Function, args: &[Arg], span: Span) {
        let name = entry.name;
        let min = entry.required;
        let max = if entry.variadic {
            usize::MAX
        } else {
            entry.parameters.len()
        };
        if args.len() < min || args.len() > max {
            let usage = usage(entry);
            let count = match (min, max) {
                (1, 1) => "1 argument".to_string(),
                (3, 3) => "3 arguments".to_string(),
                (1, usize::MAX) => "at least 1 argument".to_string(),
                _ => format!("{min} or {max} arguments"),
            };
            self.error(
                Diagnostic::at(format!("`{name}` takes {count}, not {}", args.len()), span)
                    .with_expected(format!("{name}{usage}")),
            );
        }
    }

    /// `within`/`between`: a number, and a grouping given or from the `group` statement.
    fn check_group_mean_args(&mut self, name: &str, args: &[Arg], span: Span, position: usize) {
        if let Some(x) = args.first() {
            let kind = self.check_preparation_expr(&x.value, position);
            self.expect_number(kind, &x.value, &format!("`{name}`"));
        }
        if let Some(group) = args.get(1) {
            self.expect_variable_name(&group.value, name, position);
        } else if !self.has_group {
            self.error(
                Diagnostic::at(format!("`{name}` needs a grouping"), span).with_hint(format!(
                    "add a `group COLUMN` statement, or give the group: {name}(x, g)"
                )),
            );
        }
    }

    /// `lag`/`lead`/`diff`: a number, a distance, and a `group` statement.
    fn check_shift_args(&mut self, name: &str, args: &[Arg], span: Span, position: usize) {
        if let Some(x) = args.first() {
            let kind = self.check_preparation_expr(&x.value, position);
            self.expect_number(kind, &x.value, &format!("`{name}`"));
        }
        if let Some(k) = args.get(1) {
            self.check_lag_distance(&k.value, name);
        }
        if !self.has_group {
            self.error(
                Diagnostic::at(format!("`{name}` needs a `group` statement"), span).with_hint(
                    "a lag never crosses a unit boundary: add `group COLUMN` \
                     (and `order COLUMN` for the order within a unit)",
                ),
            );
        }
    }

    /// An argument that must name a column or an earlier `let` (a group, a `complete` column).
    fn expect_variable_name(&mut self, expr: &Expr, function: &str, position: usize) {
        match &expr.kind {
            ExprKind::Name(name) => {
                if !self.scope.is_frame_variable(name, position) {
                    let d = self.scope.unknown_variable(name, expr.span, position, &[]);
                    self.error(d);
                }
            }
            _ => self.error(
                Diagnostic::at(
                    format!("`{function}` needs a column name here, not an expression"),
                    expr.span,
                )
                .with_expected("a column or `let` name")
                .with_hint("compute it with a `let` first and use its name"),
            ),
        }
    }

    /// `k` of lag/lead/diff: a positive whole number, or the `vary` name when all its values are.
    fn check_lag_distance(&mut self, expr: &Expr, function: &str) {
        let whole = |v: f64| v >= 1.0 && v.fract() == 0.0 && v <= u32::MAX as f64;
        match &expr.kind {
            ExprKind::Number(v) if whole(*v) => {}
            ExprKind::Name(name) if self.scope.is_vary(name) => {
                let values = self.scope.vary.as_ref().map(|(_, v)| v.clone());
                if let Some(bad) = values.into_iter().flatten().find(|v| !whole(*v)) {
                    self.error(
                        Diagnostic::at(
                            format!(
                                "`{function}` distance `{name}` takes the value {bad}, \
                                 which is not a positive whole number"
                            ),
                            expr.span,
                        )
                        .with_expected("positive whole numbers in `vary`"),
                    );
                }
            }
            _ => self.error(
                Diagnostic::at(
                    format!("the distance of `{function}` must be a positive whole number"),
                    expr.span,
                )
                .with_expected("a number such as 1, or the `vary` name"),
            ),
        }
    }
}

/// How a preparation function is called, for messages: `(x [, group])`, `(x, ...)`.
fn usage(entry: &Function) -> String {
    let (required, optional) = entry.parameters.split_at(entry.required);
    let mut text = required.join(", ");
    for parameter in optional {
        text.push_str(&format!(" [, {parameter}]"));
    }
    if entry.variadic {
        text.push_str(", ...");
    }
    format!("({text})")
}
