//! Fitted values and residuals per observation (lme4's `fitted()` and `resid()`): the fixed
//! part x'β plus the offset plus each random term's z'b at the observation's level; for a
//! non-Gaussian family, the mean on the response scale and the Pearson residuals
//! (`fitted(glmer_fit)`, `residuals(glmer_fit, type = "pearson")`).
//!
//! Owns only that arithmetic on rows a second design pass produced; it must not read the
//! frame or fit anything.

use crate::design::ObservationRows;
use crate::estimate::{FamilyColumns, Fit, Response};

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

/// Per observation of a non-Gaussian fit, what lme4's `plot(glmer_fit)` draws.
#[derive(Debug, Clone, PartialEq, Default)]
pub struct Pearson {
    /// μ = g⁻¹(η), η the linear predictor with both offsets: R's `fitted(glmer_fit)` (a
    /// proportion for a binomial outcome out of trials).
    pub mean: Vec<f64>,
    /// √w (y − μ)/√V(μ), y a proportion and w the trials for a binomial outcome out of trials
    /// (w = 1 otherwise): R's `residuals(glmer_fit, type = "pearson")`.
    pub residual: Vec<f64>,
    /// y − μ on the same scale (R's `type = "response"`).
    pub response_residual: Vec<f64>,
}

/// The mean and the Pearson residual of every observation in `rows` under `response`, with the
/// family statement's trials and offset at those rows; `None` when the rows do not belong to
/// `fit` or the columns are not one value per row.
pub fn pearson_residuals(
    rows: &ObservationRows,
    fit: &Fit,
    response: &Response,
    columns: &FamilyColumns,
) -> Option<Pearson> {
    let n = rows.len();
    let per_row = |c: &Option<Vec<f64>>| c.as_ref().is_none_or(|v| v.len() == n);
    if !(per_row(&columns.trials) && per_row(&columns.offset)) {
        return None;
    }
    let eta = fitted_values(rows, fit)?.fitted;
    let mut out = Pearson::default();
    for (i, eta) in eta.into_iter().enumerate() {
        let offset = columns.offset.as_ref().map_or(0.0, |o| o[i]);
        let mu = response.mean(eta + offset);
        let weight = columns.trials.as_ref().map_or(1.0, |t| t[i]);
        let y = rows.y[i] / weight;
        out.mean.push(mu);
        out.residual
            .push(weight.sqrt() * (y - mu) / response.variance(mu).sqrt());
        out.response_residual.push(y - mu);
    }
    Some(out)
}
