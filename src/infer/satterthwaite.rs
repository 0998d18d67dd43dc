//! Satterthwaite degrees of freedom for linear combinations of fixed effects, as lmerTest
//! computes them.
//!
//! Owns the recipe: the covariance of the variance parameters is twice the inverse Hessian of the
//! deviance (a Moore–Penrose inverse over eigenvalues above 1e-8, as lmerTest), and the
//! gradient of `Var(c'β)` with respect to the variance parameters comes from the Jacobian of
//! `Cov(β)`; then `df = 2 Var(c'β)² / (g' A g)`. It must not fit: it only evaluates the
//! functions the fit hands it near the optimum.

use nalgebra::{DMatrix, DVector, SymmetricEigen};

use crate::numeric_derivatives::{hessian_parallel, jacobian_parallel};

/// What a fitted model exposes about its variance parameters for Satterthwaite's method.
///
/// `varpar` is lmerTest's vector: the covariance parameters θ, the residual SD σ, and any
/// further residual-structure parameters. The two functions must be evaluated with β at its
/// conditional optimum given the variance parameters (lmerTest's `devfun_vp`, `get_covbeta`).
pub trait VarianceParameters: Sync {
    fn varpar(&self) -> Vec<f64>;
    /// The ML or REML deviance at `varpar` (σ explicit, β profiled).
    fn deviance_at(&self, varpar: &[f64]) -> f64;
    /// `Cov(β̂)` at `varpar`.
    fn beta_covariance_at(&self, varpar: &[f64]) -> DMatrix<f64>;
    /// The deviance's Hessian at `varpar()` when the model knows it more cheaply (or more
    /// accurately) than second differences of `deviance_at` give it.
    fn deviance_hessian(&self) -> Option<DMatrix<f64>> {
        None
    }
    /// ∂Cov(β̂)/∂varpar_k at `varpar()`, one matrix per variance parameter, when the model knows
    /// it exactly (otherwise Richardson differences of `beta_covariance_at`).
    fn beta_covariance_jacobian(&self) -> Option<Vec<DMatrix<f64>>> {
        None
    }
}

/// The ingredients of Satterthwaite's approximation, computed once per fit.
#[derive(Debug, Clone)]
pub struct Satterthwaite {
    /// Asymptotic covariance of the variance parameters.
    pub varpar_covariance: DMatrix<f64>,
    /// ∂Cov(β)/∂varpar_k, one matrix per variance parameter.
    pub jacobians: Vec<DMatrix<f64>>,
    /// Eigenvalues of the Hessian that were negative or near zero (lmerTest warns about them).
    pub warnings: Vec<String>,
}

/// lmerTest's tolerance for eigenvalues of the deviance Hessian.
const EIGEN_TOLERANCE: f64 = 1e-8;
/// Negative eigenvalues smaller than this fraction of the largest are rounding.
const NEGATIVE_RELATIVE: f64 = 1e-6;

