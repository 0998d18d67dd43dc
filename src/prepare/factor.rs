//! `factor`: reordering the levels of a text column (its reference level first).
//!
//! Owns checking the levels named against the levels present and remapping the codes. It must
//! not turn numeric columns into factors: that would need a rule for spelling numbers as levels.

use super::workspace::Workspace;
use crate::data::{Column, MISSING_CODE};
use crate::diagnostics::{did_you_mean, Diagnostic};
use crate::syntax::ast::{FactorSpec, Ident, Span, StringLit};

/// Reorder the levels of `column` as `spec` says; every problem found is returned.
pub(crate) fn apply_factor(
    ws: &mut Workspace,
    column: &Ident,
    spec: &FactorSpec,
    span: Span,
) -> Result<(), Vec<Diagnostic>> {
    let Some(target) = ws.column_mut(&column.name) else {
        let mut d = Diagnostic::at(
            format!("`{}` is not a column or an earlier `let`", column.name),
            column.span,
        );
        if let Some(hint) = did_you_mean(&column.name, ws.names.iter().map(String::as_str)) {
            d = d.with_hint(hint);
        }
        return Err(vec![d]);
    };
    let Column::Text { codes, levels } = target else {
        return Err(vec![Diagnostic::at(
            format!(
                "`{}` is numeric; `factor` sets the levels of a text column",
                column.name
            ),
            column.span,
        )]);
    };

    #[allow(clippy::result_large_err)] // a cold path; Diagnostic is the project's error type
    let find = |lit: &StringLit| -> Result<usize, Diagnostic> {
        levels.iter().position(|l| *l == lit.value).ok_or_else(|| {
            let mut d = Diagnostic::at(
                format!("`{}` has no level \"{}\"", column.name, lit.value),
                lit.span,
            )
            .with_expected(format!(
                "one of: {}",
                levels
                    .iter()
                    .map(|l| format!("\"{l}\""))
                    .collect::<Vec<_>>()
                    .join(", ")
            ));
            if let Some(hint) = did_you_mean(&lit.value, levels.iter().map(String::as_str)) {
                d = d.with_hint(hint);
            }
            d
        })
    };

    let mut errors = Vec::new();
    let order: Vec<usize> = match spec {
        FactorSpec::Reference(lit) => match find(lit) {
            Ok(r) => std::iter::once(r)
                .chain((0..levels.len()).filter(|&i| i != r))
                .collect(),
            Err(d) => return Err(vec![d]),
        },
        FactorSpec::Levels(lits) => {
            let mut order = Vec::new();
            let mut unknown = false;
            for lit in lits {
                match find(lit) {
                    Ok(i) if order.contains(&i) => errors.push(Diagnostic::at(
                        format!("level \"{}\" is listed twice", lit.value),
                        lit.span,
                    )),
                    Ok(i) => order.push(i),
                    Err(d) => {
                        unknown = true;
                        errors.push(d);
                    }
                }
            }
            let unlisted: Vec<String> = (0..levels.len())
                .filter(|i| !order.contains(i))
                .map(|i| format!("\"{}\"", levels[i]))
                .collect();
            // An unknown level is most likely a misspelt one; listing it as missing too is noise.
            if !unknown && !unlisted.is_empty() {
                errors.push(
                    Diagnostic::at(
                        format!(
                            "`levels` must list every level of `{}`; missing: {}",
                            column.name,
                            unlisted.join(", ")
                        ),
                        span,
                    )
                    .with_hint("to choose only the reference level, write `reference \"...\"`"),
                );
            }
            order
        }
    };
    if !errors.is_empty() {
        return Err(errors);
    }
    let mut remap = vec![0u32; levels.len()];
    for (new, &old) in order.iter().enumerate() {
        remap[old] = new as u32;
    }
    for c in codes.iter_mut().filter(|c| **c != MISSING_CODE) {
        *c = remap[*c as usize];
    }
    *levels = order.iter().map(|&i| levels[i].clone()).collect();
    Ok(())
}
