//! Lowering the preparation statements (`group`, `order`, `factor`, `let`, `keep`) into the
//! model's `Preparation`: each name resolved (a data column, an earlier `let`, the `vary`
//! constant) and each call bound to its entry of the function catalogue.
//!
//! Owns the resolution a lowered name records and the errors of a name or function that does
//! not resolve (the checker has reported them already when it runs first; lowering a file that
//! was not checked, as tools and tests do, reports them here). It must not check kinds or
//! arities (that is `expressions`) or evaluate anything.

use crate::diagnostics::{did_you_mean, Diagnostic};
use crate::functions::{self, Context, Function};
use crate::model::expression::{print, Argument, ArgumentName, Expression, ExpressionKind, Name};
use crate::model::preparation::{Factor, FactorLevels, Level, Preparation, Step, Variable};
use crate::syntax::ast::{
    Arg, Expr, ExprKind, FactorSpec, Ident, Literal, ModelFile, Span, Statement,
};

use super::names::{LetDecl, Lookup, Scope};
use super::schema::Schema;

/// The preparation plan of `file`, its names resolved against `schema`'s columns, the file's
/// `let`s and its `vary` name; every name or function that does not resolve is reported.
pub fn lower_preparation(
    file: &ModelFile,
    schema: &Schema,
) -> Result<Preparation, Vec<Diagnostic>> {
    let scope = Scope {
        schema,
        lets: let_declarations(file),
        vary: file.statements.iter().find_map(|s| match s {
            Statement::Vary { name, values, .. } => Some((
                name.name.clone(),
                values
                    .iter()
                    .filter_map(|v| match v {
                        Literal::Number { value, .. } => Some(*value),
                        Literal::String(_) => None,
                    })
                    .collect(),
            )),
            _ => None,
        }),
        vary_used: std::cell::Cell::new(false),
    };
    lower_with(file, &scope)
}

/// The position at the end of the file, where every `let` exists.
const END: usize = usize::MAX;

/// Every `let` of the file with the index of its statement.
pub(super) fn let_declarations(file: &ModelFile) -> Vec<LetDecl> {
    file.statements
        .iter()
        .enumerate()
        .filter_map(|(statement, s)| match s {
            Statement::Let { name, .. } => Some(LetDecl {
                name: name.name.clone(),
                span: name.span,
                statement,
            }),
            _ => None,
        })
        .collect()
}

/// The preparation plan of `file`, its names resolved in `scope`.
pub(super) fn lower_with(file: &ModelFile, scope: &Scope) -> Result<Preparation, Vec<Diagnostic>> {
    let mut lowering = Lowering {
        scope,
        position: 0,
        errors: Vec::new(),
    };
    let mut steps = Vec::new();
    for (position, statement) in file.statements.iter().enumerate() {
        lowering.position = position;
        let step = match statement {
            // Read where a call uses them: the column may be a `let` further down.
            Statement::Group { name, .. } => Step::Group(lowering.variable(name, END)),
            Statement::Order { name, .. } => Step::Order(lowering.variable(name, END)),
            Statement::Factor { column, spec, span } => Step::Factor(factor(column, spec, *span)),
            Statement::Let { name, value, span } => Step::Let {
                name: name.name.clone(),
                name_span: name.span,
                value: lower_expression(value, &mut lowering),
                span: *span,
            },
            Statement::Keep { condition, span } => {
                let condition = lower_expression(condition, &mut lowering);
                Step::Keep {
                    text: print(&condition),
                    condition,
                    span: *span,
                }
            }
            _ => continue,
        };
        steps.push(step);
    }
    if lowering.errors.is_empty() {
        Ok(Preparation { steps })
    } else {
        Err(lowering.errors)
    }
}

fn factor(column: &Ident, spec: &FactorSpec, span: Span) -> Factor {
    let level = |l: &crate::syntax::ast::StringLit| Level {
        value: l.value.clone(),
        span: l.span,
    };
    Factor {
        column: column.name.clone(),
        column_span: column.span,
        levels: match spec {
            FactorSpec::Reference(l) => FactorLevels::Reference(level(l)),
            FactorSpec::Levels(ls) => FactorLevels::Listed(ls.iter().map(level).collect()),
        },
        span,
    }
}

