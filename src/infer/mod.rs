//! Inference from a fit: standard errors, degrees of freedom, t and p for fixed effects.
//!
//! Owns the tests of fixed effects (Satterthwaite's df for mixed models and residual-structure
//! models, `n − p` for ordinary least squares) and the numerical derivatives they need, and the
//! inference on defined quantities (`defined`: compilation and evaluation; `delta`; Monte Carlo
//! intervals in `monte_carlo`; `mediation`'s summary). It must not refit: it only evaluates
//! functions the fit hands it.

pub mod defined;
pub mod defined_estimates;
pub mod delta;
pub mod mediation;
pub mod monte_carlo;
pub mod numeric_derivatives;
pub mod satterthwaite;

use nalgebra::{DMatrix, DVector};
use statrs::distribution::{ContinuousCDF, StudentsT};

pub use defined::{compile, DefinedQuantities};
pub use defined_estimates::{estimate_defined, DefinedEstimate, IntervalMethod};
pub use mediation::{estimate_with_mediation, MediationSummary};
pub use monte_carlo::{monte_carlo, MonteCarloSettings};
pub use satterthwaite::{Satterthwaite, VarianceParameters};

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
    /// Ordinary least squares: `n − p` for every coefficient (R's `lm`).
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
    }
}
