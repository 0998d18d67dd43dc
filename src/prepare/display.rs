//! Preparation expressions back to text, for drop reasons ("keep complete(t_lag, p_lag)") and
//! warnings. Owns only the minimal parenthesisation by the language's precedence; it must not be
//! mistaken for the syntax module's formatter of whole files.

use crate::syntax::ast::{BinaryOp, Expr, ExprKind, UnaryOp};

/// Binding strength, low to high, as in the grammar: `|` < `&` < `!` < comparisons < `+ -` <
/// `* /` < unary `-` < `^` < atoms.
fn precedence(expr: &Expr) -> u8 {
    match &expr.kind {
        ExprKind::Binary { op, .. } => binary_precedence(*op),
        ExprKind::Unary {
            op: UnaryOp::Not, ..
        } => 3,
        ExprKind::Unary {
            op: UnaryOp::Neg, ..
        } => 7,
        _ => 9,
    }
}

fn binary_precedence(op: BinaryOp) -> u8 {
    match op {
        BinaryOp::Or => 1,
        BinaryOp::And => 2,
        BinaryOp::Eq | BinaryOp::Ne | BinaryOp::Lt | BinaryOp::Le | BinaryOp::Gt | BinaryOp::Ge => {
            4
        }
        BinaryOp::Add | BinaryOp::Sub => 5,
        BinaryOp::Mul | BinaryOp::Div => 6,
        BinaryOp::Pow => 8,
    }
}

/// The expression as source-like text.
pub fn expr_text(expr: &Expr) -> String {
    let mut out = String::new();
    write_expr(expr, &mut out);
    out
}

fn write_child(expr: &Expr, at_least: u8, out: &mut String) {
    if precedence(expr) < at_least {
        out.push('(');
        write_expr(expr, out);
        out.push(')');
    } else {
        write_expr(expr, out);
    }
}

fn write_expr(expr: &Expr, out: &mut String) {
    match &expr.kind {
        ExprKind::Number(v) => out.push_str(&v.to_string()),
        ExprKind::String(s) => {
            out.push('"');
            for c in s.chars() {
                if c == '"' || c == '\\' {
                    out.push('\\');
                }
                out.push(c);
            }
            out.push('"');
        }
        ExprKind::Missing => out.push_str("NA"),
        ExprKind::Name(n) => out.push_str(n),
        ExprKind::Unary { op, operand } => {
            let (symbol, level) = match op {
                UnaryOp::Neg => ("-", 7),
                UnaryOp::Not => ("!", 3),
            };
            out.push_str(symbol);
            write_child(operand, level, out);
        }
        ExprKind::Binary { op, lhs, rhs } => {
            let p = binary_precedence(*op);
            let (left, right) = match p {
                // Comparisons do not chain; `^` groups to the right.
                4 => (p + 1, p + 1),
                8 => (p + 1, p),
                _ => (p, p + 1),
            };
            write_child(lhs, left, out);
            out.push(' ');
            out.push_str(op.symbol());
            out.push(' ');
            write_child(rhs, right, out);
        }
        ExprKind::Call { function, args } => {
            out.push_str(&function.name);
            out.push('(');
            for (i, arg) in args.iter().enumerate() {
                if i > 0 {
                    out.push_str(", ");
                }
                if let Some(name) = &arg.name {
                    out.push_str(&name.name);
                    out.push_str(" = ");
                }
                write_expr(&arg.value, out);
            }
            out.push(')');
        }
    }
}