struct Lowering<'s, 'a> {
    scope: &'s Scope<'a>,
    /// The statement being lowered: a `let` is visible after its own statement.
    position: usize,
    errors: Vec<Diagnostic>,
}

impl Lowering<'_, '_> {
    fn variable(&mut self, name: &Ident, position: usize) -> Variable {
        Variable {
            name: self.name_at(&name.name, name.span, position),
            span: name.span,
        }
    }

    /// What `name` is at the statement `position`: a name that is none of a column, an earlier
    /// `let` or the `vary` name is reported, and kept as a column.
    fn name_at(&mut self, name: &str, span: Span, position: usize) -> Name {
        match self.scope.lookup(name, position) {
            Lookup::Column(_) => Name::Column(name.to_string()),
            Lookup::Let => Name::Let(name.to_string()),
            Lookup::Vary => Name::Vary(name.to_string()),
            Lookup::Unknown if crate::functions::constant(name).is_some() => {
                Name::Constant(name.to_string())
            }
            Lookup::LaterLet(_) | Lookup::Unknown => {
                self.errors.push(self.unknown_name(name, span, position));
                Name::Column(name.to_string())
            }
        }
    }

    fn unknown_name(&self, name: &str, span: Span, position: usize) -> Diagnostic {
        let scope = self.scope;
        let candidates = scope
            .schema
            .names()
            .chain(
                scope
                    .lets
                    .iter()
                    .filter(|l| l.statement < position)
                    .map(|l| l.name.as_str()),
            )
            .chain(scope.vary.iter().map(|(n, _)| n.as_str()));
        let mut d = Diagnostic::at(
            format!("`{name}` is not a column, an earlier `let` or a `vary` name"),
            span,
        );
        if let Some(hint) = did_you_mean(name, candidates) {
            d = d.with_hint(hint);
        }
        d
    }
}

impl Resolve for Lowering<'_, '_> {
    const CONTEXT: Context = Context::Preparation;

    fn name(&mut self, name: &str, span: Span) -> Name {
        self.name_at(name, span, self.position)
    }

    /// The arguments are lowered (and their errors reported) before the unknown function.
    fn unknown_call(&mut self, function: &Ident, args: &[Arg]) {
        lower_arguments(self, args);
        self.errors.push(unknown_function(function));
    }
}

/// What the two lowerings (`let`/`keep` here, `:=` bodies in `definitions`) do differently:
/// where a name resolves, how a call's arguments lower, what an unknown function says. The
/// walk over the tree is `lower_expression`'s, once.
pub(super) trait Resolve: Sized {
    /// Where the functions are called, for the catalogue.
    const CONTEXT: Context;
    /// What `name` refers to (a name that does not resolve is reported by the resolver).
    fn name(&mut self, name: &str, span: Span) -> Name;
    /// A known function's arguments; each lowered as any expression unless the resolver knows
    /// better.
    fn arguments(&mut self, _function: &Function, args: &[Arg]) -> Vec<Argument> {
        lower_arguments(self, args)
    }
    /// Reports a call of a function the catalogue does not have in this context.
    fn unknown_call(&mut self, function: &Ident, args: &[Arg]);
}

/// `expr` lowered: names resolved by `resolver`, calls bound to the catalogue (an unknown
/// function lowers to `NA`, reported).
pub(super) fn lower_expression<R: Resolve>(expr: &Expr, resolver: &mut R) -> Expression {
    let kind = match &expr.kind {
        ExprKind::Number(v) => ExpressionKind::Number(*v),
        ExprKind::String(s) => ExpressionKind::Text(s.clone()),
        ExprKind::Missing => ExpressionKind::Missing,
        ExprKind::Name(name) => ExpressionKind::Name(resolver.name(name, expr.span)),
        ExprKind::Unary { op, operand } => ExpressionKind::Unary {
            op: *op,
            operand: Box::new(lower_expression(operand, resolver)),
        },
        ExprKind::Binary { op, lhs, rhs } => ExpressionKind::Binary {
            op: *op,
            lhs: Box::new(lower_expression(lhs, resolver)),
            rhs: Box::new(lower_expression(rhs, resolver)),
        },
        ExprKind::Call { function, args } => match functions::find(&function.name, R::CONTEXT) {
            Some(entry) => ExpressionKind::Call {
                function: entry.id,
                args: resolver.arguments(entry, args),
            },
            None => {
                resolver.unknown_call(function, args);
                ExpressionKind::Missing
            }
        },
    };
    Expression {
        kind,
        span: expr.span,
    }
}

