//! The tests of the fixed effects a report prints: which df (`n − p` for ordinary least
//! squares under REML, z under ML without random effects or for the joint fit of a random
//! coefficient as a predictor, Satterthwaite's otherwise), the t statistics and p-values, and
//! the CR2 cluster-robust alternative (`--se cr2`). Owns the choice of df; must not fit or
//! render anything.

use nalgebra::DMatrix;

use super::cluster_robust::{cluster_robust, Adjustment};
use super::{
    coefficient_tests, two_sided_p, CoefficientTest, DegreesOfFreedom, Satterthwaite,
    VarianceParameters,
};
use crate::design::{self, Design};
use crate::diagnostics::{Diagnostic, Location};
use crate::estimate::{Fit, ProfiledDeviance};
use crate::model::{Method, ModelSpec};
use crate::prepare::AnalysisFrame;

/// z tests from the covariance of all parameters, as Mplus and lavaan report them for a joint
/// ML fit (a random coefficient as a predictor).
pub fn z_tests(fit: &Fit) -> Vec<CoefficientTest> {
    coefficient_tests(
        &fit.beta,
        &fit.beta_covariance,
        &DegreesOfFreedom::Residual(f64::INFINITY),
    )
}

/// The fixed-effect tests with CR2 cluster-robust SEs and clubSandwich's Satterthwaite df, and
/// how they were computed (for the report's header).
#[derive(Debug, Clone, PartialEq)]
pub struct RobustTests {
    pub tests: Vec<CoefficientTest>,
    pub note: String,
}

/// The warning that `--se cr2` could not be honoured, and why: the model-based tests stand.
pub fn robust_unavailable(why: &str) -> Diagnostic {
    Diagnostic::warning(
        format!("--se cr2 not available ({why}); the standard errors are model-based"),
        Location::None,
    )
}

/// The fixed-effect tests with CR2 cluster-robust SEs and clubSandwich's Satterthwaite df in
/// place of the model-based ones, and a note saying so; or the warning why they are not
/// available.
pub fn robust_tests(
    spec: &ModelSpec,
    frame: &AnalysisFrame,
    design: &Design,
    fit: &Fit,
    tests: &[CoefficientTest],
) -> Result<RobustTests, Diagnostic> {
    let rows = design::observation_rows(spec, frame).map_err(|d| {
        robust_unavailable(d.first().map_or("no observations", |d| d.message.as_str()))
    })?;
    let names: Vec<String> = design.random.iter().map(|t| t.name.clone()).collect();
    let robust = cluster_robust(&rows, fit, &names, Adjustment::Cr2)
        .map_err(|e| robust_unavailable(&e.0))?;
    let se = robust.se();
    let tests = tests
        .iter()
        .zip(se.iter().zip(&robust.df))
        .map(|(t, (&se, &df))| {
            let statistic = t.estimate / se;
            CoefficientTest {
                estimate: t.estimate,
                se,
                df,
                t: statistic,
                p: two_sided_p(statistic, df),
            }
        })
        .collect();
    let note = format!(
        "CR2 cluster-robust over {} ({} clusters), Satterthwaite df (clubSandwich)",
        robust.cluster, robust.clusters
    );
    Ok(RobustTests { tests, note })
}

/// The fitted deviance seen as a function of lmerTest's variance parameters.
struct FittedVariance<'a> {
    deviance: &'a ProfiledDeviance,
    fit: &'a Fit,
}

impl VarianceParameters for FittedVariance<'_> {
    fn varpar(&self) -> Vec<f64> {
        self.fit.varpar.clone()
    }
    fn deviance_at(&self, varpar: &[f64]) -> f64 {
        self.deviance.deviance_at(varpar).unwrap_or(f64::NAN)
    }
    fn beta_covariance_at(&self, varpar: &[f64]) -> DMatrix<f64> {
        let p = self.fit.beta.len();
        self.deviance
            .beta_covariance_at(varpar)
            .unwrap_or_else(|_| DMatrix::from_element(p, p, f64::NAN))
    }
    /// From the optimizer's Hessian of the profiled criterion (differences of its exact
    /// gradient) and one gradient of log r².
    fn deviance_hessian(&self) -> Option<DMatrix<f64>> {
        let opt = &self.fit.optimization;
        if !opt.converged || opt.hessian.iter().any(|v| !v.is_finite()) {
            return None;
        }
        self.deviance
            .explicit_sigma_hessian(&opt.optimum, &opt.hessian)
            .ok()
    }
    fn beta_covariance_jacobian(&self) -> Option<Vec<DMatrix<f64>>> {
        self.deviance
            .beta_covariance_jacobian(&self.fit.varpar)
            .ok()
            .filter(|j| j.iter().all(|m| m.iter().all(|v| v.is_finite())))
    }
}

/// t tests of the fixed effects: without random terms and with one residual variance per
/// equation, `n − p` df under REML (R's `lm`) and z tests under ML (lavaan's regressions, whose
/// ML standard errors they are); Satterthwaite otherwise (lmerTest's method, which for one
/// residual variance per group is Welch's).
pub fn fixed_effect_tests(
    design: &Design,
    fit: &Fit,
    deviance: &ProfiledDeviance,
    method: Method,
    warnings: &mut Vec<String>,
) -> Vec<CoefficientTest> {
    let ordinary = design.random.is_empty() && design.classes.iter().all(|c| c.level.is_none());
    if ordinary {
        let df = match method {
            Method::Reml => (fit.nobs as f64) - (fit.beta.len() as f64),
            Method::Ml => f64::INFINITY,
        };
        return coefficient_tests(
            &fit.beta,
            &fit.beta_covariance,
            &DegreesOfFreedom::Residual(df),
        );
    }
    let variance = FittedVariance { deviance, fit };
    let satterthwaite = Satterthwaite::new(&variance);
    warnings.extend(satterthwaite.warnings.iter().cloned());
    coefficient_tests(
        &fit.beta,
        &fit.beta_covariance,
        &DegreesOfFreedom::Satterthwaite(&satterthwaite),
    )
}
