//! The distribution of an outcome given the random effects, and its link (a `family`
//! statement): Gaussian with the identity link unless the file says otherwise. Owns the names
//! of families and links, which links each family takes, and the binomial trials / Poisson
//! offset columns; it must not evaluate a likelihood (that is `estimate`'s).

use serde::Serialize;

use crate::diagnostics::Span;

/// An equation's family: the conditional distribution of its outcome and the link of its mean.
#[derive(Debug, Clone, PartialEq, Serialize)]
pub struct Family {
    pub kind: FamilyKind,
    pub link: Link,
    /// Binomial: the column holding the number of trials of each row (the outcome then counts
    /// successes, as `cbind(successes, failures)` in glmer); `None` for a 0/1 outcome.
    pub trials: Option<String>,
    /// A column added to the linear predictor with coefficient 1 (a Poisson model's log
    /// exposure, glmer's `offset(log(exposure))`).
    pub offset: Option<String>,
    /// The `family` statement, `None` for the Gaussian default.
    pub span: Option<Span>,
}

#[derive(Debug, Clone, Copy, PartialEq, Eq, Serialize)]
pub enum FamilyKind {
    Gaussian,
    Binomial,
    Poisson,
}

#[derive(Debug, Clone, Copy, PartialEq, Eq, Serialize)]
pub enum Link {
    Identity,
    Logit,
    Probit,
    Cloglog,
    Log,
}

impl Default for Family {
    fn default() -> Self {
        Family {
            kind: FamilyKind::Gaussian,
            link: Link::Identity,
            trials: None,
            offset: None,
            span: None,
        }
    }
}

impl Family {
    /// Whether the outcome is Gaussian (a linear mixed model).
    pub fn is_gaussian(&self) -> bool {
        self.kind == FamilyKind::Gaussian
    }
}

impl FamilyKind {
    /// The name in a `family` statement and in reports (R's `family()$family`).
    pub fn name(self) -> &'static str {
        match self {
            FamilyKind::Gaussian => "gaussian",
            FamilyKind::Binomial => "binomial",
            FamilyKind::Poisson => "poisson",
        }
    }

    /// R's default link of the family.
    pub fn default_link(self) -> Link {
        match self {
            FamilyKind::Gaussian => Link::Identity,
            FamilyKind::Binomial => Link::Logit,
            FamilyKind::Poisson => Link::Log,
        }
    }

    /// The links the family takes.
    pub fn links(self) -> &'static [Link] {
        match self {
            FamilyKind::Gaussian => &[Link::Identity],
            FamilyKind::Binomial => &[Link::Logit, Link::Probit, Link::Cloglog],
            FamilyKind::Poisson => &[Link::Log],
        }
    }

    pub const ALL: [FamilyKind; 3] = [
        FamilyKind::Gaussian,
        FamilyKind::Binomial,
        FamilyKind::Poisson,
    ];
}

impl Link {
    /// The name in a `family` statement and in reports (R's `family()$link`).
    pub fn name(self) -> &'static str {
        match self {
            Link::Identity => "identity",
            Link::Logit => "logit",
            Link::Probit => "probit",
            Link::Cloglog => "cloglog",
            Link::Log => "log",
        }
    }

    pub const ALL: [Link; 5] = [
        Link::Identity,
        Link::Logit,
        Link::Probit,
        Link::Cloglog,
        Link::Log,
    ];
}
