//! `factor`: reordering the levels of a text column (its reference level first), and making a
//! numeric data column categorical, as R's `factor()` does.
//!
//! Owns checking the levels named against the levels present, remapping the codes, and the
//! spelling of numbers as levels (`numbers_as_levels`). It must not touch other columns.

use super::workspace::Workspace;
use crate::data::{Column, MISSING_CODE};
use crate::diagnostics::{did_you_mean, Diagnostic};
use crate::model::preparation::{Factor, FactorLevels, Level, Preparation};

/// A numeric data column named by a `factor` statement becomes a text column for the whole
/// file (before any statement runs, so that `check`, which sees only kinds, and preparation
/// agree): its levels are its distinct values in numeric order, spelled as R's `as.character`
/// spells whole numbers and short decimals (`308`, `2.5`); missing stays missing.
pub(crate) fn numbers_as_levels(ws: &mut Workspace, plan: &Preparation) {
    for factor in plan.factors() {
        let Some(index) = ws.names.iter().position(|n| *n == factor.column) else {
            continue;
        };
        let Column::Numeric(values) = &*ws.columns[index] else {
            continue;
        };
        // `+ 0.0` makes −0 and 0 one level (they are equal, but `total_cmp` tells them apart).
        let mut distinct: Vec<f64> = values
            .iter()
            .filter(|v| !v.is_nan())
            .map(|v| v + 0.0)
            .collect();
        distinct.sort_by(f64::total_cmp);
        distinct.dedup();
        let codes = values
            .iter()
            .map(|v| {
                if v.is_nan() {
                    MISSING_CODE
                } else {
                    // Every non-missing value is in `distinct`: the search always succeeds.
                    let key = v + 0.0;
                    distinct
                        .binary_search_by(|d| d.total_cmp(&key))
                        .unwrap_or(0) as u32
                }
            })
            .collect();
        // Rust's shortest round-trip spelling is R's for these (`308`, `2.5`, `-1`, `0`).
        let levels = distinct.iter().map(|v| format!("{v}")).collect();
        ws.columns[index] = std::borrow::Cow::Owned(Column::Text { codes, levels });
    }
}

/// Reorder the levels of the factor's column as it says; every problem found is returned.
pub(crate) fn apply_factor(ws: &mut Workspace, factor: &Factor) -> Result<(), Vec<Diagnostic>> {
    let column = factor.column.as_str();
    // `check` resolved the column against the data; another table may still lack it.
    let Some(target) = ws.column_mut(column) else {
        return Err(vec![Diagnostic::at(
            format!("`{column}` is not a column or an earlier `let`"),
            factor.column_span,
        )]);
    };
    let Column::Text { codes, levels } = target else {
        return Err(vec![Diagnostic::at(
            format!("`{column}` is numeric; `factor` sets the levels of a text column"),
            factor.column_span,
        )]);
    };
    let order: Vec<usize> = match &factor.levels {
        FactorLevels::Reference(level) => match find_level(column, levels, level) {
            Ok(r) => std::iter::once(r)
                .chain((0..levels.len()).filter(|&i| i != r))
                .collect(),
            Err(d) => return Err(vec![d]),
        },
        FactorLevels::Listed(listed) => listed_order(column, levels, listed, factor.span)?,
    };
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

/// The position of a level named in a `factor` statement among the column's levels.
#[allow(clippy::result_large_err)] // a cold path; Diagnostic is the project's error type
fn find_level(column: &str, levels: &[String], lit: &Level) -> Result<usize, Diagnostic> {
    levels.iter().position(|l| *l == lit.value).ok_or_else(|| {
        let mut d = Diagnostic::at(
            format!("`{column}` has no level \"{}\"", lit.value),
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
}

/// The order `levels "a", "b", ...` gives: each level once, and every level listed.
fn listed_order(
    column: &str,
    levels: &[String],
    lits: &[Level],
    span: crate::diagnostics::Span,
) -> Result<Vec<usize>, Vec<Diagnostic>> {
    let mut errors = Vec::new();
    let mut order = Vec::new();
    let mut unknown = false;
    for lit in lits {
        match find_level(column, levels, lit) {
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
                    "`levels` must list every level of `{column}`; missing: {}",
                    unlisted.join(", ")
                ),
                span,
            )
            .with_hint("to choose only the reference level, write `reference \"...\"`"),
        );
    }
    if !errors.is_empty() {
        return Err(errors);
    }
    Ok(order)
}

/// The levels of a text column after `factor` (reference first, or as listed), given its levels
/// before, for data read in pieces: the same checks and order as on the whole column.
pub fn factor_levels(levels: Vec<String>, factor: &Factor) -> Result<Vec<String>, Vec<Diagnostic>> {
    let codes = (0..levels.len() as u32).collect();
    let table = crate::data::DataTable {
        names: vec![factor.column.clone()],
        columns: vec![Column::Text { codes, levels }],
        stray_text: vec![None],
        ..crate::data::DataTable::from_numeric("levels", Vec::new())
    };
    let mut ws = Workspace::new(&table);
    apply_factor(&mut ws, factor)?;
    match ws.columns.pop().map(std::borrow::Cow::into_owned) {
        Some(Column::Text { levels, .. }) => Ok(levels),
        _ => Ok(Vec::new()),
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::data::DataTable;
    use crate::diagnostics::Span;
    use crate::model::preparation::Step;

    /// R: `levels(factor(c(10, 2, NA, 2.5, 2, -0, 0)))` is `"0" "2" "2.5" "10"`: numeric order,
    /// not text order, −0 is 0, and missing stays missing.
    #[test]
    fn numbers_become_levels_in_numeric_order() {
        let table = DataTable::from_numeric(
            "t.csv",
            vec![
                ("x".into(), vec![10.0, 2.0, f64::NAN, 2.5, 2.0, -0.0, 0.0]),
                ("y".into(), vec![1.0; 7]),
            ],
        );
        let level = |value: &str| Level {
            value: value.into(),
            span: Span::default(),
        };
        let plan = Preparation {
            steps: vec![Step::Factor(Factor {
                column: "x".into(),
                column_span: Span::default(),
                levels: FactorLevels::Reference(level("2")),
                span: Span::default(),
            })],
        };
        let mut ws = Workspace::new(&table);
        numbers_as_levels(&mut ws, &plan);
        let Column::Text { codes, levels } = &*ws.columns[0] else {
            panic!("x is still numeric");
        };
        assert_eq!(levels, &["0", "2", "2.5", "10"]);
        assert_eq!(codes, &[3, 1, MISSING_CODE, 2, 1, 0, 0]);
        assert!(matches!(*ws.columns[1], Column::Numeric(_)));
    }
}
