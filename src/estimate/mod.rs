//! Estimation: the profiled ML/REML deviance over the covariance parameters, its minimization and
//! the resulting fit. It must not touch rows: everything comes from `design`'s sufficient
//! statistics.
