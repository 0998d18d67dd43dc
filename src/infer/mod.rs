//! Inference from a fit: standard errors, Satterthwaite degrees of freedom, t and p for fixed
//! effects. It must not refit.
