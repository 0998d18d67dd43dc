//! AST → canonical source text.
//!
//! Owns the one canonical way to write a `ModelFile`: one statement per line, single spaces
//! around binary operators, parentheses in expressions exactly where precedence needs them.
//! Parsing the output gives the same AST (spans aside); that round trip is what this module
//! promises. It does not keep comments or the user's layout (the AST has neither).

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
        Statement::Estimate { method, .. } => match method {
            Method::Ml => "estimate ml".into(),
            Method::Reml => "estimate reml".into(),
        },
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
    args.iter()
        .map(|arg| match &arg.name {
            Some(name) => format!("{} = {}", source_name(&name.name), format_expr(&arg.value)),
            None => format_expr(&arg.value),
        })
        .collect::<Vec<_>>()
        .join(", ")
}

// ------------------------------------------------------------------------------------------------
// Expressions

/// Binding strength, loosest first; mirrors the grammar's expression rules.
const OR: u8 = 1;
const AND: u8 = 2;
const NOT: u8 = 3;
const COMPARE: u8 = 4;
const ADD: u8 = 5;
const MUL: u8 = 6;
const NEG: u8 = 7;
const POW: u8 = 8;
const ATOM: u8 = 9;

/// An expression's canonical text.
pub fn format_expr(expr: &Expr) -> String {
    expr_at(expr, 0)
}

fn precedence(expr: &Expr) -> u8 {
    match &expr.kind {
        ExprKind::Number(v) if *v < 0.0 || v.is_sign_negative() => NEG,
        ExprKind::Number(_)
        | ExprKind::String(_)
        | ExprKind::Missing
        | ExprKind::Name(_)
        | ExprKind::Call { .. } => ATOM,
        ExprKind::Unary { op, .. } => match op {
            UnaryOp::Neg => NEG,
            UnaryOp::Not => NOT,
        },
        ExprKind::Binary { op, .. } => binary_precedence(*op),
    }
}

fn binary_precedence(op: BinaryOp) -> u8 {
    match op {
        BinaryOp::Or => OR,
        BinaryOp::And => AND,
        BinaryOp::Eq | BinaryOp::Ne | BinaryOp::Lt | BinaryOp::Le | BinaryOp::Gt | BinaryOp::Ge => {
            COMPARE
        }
        BinaryOp::Add | BinaryOp::Sub => ADD,
        BinaryOp::Mul | BinaryOp::Div => MUL,
        BinaryOp::Pow => POW,
    }
}

/// `expr` written where the grammar needs at least binding strength `min`.
fn expr_at(expr: &Expr, min: u8) -> String {
    let text = match &expr.kind {
        ExprKind::Number(v) => number(*v),
        ExprKind::String(s) => string_literal(s),
        ExprKind::Missing => "NA".into(),
        ExprKind::Name(name) => source_name(name).into_owned(),
        ExprKind::Call { function, args } => format!("{}({})", function.name, format_args(args)),
        ExprKind::Unary { op, operand } => match op {
            // `- -x` would read as a decrement to a human; `-(-x)` is the same tree.
            UnaryOp::Neg if precedence(operand) == NEG => format!("-({})", expr_at(operand, 0)),
            UnaryOp::Neg => format!("-{}", expr_at(operand, NEG)),
            UnaryOp::Not => format!("!{}", expr_at(operand, NOT)),
        },
        ExprKind::Binary { op, lhs, rhs } => {
            let p = binary_precedence(*op);
            let (lhs_min, rhs_min) = match op {
                // Comparisons do not chain: both sides must bind tighter.
                BinaryOp::Eq
                | BinaryOp::Ne
                | BinaryOp::Lt
                | BinaryOp::Le
                | BinaryOp::Gt
                | BinaryOp::Ge => (p + 1, p + 1),
                // Right-associative; the exponent may be a negation (`2^-1`).
                BinaryOp::Pow => (ATOM, NEG),
                _ => (p, p + 1),
            };
            let (l, r) = (expr_at(lhs, lhs_min), expr_at(rhs, rhs_min));
            if *op == BinaryOp::Pow {
                format!("{l}^{r}")
            } else {
                format!("{l} {} {r}", op.symbol())
            }
        }
    };
    if precedence(expr) < min {
        format!("({text})")
    } else {
        text
    }
}

/// The shortest text that reads back as the same `f64`.
fn number(value: f64) -> String {
    if value.fract() == 0.0 && value.abs() < 1e15 {
        format!("{value}")
    } else {
        // Debug prints the shortest round-tripping digits, with an exponent when that is
        // shorter (`1e-7`), which the grammar accepts.
        format!("{value:?}")
    }
}

fn string_literal(value: &str) -> String {
    let mut out = String::with_capacity(value.len() + 2);
    out.push('"');
    for c in value.chars() {
        match c {
            '"' => out.push_str("\\\""),
            '\\' => out.push_str("\\\\"),
            '\n' => out.push_str("\\n"),
            '\t' => out.push_str("\\t"),
            c => out.push(c),
        }
    }
    out.push('"');
    out
}
