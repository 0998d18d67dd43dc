//! Columns that are text only because of a few stray cells (`n/a`, `12,5`, `?`) in an otherwise
//! numeric column. Such a column must not be used at all: as a number it would fail, and as a
//! factor it would silently fit something else. Owns finding the first use of each such column
//! in the file and the message that names the offending row; it must not look at values beyond
//! what `Schema` carries.

use std::collections::BTreeSet;

use crate::diagnostics::Diagnostic;
use crate::syntax::ast::{
    Expr, ExprKind, FormulaTerm, Ident, ModelFile, RandomEffect, Span, Statement,
};

use super::schema::Schema;

/// One error per spoilt column, at its first use in the file.
pub(crate) fn spoilt_columns(file: &ModelFile, schema: &Schema) -> Vec<Diagnostic> {
    if schema.stray.is_empty() && schema.damaged.is_empty() {
        return Vec::new();
    }
    let uses = names_used(file);
    let mut reported = BTreeSet::new();
    let mut out = Vec::new();
    for (name, span) in &uses {
        let Some((_, place, text, why)) = schema.damaged.iter().find(|(c, ..)| c == name) else {
            continue;
        };
        if !reported.insert(name.clone()) {
            continue;
        }
        let hint = if why.contains("quote") {
            "quote the whole cell (`\"...\"`, inner quotes doubled) or remove the stray quote"
        } else {
            "save the file as UTF-8 (e.g. `iconv -f latin1 -t utf-8 in.csv > out.csv`)"
        };
        out.push(
            Diagnostic::at(
                format!(
                    "column `{name}` of {} has a damaged cell: {place} has `{text}`, with {why}",
                    schema.file_name
                ),
                *span,
            )
            .with_expected("cells that name their level the same way every time")
            .with_hint(format!(
                "every distinct text is a level of its own, so this cell would be a group or \
                 category by itself; {hint}"
            )),
        );
    }
    for (name, span) in uses {
        let Some((_, place, text)) = schema.stray.iter().find(|(c, _, _)| *c == name) else {
            continue;
        };
        if !reported.insert(name.clone()) {
            continue;
        }
        out.push(
            Diagnostic::at(
                format!(
                    "column `{name}` of {} is not numeric: {place} has `{text}`",
                    schema.file_name
                ),
                span,
            )
            .with_expected("a column of numbers")
            .with_hint(if text.trim().parse::<f64>().is_ok_and(f64::is_infinite) {
                "that value is infinite (or too large for a number); no model can use it: \
                     fix that cell (and any like it) in the data file"
            } else {
                "missing values are empty cells or `NA`; fix that cell (and any like it) in \
                     the data file"
            }),
        );
    }
    out
}

/// Every name the file uses as a column, in file order, where it is used.
fn names_used(file: &ModelFile) -> Vec<(String, Span)> {
    let mut uses: Vec<(String, Span)> = Vec::new();
    for statement in &file.statements {
        match statement {
            Statement::Group { name, .. } | Statement::Order { name, .. } => ident(name, &mut uses),
            Statement::Factor { column, .. } => ident(column, &mut uses),
            Statement::Let { value, .. } => expr_names(value, &mut uses),
            Statement::Keep { condition, .. } => expr_names(condition, &mut uses),
            Statement::Equation(equation) => {
                ident(&equation.lhs, &mut uses);
                for term in &equation.terms {
                    term_names(term, &mut uses);
                }
            }
            Statement::Residual(residual) => {
                residual.by.iter().for_each(|c| ident(c, &mut uses));
                residual
                    .correlated_within
                    .iter()
                    .for_each(|c| ident(c, &mut uses));
            }
            Statement::Interval(interval) => interval
                .args
                .iter()
                .for_each(|a| expr_names(&a.value, &mut uses)),
            _ => {}
        }
    }
    uses
}

fn ident(i: &Ident, uses: &mut Vec<(String, Span)>) {
    uses.push((i.name.clone(), i.span));
}

fn term_names(term: &FormulaTerm, uses: &mut Vec<(String, Span)>) {
    match term {
        FormulaTerm::Intercept { .. } => {}
        FormulaTerm::Fixed { factors, .. } => factors.iter().for_each(|f| ident(f, uses)),
        FormulaTerm::Random(random) => {
            for effect in &random.effects {
                if let RandomEffect::Slope { factors, .. } = effect {
                    factors.iter().for_each(|f| ident(f, uses));
                }
            }
            random
                .grouping
                .levels
                .iter()
                .flatten()
                .for_each(|f| ident(f, uses));
        }
    }
}

/// The names an expression reads, each with where it is written.
pub(super) fn expr_names(expr: &Expr, uses: &mut Vec<(String, Span)>) {
    match &expr.kind {
        ExprKind::Name(name) => uses.push((name.clone(), expr.span)),
        ExprKind::Unary { operand, .. } => expr_names(operand, uses),
        ExprKind::Binary { lhs, rhs, .. } => {
            expr_names(lhs, uses);
            expr_names(rhs, uses);
        }
        ExprKind::Call { args, .. } => args.iter().for_each(|a| expr_names(&a.value, uses)),
        ExprKind::Number(_) | ExprKind::String(_) | ExprKind::Missing => {}
    }
}
