//! Model classes the estimator cannot fit (yet), refused at check time, located, so that
//! `tandem check` refuses everything `fit` would refuse before optimizing. Owns those rules; it
//! must not look at data.

use crate::diagnostics::Diagnostic;
use crate::model::{IntervalChoice, ModelSpec, TermKind};
use crate::syntax::ast::{Method, ModelFile, Statement};

use super::Checker;

impl Checker<'_> {
    pub(crate) fn check_supported(&mut self, file: &ModelFile, spec: &ModelSpec) {
        let estimate = file.statements.iter().find_map(|s| match s {
            Statement::Estimate { span, .. } => Some(*span),
            _ => None,
        });
        // The joint likelihood of a random coefficient as a predictor is maximized as it stands
        // (`estimate::latent_predictor`); no restricted likelihood is derived for it.
        let latent = spec
            .equations
            .iter()
            .flat_map(|e| &e.terms)
            .find(|t| t.kind == TermKind::RandomCoefficient);
        if spec.method == Method::Reml {
            if let Some(term) = latent {
                let message = format!(
                    "`{}` is a random coefficient used as a predictor, which is fitted by full \
                     maximum likelihood only",
                    term.variables[0]
                );
                let d = match estimate {
                    Some(span) => Diagnostic::at(format!("{message}, not REML"), span)
                        .with_hint("write `estimate ml`"),
                    None => Diagnostic::at(
                        format!("{message}; without an `estimate` statement the method is REML"),
                        term.span,
                    )
                    .with_hint("add `estimate ml`"),
                };
                self.error(d);
            }
        }
        self.errors.extend(unsupported_residuals(spec));
        // The parametric bootstrap simulates independent residuals around the fitted random
        // effects: it has nothing to simulate a latent predictor's outcome from, and would
        // ignore a residual correlation.
        if let (Some(IntervalChoice::ParametricBootstrap { .. }), Some(span)) = (
            &spec.interval,
            file.statements.iter().find_map(|s| match s {
                Statement::Interval(i) => Some(i.span),
                _ => None,
            }),
        ) {
            if let Some(unit) = spec
                .residual
                .iter()
                .find_map(|r| r.correlated_within.as_ref())
            {
                self.error(
                    Diagnostic::at(
                        format!(
                            "a parametric bootstrap with residuals correlated within `{unit}` is \
                             not supported yet"
                        ),
                        span,
                    )
                    .with_hint(format!(
                        "resample whole units instead: `interval bootstrap(resample = {unit})`"
                    )),
                );
            }
            if latent.is_some() {
                self.error(
                    Diagnostic::at(
                        "a parametric bootstrap of a random coefficient as a predictor is not \
                         supported yet",
                        span,
                    )
                    .with_hint("use `interval bootstrap(..., resample = GROUP)`"),
                );
            }
        }
    }
}

/// Residual structures the estimator does not fit yet (also the design's guard, for specs that
/// did not come through the checker). Compound symmetry is fitted from per-unit sums of [X y]
/// (nlme's gls); with random terms the residual correlation couples the levels of every term
/// through the units, which the blocked Cholesky does not handle yet, and several equations
/// would need a joint one.
pub fn unsupported_residuals(spec: &ModelSpec) -> Vec<Diagnostic> {
    let mut out = Vec::new();
    for r in &spec.residual {
        let Some(unit) = &r.correlated_within else {
            continue;
        };
        let Some(equation) = spec.equations.get(r.equation) else {
            continue;
        };
        if !spec.random.is_empty() {
            out.push(
                Diagnostic::at(
                    format!(
                        "`correlated within {unit}` together with random terms is not supported \
                         yet"
                    ),
                    equation.span,
                )
                .with_hint("drop the random terms (a gls model), or the residual correlation"),
            );
        } else if spec.equations.len() > 1 {
            out.push(Diagnostic::at(
                format!(
                    "`correlated within {unit}` in a model with several equations is not \
                     supported yet"
                ),
                equation.span,
            ));
        }
    }
    out
}
