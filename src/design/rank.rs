//! Identifiability of the fixed part, decided before any optimization from the summed
//! [X y]'[X y] of each equation: its fixed-effect columns must be finite and linearly
//! independent over the analysed rows, and its outcome must not be fitted exactly by them.
//! Owns the messages that name the column at fault (the estimator can only say "rank
//! deficient"); it must not read rows or fit anything.

use crate::diagnostics::Diagnostic;
use crate::model::ModelSpec;

use super::{FixedParameter, ResidualClass, SufficientStatistics};

/// A column whose squared length after removing the earlier columns is below this fraction of
/// its own is taken as a combination of them (R's `lm` uses a QR tolerance of 1e-7 on lengths,
/// i.e. 1e-14 on squares; a looser bound also catches columns equal up to rounding).
const TOLERANCE: f64 = 1e-10;

/// Every fixed-part problem of every equation (empty when the fit can go ahead).
pub(super) fn problems(
    spec: &ModelSpec,
    fixed: &[FixedParameter],
    stats: &SufficientStatistics,
    classes: &[ResidualClass],
) -> Vec<Diagnostic> {
    let p = stats.p;
    let m = p + 1;
    let mut out = Vec::new();
    for (e, equation) in spec.equations.iter().enumerate() {
        let mut s = vec![0.0; m * m];
        for (class, xy) in classes.iter().zip(&stats.xy) {
            if class.equation == e && xy.len() == m * m {
                s.iter_mut().zip(xy).for_each(|(a, b)| *a += b);
            }
        }
        let at = |i: usize, j: usize| s[i + j * m];
        // This equation's columns, with their names in it.
        let columns: Vec<(usize, &str)> = fixed
            .iter()
            .enumerate()
            .filter_map(|(j, f)| {
                f.columns
                    .iter()
                    .find(|(eq, _)| *eq == e)
                    .map(|(_, name)| (j, name.as_str()))
            })
            .collect();
        let span_of = |name: &str| {
            equation
                .terms
                .iter()
                .find(|t| t.name == name)
                .map_or(equation.span, |t| t.span)
        };
        let overflowing: Vec<&str> = columns
            .iter()
            .filter(|(j, _)| !at(*j, *j).is_finite())
            .map(|(_, name)| *name)
            .collect();
        if !overflowing.is_empty() || !at(p, p).is_finite() {
            let name = overflowing
                .first()
                .copied()
                .unwrap_or(equation.outcome.as_str());
            out.push(
                Diagnostic::at(
                    format!(
                        "`{name}` is too large to fit: its sum of squares over the rows of the \
                         `{}` equation is not a finite number",
                        equation.outcome
                    ),
                    if overflowing.is_empty() {
                        equation.span
                    } else {
                        span_of(name)
                    },
                )
                .with_expected("values whose squares sum to less than about 1e308")
                .with_hint(format!(
                    "check it for wrong values, or rescale it (e.g. `let {name}_k = {name} / 1e6`)"
                )),
            );
            continue;
        }
        // Cholesky of the columns in order, skipping (and reporting) each dependent one.
        let mut kept: Vec<(usize, &str)> = Vec::new();
        let mut factor: Vec<Vec<f64>> = Vec::new(); // row k: L's row of kept column k
        let project = |j: usize, kept: &[(usize, &str)], factor: &[Vec<f64>]| {
            let mut row = Vec::with_capacity(kept.len());
            for (k, (c, _)) in kept.iter().enumerate() {
                let dot: f64 = row.iter().zip(&factor[k]).map(|(a, b)| a * b).sum();
                row.push((at(j, *c) - dot) / factor[k][k]);
            }
            let rest = at(j, j) - row.iter().map(|x| x * x).sum::<f64>();
            (row, rest)
        };
        for &(j, name) in &columns {
            let (mut row, rest) = project(j, &kept, &factor);
            let total = at(j, j);
            if total <= 0.0 || rest <= TOLERANCE * total {
                let message = if total <= 0.0 {
                    format!(
                        "the column `{name}` of the `{}` equation is zero in every analysed row",
                        equation.outcome
                    )
                } else if kept.is_empty() {
                    format!(
                        "the column `{name}` of the `{}` equation cannot be estimated",
                        equation.outcome
                    )
                } else {
                    format!(
                        "the column `{name}` of the `{}` equation is constant, a copy or a \
                         combination of the columns before it ({}) in the analysed rows",
                        equation.outcome,
                        kept.iter()
                            .map(|(_, n)| format!("`{n}`"))
                            .collect::<Vec<_>>()
                            .join(", ")
                    )
                };
                out.push(
                    Diagnostic::at(message, span_of(name))
                        .with_hint("its coefficient cannot be estimated (R's lm reports it as NA); drop it or the columns it repeats"),
                );
                continue;
            }
            row.push(rest.sqrt());
            factor.push(row);
            kept.push((j, name));
        }
        if kept.len() < columns.len() {
            continue;
        }
        let (_, rest) = project(p, &kept, &factor);
        let total = at(p, p);
        if rest <= TOLERANCE * total {
            out.push(
                Diagnostic::at(
                    format!(
                        "the outcome `{}` is fitted exactly by its fixed effects: no residual \
                         variation is left{}",
                        equation.outcome,
                        if kept.len() <= 1 {
                            " (is it constant?)"
                        } else {
                            ""
                        }
                    ),
                    equation.span,
                )
                .with_hint(
                    "check the outcome's values in the analysed rows, and the `let`s computing it",
                ),
            );
        }
    }
    out
}
