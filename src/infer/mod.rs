//! Inference from a fit: standard errors, degrees of freedom, t and p for fixed effects.
//!
//! Owns the tests of fixed effects (`fixed_effects`: which df — Satterthwaite's for mixed models
//! and residual-structure models, `n − p` for ordinary least squares, z for ML without random
//! effects — t, p and the CR2 alternative), the fitted values and residuals (`fitted`; a 0/1
//! outcome's binned residuals in `binned_residuals`), the
//! covariance the definitions' intervals use (`definition_covariance`), the
//! inference on defined quantities (`defined`: compilation and evaluation; `delta`; Monte Carlo
//! intervals in `monte_carlo`; `mediation`'s summary; `histogram`, the bins of draws or replicates
//! for figures), and the robust alternatives (`bootstrap`,
//! `cluster_robust`). It never fits a model except to refit a bootstrap replicate (`refit`),
//! which `bootstrap` is handed as a function.

pub mod binned_residuals;
pub mod bootstrap;
pub mod cluster_robust;
pub mod comparison;
pub mod defined;
pub mod defined_estimates;
pub mod definition_covariance;
pub mod delta;
pub mod draw_stream;
pub mod fitted;
pub mod fixed_effects;
pub mod histogram;
pub mod marginal_effect;
pub mod mediation;
pub mod monte_carlo;
pub mod refit;
// Moved to the ground floor (estimate uses it too); the old path still works.
pub use crate::numeric_derivatives;
pub mod satterthwaite;

use nalgebra::{DMatrix, DVector};
use statrs::distribution::{ContinuousCDF, StudentsT};

pub use defined::{compile, DefinedQuantities};
pub use defined_estimates::{estimate_defined, DefinedEstimate, IntervalMethod};
pub use mediation::{estimate_with_mediation, MediationSummary};
pub use monte_carlo::{monte_carlo, MonteCarloSettings};
pub use satterthwaite::{Satterthwaite, VarianceParameters};

/// Draws (or replicates) that each tail of a percentile interval needs before its limits mean
/// much: with fewer, a limit is an interpolation between a handful of order statistics.
pub const TAIL_DRAWS: f64 = 10.0;

/// The warning for a percentile interval at `level` from `draws` draws whose tails hold fewer
/// than `TAIL_DRAWS` draws each (`what`: "Monte Carlo draws", "bootstrap replicates").
pub fn thin_tails_warning(draws: usize, level: f64, what: &str) -> Option<String> {
    let tail = draws as f64 * (1.0 - level) / 2.0;
    (tail < TAIL_DRAWS).then(|| {
        let enough = (2.0 * TAIL_DRAWS / (1.0 - level)).ceil();
        format!(
            "{draws} {what} leave {tail:.1} in each tail of the {}% interval: its limits are \
             unstable; use at least {enough} for this level",
            100.0 * level
        )
    })
}

/// The test of one fixed effect.
#[derive(Debug, Clone, PartialEq)]
pub struct CoefficientTest {
    pub estimate: f64,
    pub se: f64,
    pub df: f64,
    pub t: f64,
    pub p: f64,
}

/// Two-sided p-value of a t statistic; `NaN` when `df` is not usable.
pub fn two_sided_p(t: f64, df: f64) -> f64 {
    if df == f64::INFINITY && t.is_finite() {
        // A z test (lavaan's, for ML fits without random effects).
        return match statrs::distribution::Normal::new(0.0, 1.0) {
            Ok(normal) => 2.0 * normal.cdf(-t.abs()),
            Err(_) => f64::NAN,
        };
    }
    if !(df.is_finite() && df > 0.0 && t.is_finite()) {
        return f64::NAN;
    }
    match StudentsT::new(0.0, 1.0, df) {
        Ok(dist) => 2.0 * dist.cdf(-t.abs()),
        Err(_) => f64::NAN,
    }
}

/// How the df of each coefficient is obtained.
pub enum DegreesOfFreedom<'a> {
    /// The same df for every coefficient: `n − p` for ordinary least squares (R's `lm`), or
    /// infinity for z tests (lavaan's ML regressions).
    Residual(f64),
    /// Satterthwaite's approximation (lmerTest).
    Satterthwaite(&'a Satterthwaite),
}

/// t tests of every coefficient of `beta` with covariance `covariance`.
pub fn coefficient_tests(
    beta: &DVector<f64>,
    covariance: &DMatrix<f64>,
    df: &DegreesOfFreedom,
) -> Vec<CoefficientTest> {
    (0..beta.len())
        .map(|k| {
            let se = covariance[(k, k)].sqrt();
            let t = beta[k] / se;
            let df = match df {
                DegreesOfFreedom::Residual(df) => *df,
                DegreesOfFreedom::Satterthwaite(s) => {
                    let mut contrast = DVector::zeros(beta.len());
                    contrast[k] = 1.0;
                    s.df(&contrast, covariance)
                }
            };
            CoefficientTest {
                estimate: beta[k],
                se,
                df,
                t,
                p: two_sided_p(t, df),
            }
        })
        .collect()
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn p_value_matches_r() {
        // R: print(2 * pt(-2.5, 17), digits = 15) = 0.0229478069863849
        assert!((two_sided_p(2.5, 17.0) - 0.022_947_806_986_384_9).abs() < 1e-12);
        assert!((two_sided_p(-2.5, 17.0) - 0.022_947_806_986_384_9).abs() < 1e-12);
        assert!(two_sided_p(1.0, 0.0).is_nan());
        // R: print(2 * pnorm(-1.96), digits = 15) = 0.0499957902964409
        let z = two_sided_p(1.96, f64::INFINITY);
        // statrs's erfc agrees with R to about 1e-10 relative here.
        assert!((z - 0.049_995_790_296_440_9).abs() < 1e-11, "{z}");
    }
}
