//! AST → canonical source text.
//!
//! Owns the one canonical way to write a `ModelFile`: one statement per line, single spaces
//! around binary operators, parentheses in expressions exactly where precedence needs them.
//! Parsing the output gives the same AST (spans aside); that round trip is what this module
//! promises. It does not keep comments or the user's layout (the AST has neither).

use crate::model::expression::{number, print, print_arguments, string_literal, Printable, View};
use crate::syntax::ast::*;

/// The canonical text of a model file.
pub fn format(file: &ModelFile) -> String {
    let mut out = String::new();
    for statement in &file.statements {
        out.push_str(&format_statement(statement));
        out.push('\n');
    }
    out
}

/// The canonical text of one statement (no trailing newline).
pub fn format_statement(statement: &Statement) -> String {
    match statement {
        Statement::Data { path, missing, .. } => {
            let mut out = format!("data {}", string_literal(&path.value));
            if !missing.is_empty() {
                let codes: Vec<String> = missing.iter().map(|c| string_literal(&c.value)).collect();
                out.push_str(&format!(" missing {}", codes.join(", ")));
            }
            out
        }
        Statement::Group { name, .. } => format!("group {}", source_name(&name.name)),
        Statement::Order { name, .. } => format!("order {}", source_name(&name.name)),
        Statement::Factor { column, spec, .. } => format_factor(column, spec),
        Statement::Let { name, value, .. } => {
            format!("let {} = {}", source_name(&name.name), format_expr(value))
        }
        Statement::Keep { condition, .. } => format!("keep {}", format_expr(condition)),
        Statement::Equation(equation) => format_equation(equation),
        Statement::Residual(residual) => format_residual(residual),
        Statement::Define { name, value, .. } => {
            format!("{} := {}", source_name(&name.name), format_expr(value))
        }
        Statement::Family(family) => format_family(family),
        Statement::Estimate {
            method, options, ..
        } => {
            let mut text = String::from(match method {
                Method::Ml => "estimate ml",
                Method::Reml => "estimate reml",
            });
            if !options.is_empty() {
                let options: Vec<String> = options
                    .iter()
                    .map(|o| format!("{} = {}", source_name(&o.name.name), number(o.value)))
                    .collect();
                text.push_str(&format!("({})", options.join(", ")));
            }
            text
        }
        Statement::Interval(interval) => {
            if interval.args.is_empty() {
                format!("interval {}", interval.method.name)
            } else {
                format!(
                    "interval {}({})",
                    interval.method.name,
                    format_args(&interval.args)
                )
            }
        }
        Statement::Vary { name, values, .. } => format!(
            "vary {} = {}",
            source_name(&name.name),
            values
                .iter()
                .map(|v| match v {
                    Literal::Number { value, .. } => number(*value),
                    Literal::String(s) => string_literal(&s.value),
                })
                .collect::<Vec<_>>()
                .join(", ")
        ),
    }
}

fn format_factor(column: &Ident, spec: &FactorSpec) -> String {
    match spec {
        FactorSpec::Reference(level) => format!(
            "factor {} reference {}",
            source_name(&column.name),
            string_literal(&level.value)
        ),
        FactorSpec::Levels(levels) => format!(
            "factor {} levels {}",
            source_name(&column.name),
            levels
                .iter()
                .map(|l| string_literal(&l.value))
                .collect::<Vec<_>>()
                .join(", ")
        ),
    }
}

fn format_residual(residual: &ResidualSpec) -> String {
    let mut text = String::from("residual");
    if let Some(equation) = &residual.equation {
        text.push(' ');
        text.push_str(&source_name(&equation.name));
    }
    if let Some(by) = &residual.by {
        text.push_str(" by ");
        text.push_str(&source_name(&by.name));
    }
    if let Some(unit) = &residual.correlated_within {
        text.push_str(" correlated within ");
        text.push_str(&source_name(&unit.name));
    }
    if let Some(series) = &residual.ar1_within {
        text.push_str(" ar1 within ");
        text.push_str(&source_name(&series.name));
    }
    text
}

fn format_family(family: &FamilyStatement) -> String {
    let mut text = String::from("family ");
    if let Some(equation) = &family.equation {
        text.push_str(&source_name(&equation.name));
        text.push(' ');
    }
    text.push_str(&source_name(&family.family.name));
    if !family.options.is_empty() {
        let options: Vec<String> = family
            .options
            .iter()
            .map(|o| {
                format!(
                    "{} = {}",
                    source_name(&o.name.name),
                    source_name(&o.value.name)
                )
            })
            .collect();
        text.push_str(&format!("({})", options.join(", ")));
    }
    text
}

fn format_equation(equation: &Equation) -> String {
    let terms: Vec<String> = equation.terms.iter().map(format_term).collect();
    format!(
        "{} ~ {}",
        source_name(&equation.lhs.name),
        terms.join(" + ")
    )
}

fn format_term(term: &FormulaTerm) -> String {
    match term {
        FormulaTerm::Intercept {
            present,
            coefficient,
            ..
        } => format!(
            "{}{}",
            coefficient_prefix(coefficient),
            if *present { "1" } else { "0" }
        ),
        FormulaTerm::Fixed {
            coefficient,
            factors,
            ..
        } => format!(
            "{}{}",
            coefficient_prefix(coefficient),
            join_names(factors, ":")
        ),
        FormulaTerm::Random(random) => {
            let effects: Vec<String> = random
                .effects
                .iter()
                .map(|effect| match effect {
                    RandomEffect::Intercept { present, .. } => {
                        if *present { "1" } else { "0" }.to_string()
                    }
                    RandomEffect::Slope { factors, .. } => join_names(factors, ":"),
                })
                .collect();
            let levels: Vec<String> = random
                .grouping
                .levels
                .iter()
                .map(|level| join_names(level, ":"))
                .collect();
            format!(
                "({} {} {})",
                effects.join(" + "),
                if random.correlated { "|" } else { "||" },
                levels.join("/")
            )
        }
    }
}

fn coefficient_prefix(coefficient: &Option<Coefficient>) -> String {
    match coefficient {
        None => String::new(),
        Some(Coefficient::Label(label)) => format!("{}*", source_name(&label.name)),
        Some(Coefficient::Fixed { value, .. }) => format!("{}*", number(*value)),
    }
}

fn join_names(names: &[Ident], separator: &str) -> String {
    names
        .iter()
        .map(|n| source_name(&n.name))
        .collect::<Vec<_>>()
        .join(separator)
}

fn format_args(args: &[Arg]) -> String {
    print_arguments(arguments(args))
}

// ------------------------------------------------------------------------------------------------
// Expressions: written by the model's one printer, which the syntax tree shows itself to.

impl Printable for Expr {
    fn view(&self) -> View<'_, Self> {
        match &self.kind {
            ExprKind::Number(v) => View::Number(*v),
            ExprKind::String(s) => View::Text(s),
            ExprKind::Missing => View::Missing,
            ExprKind::Name(name) => View::Name(name),
            ExprKind::Unary { op, operand } => View::Unary(*op, operand),
            ExprKind::Binary { op, lhs, rhs } => View::Binary(*op, lhs, rhs),
            ExprKind::Call { function, args } => View::Call(&function.name, arguments(args)),
        }
    }
}

fn arguments(args: &[Arg]) -> Vec<(Option<&str>, &Expr)> {
    args.iter()
        .map(|arg| (arg.name.as_ref().map(|n| n.name.as_str()), &arg.value))
        .collect()
}

/// An expression's canonical text.
pub fn format_expr(expr: &Expr) -> String {
    print(expr)
}
