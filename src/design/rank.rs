//! Identifiability of the fixed part, decided before any optimization from the summed
//! [X y]'[X y] of each equation: its fixed-effect columns must be finite and linearly
//! independent over the analysed rows, and its outcome must not be fitted exactly by them.
//! Owns the messages that name the column at fault (the estimator can only say "rank
//! deficient"); it must not read rows or fit anything.

use crate::diagnostics::{Diagnostic, Span};
use crate::model::{EquationSpec, ModelSpec};

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
    let mut out = Vec::new();
    for (e, equation) in spec.equations.iter().enumerate() {
        let sums = EquationSums::new(stats, classes, e);
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
        if let Some(d) = overflow(equation, &sums, &columns, p) {
            out.push(d);
            continue;
        }
        let kept = independent_columns(equation, &sums, &columns, &mut out);
        if kept.columns.len() < columns.len() {
            continue;
        }
        let (_, rest) = kept.project(&sums, p);
        let total = sums.at(p, p);
        if rest <= TOLERANCE * total {
            out.push(
                Diagnostic::at(
                    format!(
                        "the outcome `{}` is fitted exactly by its fixed effects: no residual \
                         variation is left{}",
                        equation.outcome,
                        if kept.columns.len() <= 1 {
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

/// One equation's [X y]'[X y], summed over its classes, (p+1)×(p+1) column-major.
struct EquationSums {
    s: Vec<f64>,
    m: usize,
}

impl EquationSums {
    fn new(stats: &SufficientStatistics, classes: &[ResidualClass], e: usize) -> Self {
        let m = stats.p + 1;
        let mut s = vec![0.0; m * m];
        for (class, xy) in classes.iter().zip(&stats.xy) {
            if class.equation == e && xy.len() == m * m {
                s.iter_mut().zip(xy).for_each(|(a, b)| *a += b);
            }
        }
        EquationSums { s, m }
    }

    fn at(&self, i: usize, j: usize) -> f64 {
        self.s[i + j * self.m]
    }
}

/// Where a column of `equation` is written: its term, or the equation.
fn span_of(equation: &EquationSpec, name: &str) -> Span {
    equation
        .terms
        .iter()
        .find(|t| t.name == name)
        .map_or(equation.span, |t| t.span)
}

/// A column (or the outcome, `p`) whose sum of squares is not finite.
fn overflow(
    equation: &EquationSpec,
    sums: &EquationSums,
    columns: &[(usize, &str)],
    p: usize,
) -> Option<Diagnostic> {
    let overflowing: Vec<&str> = columns
        .iter()
        .filter(|(j, _)| !sums.at(*j, *j).is_finite())
        .map(|(_, name)| *name)
        .collect();
    if overflowing.is_empty() && sums.at(p, p).is_finite() {
        return None;
    }
    let name = overflowing
        .first()
        .copied()
        .unwrap_or(equation.outcome.as_str());
    Some(
        Diagnostic::at(
            format!(
                "`{name}` is too large to fit: its sum of squares over the rows of the \
                 `{}` equation is not a finite number",
                equation.outcome
            ),
            if overflowing.is_empty() {
                equation.span
            } else {
                span_of(equation, name)
            },
        )
        .with_expected("values whose squares sum to less than about 1e308")
        .with_hint(format!(
            "check it for wrong values, or rescale it (e.g. `let {name}_k = {name} / 1e6`)"
        )),
    )
}

/// The independent columns so far and the rows of their Cholesky factor.
#[derive(Default)]
struct Kept<'a> {
    columns: Vec<(usize, &'a str)>,
    /// Row k: L's row of kept column k.
    factor: Vec<Vec<f64>>,
}

impl Kept<'_> {
    /// Column `j` projected on the kept columns: its row of L (without the diagonal) and its
    /// squared length left after removing them.
    fn project(&self, sums: &EquationSums, j: usize) -> (Vec<f64>, f64) {
        let mut row = Vec::with_capacity(self.columns.len());
        for (k, (c, _)) in self.columns.iter().enumerate() {
            let dot: f64 = row.iter().zip(&self.factor[k]).map(|(a, b)| a * b).sum();
            row.push((sums.at(j, *c) - dot) / self.factor[k][k]);
        }
        let rest = sums.at(j, j) - row.iter().map(|x| x * x).sum::<f64>();
        (row, rest)
    }
}

/// Cholesky of the columns in order, skipping (and reporting into `out`) each dependent one.
fn independent_columns<'a>(
    equation: &EquationSpec,
    sums: &EquationSums,
    columns: &[(usize, &'a str)],
    out: &mut Vec<Diagnostic>,
) -> Kept<'a> {
    let mut kept = Kept::default();
    for &(j, name) in columns {
        let (mut row, rest) = kept.project(sums, j);
        let total = sums.at(j, j);
        if total <= 0.0 || rest <= TOLERANCE * total {
            out.push(dependent_column(equation, name, total, &kept.columns));
            continue;
        }
        row.push(rest.sqrt());
        kept.factor.push(row);
        kept.columns.push((j, name));
    }
    kept
}

/// Why column `name` (sum of squares `total`) cannot be estimated after the `kept` ones.
fn dependent_column(
    equation: &EquationSpec,
    name: &str,
    total: f64,
    kept: &[(usize, &str)],
) -> Diagnostic {
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
    Diagnostic::at(message, span_of(equation, name)).with_hint(
        "its coefficient cannot be estimated (R's lm reports it as NA); drop it or the columns it repeats",
    )
}
