//! Model classes the estimator cannot fit (yet), refused at check time, located, so that
//! `tandem check` refuses everything `fit` would refuse before optimizing: the rules that need
//! the model file (the `estimate` and `interval` statements) are here; those decided from the
//! `ModelSpec` alone are `model::supported`'s, which `design` asks too. It must not look at
//! data. What needs the prepared frame (a random slope or a group-level variable that turns
//! out to be text) is refused by `design`, which has it.

use crate::diagnostics::Diagnostic;
use crate::model::{
    unsupported_designs, unsupported_families, unsupported_residuals, IntervalChoice, ModelSpec,
    TermKind,
};
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
        self.errors.extend(unsupported_families(spec));
        // On a spec that is otherwise sound only, as the design reported them: where names did
        // not resolve (an outcome taken for a random coefficient it is not), they would be
        // spurious.
        if self.errors.is_empty() {
            self.errors.extend(unsupported_designs(spec));
        }
        // A bootstrap's resampled frame repeats series, which AR(1)'s positions cannot tell apart.
        if let (Some(series), Some(span)) = (
            spec.residual.iter().find_map(|r| r.ar1_within.as_ref()),
            file.statements.iter().find_map(|s| match s {
                Statement::Interval(i) => Some(i.span),
                _ => None,
            }),
        ) {
            if matches!(
                spec.interval,
                Some(IntervalChoice::Bootstrap { .. } | IntervalChoice::ParametricBootstrap { .. })
            ) {
                self.error(
                    Diagnostic::at(
                        format!(
                            "a bootstrap with AR(1) residuals within `{series}` is not supported \
                             yet"
                        ),
                        span,
                    )
                    .with_hint("use `interval monte_carlo(...)` or `interval delta`"),
                );
            }
        }
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
