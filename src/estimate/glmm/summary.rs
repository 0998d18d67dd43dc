//! The GLMM driver and its `Fit`: glmer's two stages (Nelder–Mead over θ with β in PIRLS, then
//! Newton over (θ, β) to the true optimum of the Laplace/AGQ deviance), the covariance of
//! (θ, β) as twice the inverse of the deviance's finite-difference Hessian (numDeriv's
//! Richardson rules; glmer's default `use.hessian = TRUE`), and lme4's quantities from them
//! (variance components, conditional modes and variances, logLik, AIC, BIC). Must not test or
//! report.

use nalgebra::DMatrix;

use crate::design::Design;
use crate::diagnostics::{Diagnostic, Location};
use crate::estimate::fit::{FixedEstimate, VarianceComponent, SINGULAR_TOLERANCE};
use crate::estimate::optimize::OptSummary;
use crate::estimate::Fit;
use crate::model::Method;
use crate::numeric_derivatives;

use super::modes_at;
use super::pirls::Mode;
use super::problem::{Problem, URows};
use super::quadrature::gauss_hermite;
use super::search::{nelder_mead, newton, Minimum};
use super::GlmmFit;

/// The second stage is settled when the deviance could fall by less than this.
const SETTLED: f64 = 1e-9;

/// The deviance at φ = (θ, β), PIRLS started from `u0`: Laplace, or AGQ with `rule`.
fn deviance_at(problem: &Problem, phi: &[f64], u0: &[f64], rule: &[(f64, f64)]) -> Option<f64> {
    let nt = problem.ntheta();
    let (mode, rows) = modes_at(problem, &phi[..nt], &phi[nt..], u0)?;
    Some(deviance_of(problem, &rows, &mode, rule))
}

fn deviance_of(problem: &Problem, rows: &URows, mode: &Mode, rule: &[(f64, f64)]) -> f64 {
    if rule.is_empty() {
        mode.laplace()
    } else {
        problem.agq_deviance(rows, mode, rule)
    }
}

/// Fit the problem: IRLS without random terms, else the two stages.
pub fn estimate(design: &Design, problem: &Problem, agq: usize) -> Result<GlmmFit, String> {
    if problem.terms.is_empty() {
        return glm(design, problem);
    }
    let nt = problem.ntheta();
    let q = problem.q();
    let zeros_u = vec![0.0; q];
    let zeros_b = vec![0.0; problem.p];
    // Stage 1 (nAGQ = 0): θ alone, β with u in PIRLS, from lme4's start.
    let stage1 = |theta: &[f64]| -> Option<f64> {
        let rows = problem.u_rows(theta);
        Some(
            problem
                .pirls(&rows, &zeros_b, &zeros_u, true)
                .ok()?
                .laplace(),
        )
    };
    let start = lme4_start(problem);
    let first = nelder_mead(&stage1, &start, 0.25, 1e-7, 4000);
    let rows = problem.u_rows(&first.x);
    let joint = (problem.pirls(&rows, &zeros_b, &zeros_u, true))
        .map_err(|e| format!("the first stage failed at its optimum: {e}"))?;
    let u1 = joint.u.clone();
    let rule = if agq > 1 {
        gauss_hermite(agq)
    } else {
        Vec::new()
    };
    let f2 = |phi: &[f64]| deviance_at(problem, phi, &u1, &rule);
    let mut phi0 = first.x.clone();
    phi0.extend_from_slice(&joint.beta);
    let mut second = newton(&f2, &phi0, SETTLED, 100);
    if !second.converged {
        // Far from the optimum Newton may stall: polish by Nelder–Mead, then Newton again.
        let nm = nelder_mead(&f2, &second.x, 0.05, 1e-9, 20000);
        let again = newton(&f2, &nm.x, SETTLED, 100);
        second = Minimum {
            evaluations: second.evaluations + nm.evaluations + again.evaluations,
            ..again
        };
    }
    normalise(problem, &mut second.x[..nt]);
    let (mode, rows) = modes_at(problem, &second.x[..nt], &second.x[nt..], &u1)
        .ok_or("PIRLS failed at the optimum")?;
    let deviance = deviance_of(problem, &rows, &mode, &rule);
    let hessian = numeric_derivatives::hessian_parallel(
        &|phi: &[f64]| deviance_at(problem, phi, &u1, &rule).unwrap_or(f64::NAN),
        &second.x,
    );
    let approximation = if agq > 1 {
        format!("Adaptive Gauss-Hermite Quadrature, nAGQ = {agq}")
    } else {
        "Laplace Approximation".to_string()
    };
    let stages = Stages {
        first: &first,
        second: &second,
        deviance,
        hessian,
    };
    Ok(assemble(design, problem, &mode, stages, approximation))
}

