//! Estimation: the profiled ML/REML deviance over the covariance parameters, its minimization and
//! the resulting fit. It must not touch rows: everything comes from `design`'s sufficient
//! statistics.

mod dense;
mod deviance;
mod fit;
mod optimize;

pub use deviance::{beta_covariance, DevianceError, Evaluation, ProfiledDeviance};
pub use fit::{
    fit, Fit, FixedEstimate, ResidualCorrelation, ResidualEstimate, VarianceComponent,
    SINGULAR_TOLERANCE,
};
pub use optimize::{minimize, OptSummary};
