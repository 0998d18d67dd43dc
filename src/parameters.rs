//! The parameter table: one row per parameter a user can name, in the spirit of lavaan's
//! parameter table. Fixed coefficients, random-effect variances and covariances (absolute scale,
//! σ²·TT'), residual variances and AR(1)'s φ, each with its equation, group, term and label.
//!
//! Every stage after estimation speaks in rows of this table: the asymptotic covariance of all
//! parameters is indexed by its rows, defined quantities (`a*b + cov(a, b)`) resolve labels to
//! rows, Monte Carlo draws are vectors over its rows. It owns that indexing and the lookups by
//! label; it must not estimate anything (a fit's table is `estimate`'s to build:
//! `ParameterTable::from_fit`).

use serde::Serialize;

#[derive(Debug, Clone, PartialEq, Serialize)]
pub enum ParameterKind {
    /// A free fixed coefficient (shared by equal labels: its `term` is the first one).
    Fixed {
        equation: String,
        term: String,
        label: Option<String>,
    },
    /// The variance of one random effect.
    Variance {
        group: String,
        equation: String,
        term: String,
        label: Option<String>,
    },
    /// The covariance of two random effects of one term.
    Covariance {
        group: String,
        equation1: String,
        term1: String,
        label1: Option<String>,
        equation2: String,
        term2: String,
        label2: Option<String>,
    },
    /// A residual variance (of an equation, or of one class of its `residual by` column).
    Residual {
        equation: String,
        class: Option<String>,
    },
    /// AR(1)'s φ, the correlation of consecutive residuals of a series of `within`
    /// (`residual ar1 within`).
    Autocorrelation { equation: String, within: String },
}

#[derive(Debug, Clone, PartialEq, Serialize)]
pub struct Parameter {
    pub kind: ParameterKind,
    pub estimate: f64,
    /// Index of the random term (`Design::random`) for variances and covariances, and the
    /// positions of the effects in it; used to map to and from a term's covariance matrix.
    #[serde(skip)]
    pub term: Option<(usize, usize, usize)>,
}

/// All parameters of a fitted model, in a fixed order: fixed effects (the order of X's
/// columns), then per random term its covariance matrix's lower triangle by columns (variances
/// on the diagonal, covariances below; covariances omitted for uncorrelated terms), then
/// residual variances per class, then AR(1)'s φ if the residuals have it.
#[derive(Debug, Clone, PartialEq, Serialize)]
pub struct ParameterTable {
    pub rows: Vec<Parameter>,
}

impl ParameterTable {
    pub fn len(&self) -> usize {
        self.rows.len()
    }

    pub fn is_empty(&self) -> bool {
        self.rows.is_empty()
    }

    pub fn estimates(&self) -> Vec<f64> {
        self.rows.iter().map(|r| r.estimate).collect()
    }

    /// The fixed coefficient labelled `label`.
    pub fn fixed(&self, label: &str) -> Option<usize> {
        self.rows.iter().position(
            |r| matches!(&r.kind, ParameterKind::Fixed { label: Some(l), .. } if l == label),
        )
    }

    /// The variance of the random effect labelled `label`.
    pub fn variance(&self, label: &str) -> Option<usize> {
        self.rows.iter().position(
            |r| matches!(&r.kind, ParameterKind::Variance { label: Some(l), .. } if l == label),
        )
    }

    /// The random terms (index, grouping name) with an effect labelled `label`, in term order.
    pub fn random_terms_of(&self, label: &str) -> Vec<(usize, String)> {
        let mut out: Vec<(usize, String)> = Vec::new();
        for r in &self.rows {
            if let (
                ParameterKind::Variance {
                    label: Some(l),
                    group,
                    ..
                },
                Some((k, _, _)),
            ) = (&r.kind, r.term)
            {
                if l == label && !out.iter().any(|(kk, _)| *kk == k) {
                    out.push((k, group.clone()));
                }
            }
        }
        out
    }

    /// The variance of the effect labelled `label` in random term `term`.
    pub fn variance_in(&self, label: &str, term: usize) -> Option<usize> {
        self.rows.iter().position(|r| {
            matches!(&r.kind, ParameterKind::Variance { label: Some(l), .. } if l == label)
                && r.term.is_some_and(|t| t.0 == term)
        })
    }

    /// The covariance of the random effects labelled `a` and `b` (in either order) in random
    /// term `term`. `None` when that term does not correlate them.
    pub fn covariance_in(&self, a: &str, b: &str, term: usize) -> Option<usize> {
        self.rows.iter().position(|r| {
            r.term.is_some_and(|t| t.0 == term)
                && match &r.kind {
                    ParameterKind::Covariance {
                        label1: Some(l1),
                        label2: Some(l2),
                        ..
                    } => (l1 == a && l2 == b) || (l1 == b && l2 == a),
                    _ => false,
                }
        })
    }

    /// A short name for messages and tables: `a`, `ot_change~neg_w`, `var(a)`, `cov(a, b)`,
    /// `patient: cov(ot_change~(Intercept), hrsd_next~ot_w)`, `residual(hrsd_next)`.
    pub fn name(&self, index: usize) -> String {
        let effect = |eq: &str, term: &str, label: &Option<String>| {
            label.clone().unwrap_or_else(|| format!("{eq}~{term}"))
        };
        match &self.rows[index].kind {
            ParameterKind::Fixed {
                equation,
                term,
                label,
            } => effect(equation, term, label),
            ParameterKind::Variance {
                group,
                equation,
                term,
                label,
            } => format!("{group}: var({})", effect(equation, term, label)),
            ParameterKind::Covariance {
                group,
                equation1,
                term1,
                label1,
                equation2,
                term2,
                label2,
            } => format!(
                "{group}: cov({}, {})",
                effect(equation1, term1, label1),
                effect(equation2, term2, label2)
            ),
            ParameterKind::Residual { equation, class } => match class {
                Some(c) => format!("residual({equation}: {c})"),
                None => format!("residual({equation})"),
            },
            ParameterKind::Autocorrelation { equation, within } => {
                format!("ar1({equation} within {within})")
            }
        }
    }
}