/// lme4's start: 1 on the diagonals of each T, 0 below.
fn lme4_start(problem: &Problem) -> Vec<f64> {
    let mut start = Vec::new();
    for t in &problem.terms {
        for k in 0..t.ntheta() {
            start.push(if t.is_diagonal(k) { 1.0 } else { 0.0 });
        }
    }
    start
}

/// The deviance does not change when a column of T changes sign: make the diagonals
/// non-negative, as lme4 reports θ.
fn normalise(problem: &Problem, theta: &mut [f64]) {
    let mut at = 0;
    for t in &problem.terms {
        let n = t.ntheta();
        if t.correlated {
            let mut k = at;
            for j in 0..t.q {
                let len = t.q - j;
                if theta[k] < 0.0 {
                    theta[k..k + len].iter_mut().for_each(|v| *v = -*v);
                }
                k += len;
            }
        } else {
            theta[at..at + n].iter_mut().for_each(|v| *v = v.abs());
        }
        at += n;
    }
}

/// Plain IRLS (R's `glm`): β and its covariance (X'WX)⁻¹ at the optimum.
fn glm(design: &Design, problem: &Problem) -> Result<GlmmFit, String> {
    let rows = problem.u_rows(&[]);
    let beta0 = vec![0.0; problem.p];
    let mode = problem.pirls(&rows, &beta0, &[], true)?;
    let (_, inverse) = joint_factor_inverse(problem, &rows, &mode)?;
    let covariance = inverse;
    let loglik = -mode.aic / 2.0;
    let fit = fit_from(design, problem, &mode, &covariance, Vec::new(), loglik);
    let fit = Fit {
        optimization: summary_of(
            &mode.beta,
            2.0 * -loglik,
            mode.iterations,
            true,
            "IRLS (glm)",
        ),
        converged: true,
        iterations: mode.iterations,
        ..fit
    };
    Ok(GlmmFit {
        covariance: covariance.clone(),
        fit,
        approximation: "IRLS".into(),
    })
}

/// The inverse of the system bordered by X at the modes: its β block is σ²(R_X'R_X)⁻¹
/// (lme4's `use.hessian = FALSE`; glm's covariance without random terms).
fn joint_factor_inverse(
    problem: &Problem,
    rows: &URows,
    mode: &Mode,
) -> Result<((), DMatrix<f64>), String> {
    let joint = problem
        .pirls(rows, &mode.beta, &mode.u, true)
        .map_err(|e| format!("at the optimum: {e}"))?;
    let (_, dense) = joint.factor.inverse_blocks();
    let d = problem.dense_q;
    let p = problem.p;
    Ok(((), dense.view((d, d), (p, p)).into_owned()))
}

struct Stages<'a> {
    first: &'a Minimum,
    second: &'a Minimum,
    deviance: f64,
    hessian: DMatrix<f64>,
}

fn summary_of(
    optimum: &[f64],
    deviance: f64,
    evaluations: usize,
    converged: bool,
    name: &str,
) -> OptSummary {
    OptSummary {
        start: Vec::new(),
        optimum: optimum.to_vec(),
        deviance,
        evaluations,
        gradient_evaluations: 0,
        optimizer: name.to_string(),
        converged,
        gradient_norm: 0.0,
        hessian_positive_definite: converged,
        newton_decrement: 0.0,
        hessian: DMatrix::zeros(0, 0),
        unsettled: Vec::new(),
        warnings: Vec::new(),
    }
}

