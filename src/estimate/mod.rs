//! Estimation: the profiled ML/REML deviance over the covariance parameters, its minimization and
//! the resulting fit, and the asymptotic covariance of every parameter at the optimum. It must
//! not touch rows: everything comes from `design`'s sufficient statistics.

mod dense;
mod deviance;
mod fit;
mod glmm;
mod information;
mod latent_predictor;
mod optimize;
mod parameter_table;

pub(crate) use dense::semidefinite_cholesky;
pub use deviance::{beta_covariance, DevianceError, Evaluation, LogDiagonal, ProfiledDeviance};
pub use fit::{
    fit, fit_from, fit_with_deviance, Fit, FixedEstimate, FlatDirection, ResidualCorrelation,
    ResidualEstimate, VarianceComponent, SINGULAR_TOLERANCE,
};
pub use glmm::{fit_glmm, FamilyColumns, GlmmFit, Response, MAX_DENSE_EFFECTS};
pub use information::{parameter_covariance, parameter_covariance_generalized, RawLikelihood};
pub use latent_predictor::{fit_latent, fit_latent_estimates, LatentFit};
pub use optimize::{minimize, minimize_from, OptSummary};
