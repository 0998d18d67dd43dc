//! The fit: what estimation hands to inference and the report (β, Cov(β), θ, σ, relative
//! residual SDs, variance components, likelihood and information criteria, convergence).
//!
//! Owns turning an optimum of the profiled deviance into lme4's quantities. It must not touch
//! rows or optimize.

use nalgebra::{DMatrix, DVector};

use crate::design::{Design, RandomTerm};
use crate::diagnostics::{Diagnostic, Location};
use crate::model::Method;

use super::deviance::{beta_covariance, Conditional, DevianceError, Evaluation, ProfiledDeviance};
use super::optimize::{minimize_from, OptSummary};

/// lme4's `isSingular` tolerance on the diagonal of T.
pub const SINGULAR_TOLERANCE: f64 = 1e-4;

#[derive(Debug, Clone)]
pub struct Fit {
    pub method: Method,
    pub fixed: Vec<FixedEstimate>,
    pub beta: DVector<f64>,
    /// σ²(R_X'R_X)⁻¹, lme4's `vcov`.
    pub beta_covariance: DMatrix<f64>,
    /// lme4's θ (relative Cholesky factors, lower triangle column-major per term).
    pub theta: Vec<f64>,
    pub sigma: f64,
    /// Per residual class; the first has δ = 1 and SD σ.
    pub residual: Vec<ResidualEstimate>,
    /// With `residual correlated within unit`: the residuals' correlation within a unit.
    pub residual_correlation: Option<ResidualCorrelation>,
    /// Per random term, in the design's order.
    pub random: Vec<VarianceComponent>,
    /// Conditional modes of the random effects (lme4's `ranef`): per term, a row per level (in
    /// `Design::random[k].levels` order), a column per effect.
    pub random_effects: Vec<DMatrix<f64>>,
    /// Their conditional covariances given the data, β held at β̂ (lme4's `condVar`): per term,
    /// a q×q matrix per level in the order of `random_effects`' rows. Empty when the fit cannot
    /// provide them.
    pub random_effects_covariance: Vec<Vec<DMatrix<f64>>>,
    pub loglik: f64,
    /// −2 log L for ML; the REML criterion for REML.
    pub deviance: f64,
    pub aic: f64,
    pub bic: f64,
    pub nobs: usize,
    /// Grouping factor name → number of levels, in the order of the terms (names once).
    pub ngroups: Vec<(String, usize)>,
    pub converged: bool,
    pub singular: bool,
    /// Criterion evaluations the optimizer used (lme4's `optinfo$feval`), those with a
    /// gradient included.
    pub iterations: usize,
    /// How many of them also computed the gradient.
    pub gradient_evaluations: usize,
    /// Convergence, a singular fit, flat directions: warnings with no place in the model text
    /// (this stage has none; the pipeline locates flat directions at their random terms).
    pub warnings: Vec<Diagnostic>,
    /// The directions along which the criterion is flat at the optimum (also in `warnings`).
    pub flat_directions: Vec<FlatDirection>,
    /// `(θ, σ, log δ…, ρ's unconstrained value)`: the argument of `ProfiledDeviance::deviance_at` at the optimum.
    pub varpar: Vec<f64>,
    pub optimization: OptSummary,
}

/// Curvature, relative to the largest, below which a direction of the Hessian at the optimum is
/// taken for flat.
const FLAT_CURVATURE: f64 = 1e-6;

/// A null direction of the information at the optimum: the parameters the data do not identify.
#[derive(Debug, Clone, PartialEq)]
pub struct FlatDirection {
    /// The warning, as it appears in `Fit::warnings`.
    pub message: String,
    /// The random terms (indices into `Design::random`) whose θ entries carry weight in it, so
    /// that a caller with the model's text can locate the warning.
    pub terms: Vec<usize>,
}

#[derive(Debug, Clone, PartialEq)]
pub struct FixedEstimate {
    pub equation: usize,
    /// R's name of the (first) column the parameter multiplies.
    pub term: String,
    pub label: Option<String>,
    pub estimate: f64,
    pub se: f64,
}

#[derive(Debug, Clone, PartialEq)]
pub struct ResidualEstimate {
    pub equation: usize,
    pub level: Option<String>,
    /// Residual SD relative to σ (the first class's is 1).
    pub delta: f64,
    pub sd: f64,
    pub variance: f64,
}

/// Compound symmetry within the units of one column (nlme's `corCompSymm`).
#[derive(Debug, Clone, PartialEq)]
pub struct ResidualCorrelation {
    /// The unit column (compound symmetry) or the series column (AR(1)).
    pub unit: String,
    pub rho: f64,
    /// AR(1) within series (nlme's corAR1; `rho` is φ) rather than compound symmetry.
    pub ar1: bool,
}