/// The fit at the optimum of the second stage.
fn assemble(
    design: &Design,
    problem: &Problem,
    mode: &Mode,
    stages: Stages,
    approximation: String,
) -> GlmmFit {
    let nt = problem.ntheta();
    let p = problem.p;
    let phi = &stages.second.x;
    let mut warnings = Vec::new();
    let cov_phi = match stages.hessian.clone().cholesky() {
        Some(chol) if stages.hessian.iter().all(|v| v.is_finite()) => chol.inverse() * 2.0,
        _ => {
            warnings.push(Diagnostic::warning(
                "the Hessian of the deviance is not positive definite at the optimum: the \
                 fixed effects' standard errors are from the final PIRLS step (lme4's \
                 use.hessian = FALSE) and the variance parameters have none",
                Location::None,
            ));
            let rows = problem.u_rows(&phi[..nt]);
            let mut c = DMatrix::from_element(nt + p, nt + p, f64::NAN);
            if let Ok((_, rx)) = joint_factor_inverse(problem, &rows, mode) {
                c.view_mut((nt, nt), (p, p)).copy_from(&rx);
            }
            c
        }
    };
    let beta_cov = cov_phi.view((nt, nt), (p, p)).into_owned();
    let loglik = -stages.deviance / 2.0;
    let mut fit = fit_from(design, problem, mode, &beta_cov, phi[..nt].to_vec(), loglik);
    let converged = stages.second.converged && stages.deviance.is_finite();
    if !converged {
        warnings.push(Diagnostic::warning(
            format!(
                "the optimizer did not converge: the deviance could still fall by about {:.2e}",
                stages.second.remaining
            ),
            Location::None,
        ));
    }
    if fit.singular {
        warnings.push(Diagnostic::warning(
            "boundary (singular) fit",
            Location::None,
        ));
    }
    fit.converged = converged;
    fit.warnings = warnings;
    fit.iterations = stages.first.evaluations + stages.second.evaluations;
    fit.optimization = OptSummary {
        hessian: stages.hessian.clone(),
        newton_decrement: (2.0 * stages.second.remaining.max(0.0)).sqrt(),
        ..summary_of(
            phi,
            stages.deviance,
            fit.iterations,
            converged,
            "Nelder-Mead over θ (nAGQ = 0), then Newton over (θ, β)",
        )
    };
    let covariance = table_covariance(problem, phi, &cov_phi);
    GlmmFit {
        fit,
        covariance,
        approximation,
    }
}

/// The covariance of the parameter table's rows (β, then per term the lower triangle of TT'
/// column by column, covariances only for correlated terms) by the delta method from Cov(θ, β).
fn table_covariance(problem: &Problem, phi: &[f64], cov_phi: &DMatrix<f64>) -> DMatrix<f64> {
    let nt = problem.ntheta();
    let p = problem.p;
    let mut jac_rows: Vec<Vec<f64>> = Vec::new();
    for j in 0..p {
        let mut r = vec![0.0; nt + p];
        r[nt + j] = 1.0;
        jac_rows.push(r);
    }
    let mut at = 0;
    for t in &problem.terms {
        let n = t.ntheta();
        let theta = &phi[at..at + n];
        let tm = t.factor(theta);
        // Position in θ of T[a, b] (None when T has no such free entry).
        let index = |a: usize, b: usize| -> Option<usize> {
            (0..n).find(|&k| {
                let mut e = vec![0.0; n];
                e[k] = 1.0;
                t.factor(&e)[(a, b)] != 0.0
            })
        };
        for j in 0..t.q {
            for i in j..t.q {
                if i != j && !t.correlated {
                    continue;
                }
                // Σ_ij = Σ_b T_ib T_jb; ∂/∂T_ab = δ_ia T_jb + δ_ja T_ib.
                let mut r = vec![0.0; nt + p];
                for b in 0..t.q {
                    if let Some(k) = index(i, b) {
                        r[at + k] += tm[(j, b)];
                    }
                    if let Some(k) = index(j, b) {
                        r[at + k] += tm[(i, b)];
                    }
                }
                jac_rows.push(r);
            }
        }
        at += n;
    }
    let jac = DMatrix::from_fn(jac_rows.len(), nt + p, |r, c| jac_rows[r][c]);
    &jac * cov_phi * jac.transpose()
}

