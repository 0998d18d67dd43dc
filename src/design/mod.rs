//! The design of a model on an analysis frame: fixed-effect columns with R's term names,
//! random-effect terms per grouping factor, residual classes, and the sufficient statistics the
//! likelihood needs, accumulated in one pass over the rows.
//!
//! It must not optimize anything; after it, nothing touches rows again.