#[derive(Debug, Clone, PartialEq)]
pub struct VarianceComponent {
    pub group: String,
    /// (equation, R's effect name) per effect.
    pub effects: Vec<(usize, String)>,
    /// σ²TT'.
    pub covariance: DMatrix<f64>,
    pub sd: Vec<f64>,
    pub correlation: DMatrix<f64>,
}

impl VarianceComponent {
    /// The component of `term` with covariance `covariance`: its SDs and correlations.
    pub fn of(term: &RandomTerm, covariance: DMatrix<f64>) -> Self {
        let sd: Vec<f64> = covariance.diagonal().iter().map(|v| v.sqrt()).collect();
        let q = sd.len();
        let correlation = DMatrix::from_fn(q, q, |i, j| {
            if i == j {
                1.0
            } else {
                covariance[(i, j)] / (sd[i] * sd[j])
            }
        });
        VarianceComponent {
            group: term.name.clone(),
            effects: term.effects.clone(),
            covariance,
            sd,
            correlation,
        }
    }
}

/// Fit `design` by ML or REML: build the profiled deviance, minimize it, read off the fit.
pub fn fit(design: &Design, method: Method) -> Result<Fit, Vec<Diagnostic>> {
    fit_from(design, method, None)
}

/// `fit`, with the optimizer also trying `warm` (θ, log δ) as a start: a bootstrap replicate
/// starts from the original data's optimum (`Fit::optimization.optimum`).
pub fn fit_from(
    design: &Design,
    method: Method,
    warm: Option<&[f64]>,
) -> Result<Fit, Vec<Diagnostic>> {
    fit_with_deviance(design, method, warm).map(|(fit, _)| fit)
}

/// `fit_from`, also handing back the profiled deviance it minimized, for inference at the fit
/// (Satterthwaite df) without building it again: with thousands of crossed levels its
/// construction costs as much as a few evaluations.
pub fn fit_with_deviance(
    design: &Design,
    method: Method,
    warm: Option<&[f64]>,
) -> Result<(Fit, ProfiledDeviance), Vec<Diagnostic>> {
    let deviance = ProfiledDeviance::new(design, method);
    let opt = optimize(&deviance, method, warm)?;
    let Conditional {
        evaluation: e,
        modes: random_effects,
        covariances,
    } = deviance
        .conditional(&opt.optimum)
        .map_err(|e| vec![evaluation_error(&e)])?;
    let criterion = deviance.criterion(&e);
    let sigma2 = deviance.sigma2(&e);
    let sigma = sigma2.sqrt();
    let random_effects_covariance = covariances
        .into_iter()
        .map(|levels| levels.into_iter().map(|v| v * sigma2).collect())
        .collect();
    let beta_cov = beta_covariance(&e, sigma2);
    let ntheta = deviance.ntheta();
    let theta = opt.optimum[..ntheta].to_vec();
    // log δ per class after the first, then ρ's unconstrained value if any.
    let log_delta = &opt.optimum[ntheta..];
    let residual_correlation = residual_correlation(design, &deviance, &opt.optimum);
    let fixed = fixed_estimates(design, &e, &beta_cov);
    let residual = residual_estimates(design, log_delta, sigma2);
    let random = variance_components(design, &deviance, &theta, sigma2);
    let singular = deviance
        .diagonal_indices()
        .iter()
        .any(|&i| theta[i].abs() < SINGULAR_TOLERANCE);

    let nobs = deviance.nobs();
    let k = (deviance.p() + deviance.nparams() + 1) as f64;
    let loglik = -criterion / 2.0;
    let (warnings, flat) = fit_warnings(design, &deviance, &opt, singular);
    let mut varpar = theta.clone();
    varpar.push(sigma);
    varpar.extend_from_slice(log_delta);

    Ok((
        Fit {
            method,
            fixed,
            beta: e.beta.clone(),
            beta_covariance: beta_cov,
            theta,
            sigma,
            residual,
            residual_correlation,
            random,
            random_effects,
            random_effects_covariance,
            loglik,
            deviance: criterion,
            aic: criterion + 2.0 * k,
            bic: criterion + k * (nobs as f64).ln(),
            nobs,
            ngroups: group_counts(design),
            converged: opt.converged,
            singular,
            iterations: opt.evaluations,
            gradient_evaluations: opt.gradient_evaluations,
            warnings,
            flat_directions: flat,
            varpar,
            optimization: opt,
        },
        deviance,
    ))
}