/// Each argument's value lowered as any expression, its name kept.
pub(super) fn lower_arguments<R: Resolve>(resolver: &mut R, args: &[Arg]) -> Vec<Argument> {
    args.iter()
        .map(|arg| Argument {
            name: argument_name(arg),
            value: lower_expression(&arg.value, resolver),
        })
        .collect()
}

/// The name of a named argument, as written.
pub(super) fn argument_name(arg: &Arg) -> Option<ArgumentName> {
    arg.name.as_ref().map(|n| ArgumentName {
        text: n.name.clone(),
        span: n.span,
    })
}

/// The error for a name called as a function that `let` and `keep` do not know.
fn unknown_function(function: &Ident) -> Diagnostic {
    let functions = functions::names(Context::Preparation);
    let mut d = Diagnostic::at(
        format!("`{}` is not a function of `let` and `keep`", function.name),
        function.span,
    )
    .with_expected(format!("one of: {}", functions.join(", ")));
    if let Some(hint) = did_you_mean(&function.name, functions.iter().copied()) {
        d = d.with_hint(hint);
    }
    d
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::syntax::format_expr;

    fn let_values(source: &str) -> (Vec<Expr>, Preparation) {
        let file = crate::syntax::parse_bytes(source.as_bytes()).unwrap();
        let values = file
            .statements
            .iter()
            .filter_map(|s| match s {
                Statement::Let { value, .. } => Some(value.clone()),
                _ => None,
            })
            .collect();
        let schema = Schema::new(
            "t.csv",
            vec![("x".into(), super::super::ColumnKind::Numeric)],
        );
        (values, lower_preparation(&file, &schema).unwrap())
    }

    /// The lowered expression prints as the syntax tree does: one printer for both.
    #[test]
    fn a_lowered_expression_prints_as_written() {
        let (values, plan) = let_values(
            "let a = -(x + 1)^2 * 3 - -x / (x - 1)\n\
             let b = !(x > 1 | x < -1) & is_missing(x) == 0\n\
             let c = log(abs(x) + 1) - 2^-1 + -(-x)\n\
             let d = ifelse(x >= 1e-7, `a`, NA) != 1.5e20\n\
             let e = (x - 1) - (x - (a - b)) / (c * (d / 2))\n",
        );
        let lowered: Vec<String> = plan
            .steps
            .iter()
            .filter_map(|s| match s {
                Step::Let { value, .. } => Some(print(value)),
                _ => None,
            })
            .collect();
        let written: Vec<String> = values.iter().map(format_expr).collect();
        assert_eq!(lowered, written);
        assert_eq!(written[0], "-(x + 1)^2 * 3 - -x / (x - 1)");
    }

    /// Names are resolved where they stand, and calls bound to the catalogue.
    #[test]
    fn names_and_calls_are_resolved() {
        let file =
            crate::syntax::parse_bytes(b"vary k = 1, 2\nlet a = lag(x, k)\nkeep a > 0\n").unwrap();
        let schema = Schema::new(
            "t.csv",
            vec![("x".into(), super::super::ColumnKind::Numeric)],
        );
        let plan = lower_preparation(&file, &schema).unwrap();
        let Step::Let { value, .. } = &plan.steps[0] else {
            panic!("{plan:?}")
        };
        let ExpressionKind::Call { function, args } = &value.kind else {
            panic!("{value:?}")
        };
        assert_eq!(*function, crate::functions::Builtin::Lag);
        assert_eq!(
            args[0].value.kind,
            ExpressionKind::Name(Name::Column("x".into()))
        );
        assert_eq!(
            args[1].value.kind,
            ExpressionKind::Name(Name::Vary("k".into()))
        );
        let Step::Keep {
            condition, text, ..
        } = &plan.steps[1]
        else {
            panic!("{plan:?}")
        };
        assert_eq!(text, "a > 0");
        let ExpressionKind::Binary { lhs, .. } = &condition.kind else {
            panic!()
        };
        assert_eq!(lhs.kind, ExpressionKind::Name(Name::Let("a".into())));
    }
}