/// The `Fit` at the modes: β with `beta_cov`, variance components from θ, conditional modes
/// and variances, logLik and information criteria (k = p + length(θ)).
fn fit_from(
    design: &Design,
    problem: &Problem,
    mode: &Mode,
    beta_cov: &DMatrix<f64>,
    theta: Vec<f64>,
    loglik: f64,
) -> Fit {
    let fixed = (design.fixed.iter().enumerate())
        .map(|(i, f)| FixedEstimate {
            equation: f.equation(),
            term: f.term().to_string(),
            label: f.label.clone(),
            estimate: mode.beta[i],
            se: beta_cov[(i, i)].sqrt(),
        })
        .collect();
    let factors = problem.factors(&theta);
    let random: Vec<VarianceComponent> = (design.random.iter().zip(&factors))
        .map(|(term, t)| VarianceComponent::of(term, t * t.transpose()))
        .collect();
    let (random_effects, random_effects_covariance) = conditional(problem, mode, &factors);
    let singular = (problem.terms.iter())
        .scan(0, |at, t| {
            let start = *at;
            *at += t.ntheta();
            Some((start, t))
        })
        .any(|(start, t)| {
            (0..t.ntheta()).any(|k| t.is_diagonal(k) && theta[start + k].abs() < SINGULAR_TOLERANCE)
        });
    let nobs = problem.n;
    let k = (problem.p + theta.len()) as f64;
    let deviance = -2.0 * loglik;
    let mut ngroups: Vec<(String, usize)> = Vec::new();
    for term in &design.random {
        if !ngroups.iter().any(|(n, _)| *n == term.name) {
            ngroups.push((term.name.clone(), term.levels.len()));
        }
    }
    Fit {
        method: Method::Ml,
        fixed,
        beta: nalgebra::DVector::from_vec(mode.beta.clone()),
        beta_covariance: beta_cov.clone(),
        theta: theta.clone(),
        sigma: 1.0,
        residual: Vec::new(),
        residual_correlation: None,
        random,
        random_effects,
        random_effects_covariance,
        loglik,
        deviance,
        aic: deviance + 2.0 * k,
        bic: deviance + k * (nobs as f64).ln(),
        nobs,
        ngroups,
        converged: true,
        singular,
        iterations: 0,
        gradient_evaluations: 0,
        warnings: Vec::new(),
        flat_directions: Vec::new(),
        varpar: theta,
        optimization: summary_of(&[], deviance, 0, true, ""),
    }
}

/// Per term, the conditional modes b = Tu per level and their conditional covariances
/// T (U'WU + I)⁻¹ T' (lme4's `condVar`, σ = 1).
type Conditional = (Vec<DMatrix<f64>>, Vec<Vec<DMatrix<f64>>>);

#[allow(clippy::needless_range_loop)] // l indexes the modes' rows, u and the blocks alike
fn conditional(problem: &Problem, mode: &Mode, factors: &[DMatrix<f64>]) -> Conditional {
    let (blocks, dense) = mode.factor.inverse_blocks();
    let (qb, nlb) = problem.blocked_shape();
    let mut modes = Vec::new();
    let mut covariances = Vec::new();
    for (k, term) in problem.terms.iter().enumerate() {
        let t = &factors[k];
        let q = term.q;
        let mut b = DMatrix::zeros(term.nlevels, q);
        let mut covs = Vec::with_capacity(term.nlevels);
        for l in 0..term.nlevels {
            let start = problem.position(k, l, 0);
            let u = nalgebra::DVector::from_column_slice(&mode.u[start..start + q]);
            let bl = t * u;
            b.row_mut(l).copy_from(&bl.transpose());
            let inv = if Some(k) == problem.blocked {
                blocks[l].clone()
            } else {
                let d = start - qb * nlb;
                dense.view((d, d), (q, q)).into_owned()
            };
            covs.push(t * inv * t.transpose());
        }
        modes.push(b);
        covariances.push(covs);
    }
    (modes, covariances)
}
