//! Generalized linear mixed models (binomial, Poisson) fitted as lme4's `glmer` fits them:
//! penalized IRLS for the conditional modes (`pirls`), the Laplace approximation or adaptive
//! Gauss–Hermite quadrature of the likelihood (`quadrature`), glmer's two stages — θ alone with
//! β inside PIRLS (nAGQ = 0), then (θ, β) with PIRLS over u — (`search`), and the covariance of
//! (θ, β) from the finite-difference Hessian of the deviance (glmer's `use.hessian = TRUE`).
//! Without random terms it is IRLS, R's `glm`. Unlike the LMM it works on the design's rows
//! (`ObservationRows`): the weights change at every iteration, so there are no sufficient
//! statistics. Owns the driver and the conversion into a `Fit`; must not test or report.

mod factor;
mod pirls;
mod problem;
mod quadrature;
mod response;
mod search;
mod summary;

use nalgebra::DMatrix;

use crate::design::{Design, ObservationRows};
use crate::diagnostics::{Diagnostic, Location};
use crate::model::Family;

use super::Fit;
use pirls::Mode;
use problem::{Columns, Problem, Term};
pub use response::Response;

/// Largest number of dense random effects (and fixed effects in the first stage) the dense
/// Schur complement is formed for: 3000 (a 3000 × 3000 Cholesky per PIRLS step).
pub const MAX_DENSE_EFFECTS: usize = 3000;

/// A fitted GLMM: the fit, and the covariance of the parameter table's rows (β, then each
/// random term's variances and covariances) from the Hessian over (θ, β).
#[derive(Debug, Clone)]
pub struct GlmmFit {
    pub fit: Fit,
    pub covariance: DMatrix<f64>,
    /// "Laplace Approximation", "Adaptive Gauss-Hermite Quadrature, nAGQ = 25", or "IRLS"
    /// (no random terms).
    pub approximation: String,
}

/// Per observation, what the family statement adds to the design's rows.
#[derive(Debug, Clone, Default)]
pub struct FamilyColumns {
    /// Binomial trials (the outcome counts successes out of them).
    pub trials: Option<Vec<f64>>,
    /// Added to the linear predictor.
    pub offset: Option<Vec<f64>>,
}

/// Fit the design's rows with `family` by the Laplace approximation (`agq` = 1) or adaptive
/// Gauss–Hermite quadrature with `agq` nodes.
pub fn fit_glmm(
    design: &Design,
    rows: &ObservationRows,
    family: &Family,
    agq: usize,
    columns: FamilyColumns,
) -> Result<GlmmFit, Vec<Diagnostic>> {
    let problem = build_problem(design, rows, family, columns).map_err(error)?;
    if agq > 1 && !(problem.terms.len() == 1 && problem.terms[0].q == 1) {
        return Err(error(
            "adaptive Gauss-Hermite quadrature (agq > 1) needs exactly one random term with a \
             single effect, as in lme4"
                .into(),
        ));
    }
    let m = problem.dense_q + problem.p;
    let (qb, nlb) = problem.blocked_shape();
    if m > MAX_DENSE_EFFECTS || (qb * nlb) as f64 * m as f64 > 5e7 {
        return Err(error(format!(
            "the model has {} random effects outside its largest term and {} fixed effects; \
             a non-Gaussian fit forms their cross-products densely and is limited to {} of them",
            problem.dense_q, problem.p, MAX_DENSE_EFFECTS
        )));
    }
    summary::estimate(design, &problem, agq).map_err(error)
}

fn error(message: String) -> Vec<Diagnostic> {
    vec![Diagnostic::error(message, Location::None)]
}

/// The rows as a `Problem`: y as a proportion and the trials as prior weights for a binomial
/// outcome out of trials; the family's offset added to the design's.
fn build_problem(
    design: &Design,
    rows: &ObservationRows,
    family: &Family,
    columns: FamilyColumns,
) -> Result<Problem, String> {
    let n = rows.len();
    let response = Response {
        kind: family.kind,
        link: family.link,
    };
    let mut y = rows.y.clone();
    let mut weights = vec![1.0; n];
    if let Some(trials) = &columns.trials {
        for i in 0..n {
            if !(trials[i].is_finite() && trials[i] > 0.0) {
                return Err(format!(
                    "binomial trials must be positive; observation {} has {}",
                    i + 1,
                    trials[i]
                ));
            }
            weights[i] = trials[i];
            y[i] /= trials[i];
        }
    }
    let mut offset = rows.offset.clone();
    if let Some(extra) = &columns.offset {
        for i in 0..n {
            if !extra[i].is_finite() {
                return Err(format!("the offset of observation {} is not finite", i + 1));
            }
            offset[i] += extra[i];
        }
    }
    let terms = rows
        .terms
        .iter()
        .zip(&design.random)
        .map(|(t, r)| {
            let q = t.z.ncols();
            let mut z = Vec::with_capacity(n * q);
            for i in 0..n {
                z.extend(t.z.row(i).iter());
            }
            Term {
                q,
                nlevels: t.nlevels,
                correlated: r.correlated,
                level: t.level.clone(),
                z,
            }
        })
        .collect();
    let columns = Columns { y, weights, offset };
    Ok(Problem::new(response, rows.x.clone(), columns, terms))
}

/// The conditional modes at (θ, β) from `u0`, or `None` where PIRLS fails.
fn modes_at<'a>(
    problem: &'a Problem,
    theta: &[f64],
    beta: &[f64],
    u0: &[f64],
) -> Option<(Mode<'a>, problem::URows)> {
    let rows = problem.u_rows(theta);
    let mode = problem.pirls(&rows, beta, u0, false).ok()?;
    Some((mode, rows))
}
