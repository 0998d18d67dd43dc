//! Fitted values and residuals per observation (lme4's `fitted()` and `resid()`): the fixed
//! part x'β plus the offset plus each random term's z'b at the observation's level.
//!
//! Owns only that arithmetic on rows a second design pass produced; it must not read the
//! frame or fit anything.

use crate::design::ObservationRows;
use crate::estimate::Fit;

#[derive(Debug, Clone, PartialEq, Default)]
pub struct Fitted {
    pub fitted: Vec<f64>,
    /// y − fitted.
    pub residual: Vec<f64>,
}

/// Fitted values and residuals of every observation in `rows`; `None` when the rows do not
/// belong to `fit` (another number of fixed effects or random terms).
pub fn fitted_values(rows: &ObservationRows, fit: &Fit) -> Option<Fitted> {
    if rows.x.ncols() != fit.beta.len() || rows.terms.len() != fit.random_effects.len() {
        return None;
    }
    let fixed = &rows.x * &fit.beta;
    let mut out = Fitted::default();
    for i in 0..rows.len() {
        let mut fitted = fixed[i] + rows.offset[i];
        for (term, modes) in rows.terms.iter().zip(&fit.random_effects) {
            if let Some(level) = term.level[i].filter(|&l| l < modes.nrows()) {
                for j in 0..term.z.ncols().min(modes.ncols()) {
                    fitted += term.z[(i, j)] * modes[(level, j)];
                }
            }
        }
        out.fitted.push(fitted);
        out.residual.push(rows.y[i] - fitted);
    }
    Some(out)
}
