//! A fit's parameter table: the `ParameterTable` (`crate::parameters`) filled from a `Fit`, its
//! rows in the order every later stage indexes (fixed coefficients, each random term's variances
//! and covariances, residual variances per class, AR(1)'s φ). Owned here because only the estimator knows
//! what its `Fit` holds; it must not compute anything beyond arranging the fit's numbers.

use crate::design::Design;
use crate::model::ModelSpec;
use crate::parameters::{Parameter, ParameterKind, ParameterTable};

use super::Fit;

impl ParameterTable {
    pub fn from_fit(spec: &ModelSpec, design: &Design, fit: &Fit) -> Self {
        let equation = |e: usize| {
            spec.equations
                .get(e)
                .map(|q| q.outcome.clone())
                .unwrap_or_default()
        };
        let mut rows = Vec::new();
        for f in &fit.fixed {
            rows.push(Parameter {
                kind: ParameterKind::Fixed {
                    equation: equation(f.equation),
                    term: f.term.clone(),
                    label: f.label.clone(),
                },
                estimate: f.estimate,
                term: None,
            });
        }
        for (k, component) in fit.random.iter().enumerate() {
            let labels: Vec<Option<String>> = spec
                .random
                .get(k)
                .map(|t| t.effects.iter().map(|e| e.label.clone()).collect())
                .unwrap_or_else(|| vec![None; component.effects.len()]);
            let correlated = design.random.get(k).is_none_or(|t| t.correlated);
            let q = component.effects.len();
            for j in 0..q {
                for i in j..q {
                    let (e1, t1) = &component.effects[j];
                    if i == j {
                        rows.push(Parameter {
                            kind: ParameterKind::Variance {
                                group: component.group.clone(),
                                equation: equation(*e1),
                                term: t1.clone(),
                                label: labels[j].clone(),
                            },
                            estimate: component.covariance[(j, j)],
                            term: Some((k, j, j)),
                        });
                    } else if correlated {
                        let (e2, t2) = &component.effects[i];
                        rows.push(Parameter {
                            kind: ParameterKind::Covariance {
                                group: component.group.clone(),
                                equation1: equation(*e1),
                                term1: t1.clone(),
                                label1: labels[j].clone(),
                                equation2: equation(*e2),
                                term2: t2.clone(),
                                label2: labels[i].clone(),
                            },
                            estimate: component.covariance[(i, j)],
                            term: Some((k, i, j)),
                        });
                    }
                }
            }
        }
        for r in &fit.residual {
            rows.push(Parameter {
                kind: ParameterKind::Residual {
                    equation: equation(r.equation),
                    class: r.level.clone(),
                },
                estimate: r.variance,
                term: None,
            });
        }
        // AR(1) is fitted for one equation, whose residual rows these are.
        let ar1 = fit.residual_correlation.as_ref().filter(|c| c.ar1);
        if let (Some(c), Some(r)) = (ar1, fit.residual.first()) {
            rows.push(Parameter {
                kind: ParameterKind::Autocorrelation {
                    equation: equation(r.equation),
                    within: c.unit.clone(),
                },
                estimate: c.rho,
                term: None,
            });
        }
        ParameterTable { rows }
    }
}