/// The optimizer's run on `deviance`, or why the criterion cannot be minimized.
fn optimize(
    deviance: &ProfiledDeviance,
    method: Method,
    warm: Option<&[f64]>,
) -> Result<OptSummary, Vec<Diagnostic>> {
    if method == Method::Reml && deviance.nobs() <= deviance.p() {
        return Err(vec![Diagnostic::error(
            format!(
                "REML needs more observations ({}) than fixed effects ({})",
                deviance.nobs(),
                deviance.p()
            ),
            Location::None,
        )]);
    }
    let opt = minimize_from(deviance, warm);
    if !opt.deviance.is_finite() {
        // Where the criterion cannot be evaluated at lme4's start either (X rank deficient, say),
        // that is the reason to give.
        deviance
            .evaluate(&deviance.start())
            .map_err(|e| vec![evaluation_error(&e)])?;
    }
    Ok(opt)
}

/// Compound symmetry's ρ (or AR(1)'s φ) at the optimum `x`, with its unit (series) column, if
/// the model has one.
fn residual_correlation(
    design: &Design,
    deviance: &ProfiledDeviance,
    x: &[f64],
) -> Option<ResidualCorrelation> {
    if let Some(a) = &design.stats.ar1 {
        return deviance.correlation(x).map(|rho| ResidualCorrelation {
            unit: a.series.clone(),
            rho,
            ar1: true,
        });
    }
    design
        .stats
        .within
        .as_ref()
        .zip(deviance.correlation(x))
        .map(|(w, rho)| ResidualCorrelation {
            unit: w.unit.clone(),
            rho,
            ar1: false,
        })
}

/// β̂ with their standard errors, one row per fixed column.
fn fixed_estimates(design: &Design, e: &Evaluation, beta_cov: &DMatrix<f64>) -> Vec<FixedEstimate> {
    design
        .fixed
        .iter()
        .enumerate()
        .map(|(i, f)| FixedEstimate {
            equation: f.equation(),
            term: f.term().to_string(),
            label: f.label.clone(),
            estimate: e.beta[i],
            se: beta_cov[(i, i)].sqrt(),
        })
        .collect()
}

/// Each residual class's δ, SD and variance.
fn residual_estimates(design: &Design, log_delta: &[f64], sigma2: f64) -> Vec<ResidualEstimate> {
    let sigma = sigma2.sqrt();
    design
        .classes
        .iter()
        .enumerate()
        .map(|(c, class)| {
            let delta = if c == 0 { 1.0 } else { log_delta[c - 1].exp() };
            ResidualEstimate {
                equation: class.equation,
                level: class.level.clone(),
                delta,
                sd: sigma * delta,
                variance: sigma2 * delta * delta,
            }
        })
        .collect()
}

/// Each random term's covariance σ²TT', SDs and correlations.
fn variance_components(
    design: &Design,
    deviance: &ProfiledDeviance,
    theta: &[f64],
    sigma2: f64,
) -> Vec<VarianceComponent> {
    design
        .random
        .iter()
        .enumerate()
        .map(|(k, term)| {
            let t = deviance.factor(k, theta);
            VarianceComponent::of(term, &t * t.transpose() * sigma2)
        })
        .collect()
}

/// Grouping factor name → number of levels, in the order of the terms (names once).
fn group_counts(design: &Design) -> Vec<(String, usize)> {
    let mut ngroups: Vec<(String, usize)> = Vec::new();
    for term in &design.random {
        if !ngroups.iter().any(|(n, _)| *n == term.name) {
            ngroups.push((term.name.clone(), term.levels.len()));
        }
    }
    ngroups
}

/// The fit's warnings (convergence, a singular fit, flat directions) and its flat directions.
fn fit_warnings(
    design: &Design,
    deviance: &ProfiledDeviance,
    opt: &OptSummary,
    singular: bool,
) -> (Vec<Diagnostic>, Vec<FlatDirection>) {
    let names = parameter_names(design, deviance);
    let mut warnings: Vec<Diagnostic> = if opt.converged {
        opt.warnings.clone()
    } else {
        vec![Diagnostic::warning(
            unsettled_warning(opt, &names),
            Location::None,
        )]
    };
    if singular {
        warnings.push(singular_fit_warning());
    }
    let flat = flat_directions(opt, &names, deviance);
    warnings.extend(
        flat.iter()
            .map(|f| Diagnostic::warning(f.message.clone(), Location::None)),
    );
    (warnings, flat)
}

/// lme4's `isSingular`: a variance at zero or a correlation at ±1.
pub(super) fn singular_fit_warning() -> Diagnostic {
    Diagnostic::warning("boundary (singular) fit", Location::None)
}

