//! Data-dependent checks of outcomes against their family, on the prepared frame: a binomial
//! outcome is 0/1 (or successes out of positive whole-number `trials`), a Poisson outcome a
//! whole number ≥ 0 (lme4 refuses negative counts and warns on fractions; so does this); and
//! the honest defaults of issue 16: a Gaussian outcome that looks binary or like a count is
//! fitted as asked, with a warning at its equation suggesting the family. Owns those rules; it
//! must not change the frame or fit anything. Missing values are skipped (the design drops
//! their rows).
//!
//! The count rule: every value a whole number ≥ 0, at least one 0 and one value above 1, and
//! at most `COUNT_DISTINCT` distinct values. The 0 keeps ratings (1–5, 1–7) and measurements
//! in whole units (dyestuff's yields) out; the cap keeps out wide integer ranges.

use crate::data::Column;
use crate::diagnostics::{Diagnostic, Location};
use crate::model::{EquationSpec, FamilyKind, ModelSpec, OutcomeKind};
use crate::prepare::AnalysisFrame;

/// A Gaussian outcome with more distinct whole values than this is not taken for a count.
const COUNT_DISTINCT: usize = 100;

/// The outcomes' family rules (errors) and the honest-default warnings.
pub fn check_outcomes(spec: &ModelSpec, frame: &AnalysisFrame) -> Vec<Diagnostic> {
    let mut out = Vec::new();
    for eq in &spec.equations {
        if eq.outcome_kind != OutcomeKind::Variable {
            continue;
        }
        let Some(Column::Numeric(y)) = frame.column(&eq.outcome) else {
            continue;
        };
        match eq.family.kind {
            FamilyKind::Gaussian => out.extend(looks_binary_or_count(eq, y, spec.equations.len())),
            FamilyKind::Binomial => out.extend(binomial_values(eq, y, frame)),
            FamilyKind::Poisson => out.extend(poisson_values(eq, y, frame)),
        }
    }
    out
}

fn whole(v: f64) -> bool {
    v.fract() == 0.0
}

fn located(eq: &EquationSpec) -> Location {
    Location::Source(eq.family.span.unwrap_or(eq.span))
}

fn looks_binary_or_count(eq: &EquationSpec, y: &[f64], equations: usize) -> Option<Diagnostic> {
    let present: Vec<f64> = y.iter().copied().filter(|v| !v.is_nan()).collect();
    if present.iter().any(|&v| v < 0.0 || !whole(v)) || present.is_empty() {
        return None;
    }
    let has = |x: f64| present.contains(&x);
    let name = &eq.outcome;
    // The statement to add: with one equation no outcome need be named.
    let family = |kind: &str| match equations {
        1 => format!("family {kind}"),
        _ => format!("family {name} {kind}"),
    };
    if present.iter().all(|&v| v == 0.0 || v == 1.0) && has(0.0) && has(1.0) {
        return Some(
            Diagnostic::warning(
                format!(
                    "the outcome `{name}` is 0/1, fitted here as Gaussian (a linear probability \
                     model)"
                ),
                Location::Source(eq.span),
            )
            .with_hint(format!("for a logistic model add `{}`", family("binomial"))),
        );
    }
    let mut distinct: Vec<u64> = present.iter().map(|v| v.to_bits()).collect();
    distinct.sort_unstable();
    distinct.dedup();
    if has(0.0) && present.iter().any(|&v| v > 1.0) && distinct.len() <= COUNT_DISTINCT {
        return Some(
            Diagnostic::warning(
                format!(
                    "the outcome `{name}` holds counts (whole numbers from 0), fitted here as \
                     Gaussian"
                ),
                Location::Source(eq.span),
            )
            .with_hint(format!("if it counts events, add `{}`", family("poisson"))),
        );
    }
    None
}

/// The first offending row of the frame and how many rows offend.
fn offending(bad: impl Iterator<Item = usize>) -> Option<(usize, usize)> {
    let mut first = None;
    let mut count = 0;
    for row in bad {
        first.get_or_insert(row);
        count += 1;
    }
    first.map(|row| (row, count))
}

/// "data row R" (the data file's row of frame row `row`), and how many more.
fn rows_text(frame: &AnalysisFrame, row: usize, count: usize) -> String {
    let row = frame.source_rows.get(row).copied().unwrap_or(row + 1);
    match count {
        1 => format!("data row {row}"),
        n => format!("data row {row} (and {} more rows)", n - 1),
    }
}

fn binomial_values(eq: &EquationSpec, y: &[f64], frame: &AnalysisFrame) -> Vec<Diagnostic> {
    let name = &eq.outcome;
    let mut out = Vec::new();
    let Some(trials) = &eq.family.trials else {
        let bad = (0..y.len()).filter(|&r| !y[r].is_nan() && y[r] != 0.0 && y[r] != 1.0);
        if let Some((row, count)) = offending(bad) {
            let value = y[row];
            out.push(
                Diagnostic::error(
                    format!(
                        "the binomial outcome `{name}` is not 0/1: {} has {value}",
                        rows_text(frame, row, count)
                    ),
                    located(eq),
                )
                .with_expected("0 or 1 in every row")
                .with_hint("for successes out of a number of trials add `trials = column`"),
            );
        }
        return out;
    };
    let Some(Column::Numeric(n)) = frame.column(trials) else {
        return out;
    };
    let bad_trials = (0..n.len()).filter(|&r| !n[r].is_nan() && (n[r] < 1.0 || !whole(n[r])));
    if let Some((row, count)) = offending(bad_trials) {
        out.push(
            Diagnostic::error(
                format!(
                    "the number of trials `{trials}` is not a positive whole number in {}",
                    rows_text(frame, row, count)
                ),
                located(eq),
            )
            .with_expected("1, 2, 3, ... trials in every row"),
        );
    }
    let bad = (0..y.len()).filter(|&r| {
        !y[r].is_nan() && !n[r].is_nan() && (y[r] < 0.0 || !whole(y[r]) || y[r] > n[r])
    });
    if let Some((row, count)) = offending(bad) {
        out.push(
            Diagnostic::error(
                format!(
                    "the binomial outcome `{name}` is not a number of successes out of \
                     `{trials}` in {}",
                    rows_text(frame, row, count)
                ),
                located(eq),
            )
            .with_expected(format!("a whole number from 0 to `{trials}`")),
        );
    }
    out
}

fn poisson_values(eq: &EquationSpec, y: &[f64], frame: &AnalysisFrame) -> Vec<Diagnostic> {
    let name = &eq.outcome;
    let mut out = Vec::new();
    let negative = (0..y.len()).filter(|&r| y[r] < 0.0);
    if let Some((row, count)) = offending(negative) {
        out.push(
            Diagnostic::error(
                format!(
                    "the Poisson outcome `{name}` is negative in {}",
                    rows_text(frame, row, count)
                ),
                located(eq),
            )
            .with_expected("a count: 0, 1, 2, ..."),
        );
    }
    let fractional = (0..y.len()).filter(|&r| y[r] >= 0.0 && !whole(y[r]));
    if let Some((row, count)) = offending(fractional) {
        out.push(
            Diagnostic::warning(
                format!(
                    "the Poisson outcome `{name}` is not a whole number in {} (glmer warns too)",
                    rows_text(frame, row, count)
                ),
                located(eq),
            )
            .with_hint("a Poisson outcome counts events; is this the outcome you meant?"),
        );
    }
    out
}