impl Satterthwaite {
    pub fn new(model: &dyn VarianceParameters) -> Self {
        let at = model.varpar();
        // Hundreds of deviance evaluations: in parallel, each one sequential (same digits for any
        // number of threads).
        let hess = model
            .deviance_hessian()
            .unwrap_or_else(|| hessian_parallel(&|v| model.deviance_at(v), &at));
        let jacobians = model
            .beta_covariance_jacobian()
            .filter(|j| j.len() == at.len())
            .unwrap_or_else(|| {
                let p = model.beta_covariance_at(&at).nrows();
                let jac = jacobian_parallel(
                    &|v| {
                        let cov = model.beta_covariance_at(v);
                        DVector::from_iterator(p * p, cov.iter().copied())
                    },
                    &at,
                );
                (0..at.len())
                    .map(|k| DMatrix::from_iterator(p, p, jac.column(k).iter().copied()))
                    .collect()
            });

        let eigen = SymmetricEigen::new(hess);
        let mut warnings = Vec::new();
        // Negative only beyond what differences of the gradient can resolve (the optimizer's
        // verdict uses the same relative cut): along a flat direction the Hessian's eigenvalue is
        // zero up to rounding of either sign, and "not at a minimum" would contradict the fit's
        // verdict; such an eigenvalue counts as close to zero.
        let largest = eigen.eigenvalues.iter().fold(0.0f64, |a, e| a.max(e.abs()));
        let resolved = EIGEN_TOLERANCE.max(NEGATIVE_RELATIVE * largest);
        let negative = eigen.eigenvalues.iter().filter(|&&e| e < -resolved).count();
        let zero = eigen
            .eigenvalues
            .iter()
            .filter(|&&e| e.abs() <= EIGEN_TOLERANCE || (e < 0.0 && e >= -resolved))
            .count();
        if negative > 0 {
            warnings.push(format!(
                "the Hessian of the deviance has {negative} negative eigenvalue(s): the fit may not be at a minimum"
            ));
        }
        if zero > 0 {
            warnings.push(format!(
                "the Hessian of the deviance has {zero} eigenvalue(s) close to zero: Satterthwaite df may be unreliable"
            ));
        }
        let n = at.len();
        let mut inverse = DMatrix::zeros(n, n);
        for (k, &value) in eigen.eigenvalues.iter().enumerate() {
            if value > EIGEN_TOLERANCE {
                let v = eigen.eigenvectors.column(k);
                inverse += (v * v.transpose()) / value;
            }
        }
        Satterthwaite {
            varpar_covariance: inverse * 2.0,
            jacobians,
            warnings,
        }
    }

    /// Satterthwaite df of `c'β`, given `Cov(β̂)` at the optimum.
    pub fn df(&self, contrast: &DVector<f64>, beta_covariance: &DMatrix<f64>) -> f64 {
        let variance = contrast.dot(&(beta_covariance * contrast));
        let gradient = DVector::from_iterator(
            self.jacobians.len(),
            self.jacobians
                .iter()
                .map(|jac| contrast.dot(&(jac * contrast))),
        );
        let denominator = gradient.dot(&(&self.varpar_covariance * &gradient));
        2.0 * variance * variance / denominator
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    /// Two independent normal samples with their own variances, REML: Satterthwaite's df for
    /// the difference of means must be Welch's df, which is known in closed form.
    struct TwoGroups {
        ss: [f64; 2],
        n: [f64; 2],
    }

    impl VarianceParameters for TwoGroups {
        fn varpar(&self) -> Vec<f64> {
            // REML estimates of the two SDs.
            (0..2)
                .map(|g| (self.ss[g] / (self.n[g] - 1.0)).sqrt())
                .collect()
        }
        fn deviance_at(&self, v: &[f64]) -> f64 {
            (0..2)
                .map(|g| (self.n[g] - 1.0) * (v[g] * v[g]).ln() + self.ss[g] / (v[g] * v[g]))
                .sum()
        }
        fn beta_covariance_at(&self, v: &[f64]) -> DMatrix<f64> {
            DMatrix::from_diagonal(&DVector::from_vec(vec![
                v[0] * v[0] / self.n[0],
                v[1] * v[1] / self.n[1],
            ]))
        }
    }

    #[test]
    fn welch_df_for_a_difference_of_means() {
        let model = TwoGroups {
            ss: [31.0, 95.0],
            n: [12.0, 20.0],
        };
        let s = Satterthwaite::new(&model);
        let at = model.varpar();
        let cov = model.beta_covariance_at(&at);
        let df = s.df(&DVector::from_vec(vec![-1.0, 1.0]), &cov);
        let (a, b) = (cov[(0, 0)], cov[(1, 1)]);
        let welch = (a + b).powi(2) / (a * a / 11.0 + b * b / 19.0);
        assert!((df - welch).abs() < 1e-6 * welch, "{df} vs {welch}");
    }
}