/// A reader's name for each optimizer parameter (θ entry, log δ of a class, ρ).
fn parameter_names(design: &Design, deviance: &ProfiledDeviance) -> Vec<String> {
    let mut names = Vec::with_capacity(deviance.nparams());
    for (k, r, c) in deviance.theta_entries() {
        let term = &design.random[k];
        let effect = |i: usize| term.effects[i].1.as_str();
        names.push(if r == c {
            format!("θ[{}: {}]", term.name, effect(r))
        } else {
            format!("θ[{}: {} with {}]", term.name, effect(r), effect(c))
        });
    }
    for class in design.classes.iter().skip(1) {
        names.push(format!(
            "the residual SD ratio of {}",
            class.level.as_deref().unwrap_or("a residual class")
        ));
    }
    if deviance.ncorrelation() > 0 {
        names.push("the residual correlation".to_string());
    }
    names
}

/// The optimizer's failure, naming the parameters that had not settled and by how much.
fn unsettled_warning(opt: &OptSummary, names: &[String]) -> String {
    let name = |i: usize| {
        names
            .get(i)
            .cloned()
            .unwrap_or_else(|| format!("parameter {i}"))
    };
    let moving: Vec<String> = opt
        .unsettled
        .iter()
        .take(4)
        .map(|&(i, step)| format!("{} (would still move by {step:.2e})", name(i)))
        .collect();
    let remaining = opt.newton_decrement.powi(2) / 2.0;
    if moving.is_empty() {
        format!(
            "the optimizer did not converge: the criterion could still fall by about \
             {remaining:.2e}"
        )
    } else {
        format!(
            "the optimizer did not converge: {} had not settled; the criterion could still \
             fall by about {remaining:.2e}",
            moving.join(", ")
        )
    }
}

/// Directions along which the criterion is flat at the optimum (the observed information's null
/// directions): the parameters with weight in them are not identified by the data.
fn flat_directions(
    opt: &OptSummary,
    names: &[String],
    deviance: &ProfiledDeviance,
) -> Vec<FlatDirection> {
    let h = &opt.hessian;
    if !opt.converged || h.nrows() == 0 || h.iter().any(|v| !v.is_finite()) {
        return Vec::new();
    }
    let theta_terms: Vec<usize> = deviance.theta_entries().iter().map(|e| e.0).collect();
    let eigen = nalgebra::SymmetricEigen::new(h.clone());
    let largest = eigen.eigenvalues.iter().fold(0.0f64, |a, v| a.max(v.abs()));
    let mut out = Vec::new();
    for (k, &lambda) in eigen.eigenvalues.iter().enumerate() {
        // The Hessian is differenced from exact gradients with steps h ≈ 1e-4 (standardised), so
        // a direction that is exactly flat shows a curvature of order h² times the largest one
        // (the same grouping entered twice gives 1.6e-8): below 1e-6 of it is flat.
        if lambda.abs() > FLAT_CURVATURE * largest.max(1e-300) {
            continue;
        }
        let v = eigen.eigenvectors.column(k);
        let weighty: Vec<usize> = (0..v.len()).filter(|&i| v[i].abs() >= 0.3).collect();
        let involved: Vec<String> = weighty
            .iter()
            .map(|&i| {
                names
                    .get(i)
                    .cloned()
                    .unwrap_or_else(|| format!("parameter {i}"))
            })
            .collect();
        if involved.is_empty() {
            continue;
        }
        let mut terms: Vec<usize> = weighty
            .iter()
            .filter_map(|&i| theta_terms.get(i).copied())
            .collect();
        terms.dedup();
        out.push(FlatDirection {
            message: format!(
                "the likelihood is flat along {}: the data do not identify {} (a null direction \
                 of the information matrix)",
                involved.join(" and "),
                if involved.len() == 1 {
                    "it"
                } else {
                    "their combination"
                }
            ),
            terms,
        });
    }
    out
}

fn evaluation_error(e: &DevianceError) -> Diagnostic {
    match e {
        // `design` has already ruled out exact dependence, so what reaches here is numerical:
        // columns on wildly different scales.
        DevianceError::FixedRankDeficient => Diagnostic::error(
            "the fixed-effect design is rank deficient (a column is constant, duplicated or a \
             combination of others), or the outcome is fitted exactly by the fixed effects",
            Location::None,
        )
        .with_hint(
            "if no column repeats another, their scales may differ by many orders of magnitude: \
             rescale the largest (e.g. `let x_k = x / 1e6`)",
        ),
        DevianceError::WrongLength { expected, got } => Diagnostic::error(
            format!("internal: {got} covariance parameters given, {expected} expected"),
            Location::None,
        ),
        DevianceError::NonFinite => Diagnostic::error(
            "the deviance could not be evaluated (non-finite data or parameters)",
            Location::None,
        ),
    }
}
