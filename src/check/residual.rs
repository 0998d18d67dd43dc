//! `residual` statements: which equation (by outcome, or all) gets a variance per level of a
//! column (`by`), residuals correlated within a unit (`correlated within`) or AR(1) residuals
//! within a series (`ar1 within`, never together with `correlated within` on one equation). Owns resolving
//! those names and the rule that each equation's residual is said once per clause. It must not
//! decide how the structure is estimated.

use crate::diagnostics::{did_you_mean, Diagnostic};
use crate::model::{EquationSpec, OutcomeKind, ResidualSpec};
use crate::syntax::ast::{Ident, ModelFile, Statement};

use super::Checker;

impl Checker<'_> {
    pub(crate) fn check_residuals(
        &mut self,
        file: &ModelFile,
        equations: &[EquationSpec],
    ) -> Vec<ResidualSpec> {
        let mut residuals: Vec<ResidualSpec> = (0..equations.len())
            .map(|equation| ResidualSpec {
                equation,
                by: None,
                correlated_within: None,
                ar1_within: None,
            })
            .collect();
        for statement in &file.statements {
            let Statement::Residual(spec) = statement else {
                continue;
            };
            let targets = self.statement_targets(
                spec.equation.as_ref(),
                equations,
                "its equation has no residual of its own",
                "its variance is the random effect's, set by its random term",
            );
            if spec.by.is_none() && spec.correlated_within.is_none() && spec.ar1_within.is_none() {
                self.error(
                    Diagnostic::at("this `residual` statement says nothing", spec.span)
                        .with_expected("`by COLUMN` or `correlated within COLUMN`"),
                );
            }
            let by = spec.by.as_ref().and_then(|c| self.residual_column(c));
            let within = spec
                .correlated_within
                .as_ref()
                .and_then(|c| self.residual_column(c));
            let ar1 = spec
                .ar1_within
                .as_ref()
                .and_then(|c| self.residual_column(c));
            for index in targets {
                let outcome = &equations[index].outcome;
                let residual = &mut residuals[index];
                let mut clash = Vec::new();
                if let Some(by) = &by {
                    if residual.by.is_some() {
                        clash.push("by");
                    }
                    residual.by = Some(by.clone());
                }
                if let Some(within) = &within {
                    if residual.correlated_within.is_some() {
                        clash.push("correlated within");
                    }
                    residual.correlated_within = Some(within.clone());
                }
                if let Some(series) = &ar1 {
                    if residual.ar1_within.is_some() {
                        clash.push("ar1 within");
                    }
                    residual.ar1_within = Some(series.clone());
                }
                if residual.ar1_within.is_some()
                    && residual.correlated_within.is_some()
                    && (ar1.is_some() || within.is_some())
                {
                    self.error(
                        Diagnostic::at(
                            format!(
                                "the residual of `{outcome}` gets both `correlated within` and \
                                 `ar1 within`"
                            ),
                            spec.span,
                        )
                        .with_hint(
                            "choose one correlation structure per equation: compound symmetry \
                             (`correlated within`) or AR(1) (`ar1 within`)",
                        ),
                    );
                }
                for clause in clash {
                    self.error(
                        Diagnostic::at(
                            format!("the residual of `{outcome}` gets a second `{clause}`"),
                            spec.span,
                        )
                        .with_hint("say each residual clause once per equation"),
                    );
                }
            }
        }
        residuals
    }

    /// The equations a statement (`residual`, `family`) applies to: the one named, or every
    /// equation with a variable outcome. A random coefficient's equation is a group-level
    /// regression with neither a residual nor a distribution of its own; naming it is an error
    /// that says `why_not`.
    pub(super) fn statement_targets(
        &mut self,
        name: Option<&Ident>,
        equations: &[EquationSpec],
        why_not: &str,
        hint: &str,
    ) -> Vec<usize> {
        let Some(name) = name else {
            return equations
                .iter()
                .enumerate()
                .filter(|(_, e)| e.outcome_kind == OutcomeKind::Variable)
                .map(|(i, _)| i)
                .collect();
        };
        match equations.iter().position(|e| e.outcome == name.name) {
            Some(index) if equations[index].outcome_kind == OutcomeKind::RandomCoefficient => {
                self.error(
                    Diagnostic::at(
                        format!("`{}` is a random coefficient; {why_not}", name.name),
                        name.span,
                    )
                    .with_hint(hint),
                );
                Vec::new()
            }
            Some(index) => vec![index],
            None => {
                self.no_such_outcome(name, equations);
                Vec::new()
            }
        }
    }

    /// A statement names an outcome no equation has (`residual`, `family`).
    pub(super) fn no_such_outcome(&mut self, name: &Ident, equations: &[EquationSpec]) {
        let mut d = Diagnostic::at(
            format!("no equation has the outcome `{}`", name.name),
            name.span,
        )
        .with_expected("the outcome of an equation");
        if let Some(hint) = did_you_mean(&name.name, equations.iter().map(|e| e.outcome.as_str())) {
            d = d.with_hint(hint);
        }
        self.error(d);
    }

    fn residual_column(&mut self, column: &Ident) -> Option<String> {
        if self.scope.is_frame_variable(&column.name, usize::MAX) {
            Some(column.name.clone())
        } else {
            let d = self
                .scope
                .unknown_variable(&column.name, column.span, usize::MAX, &[]);
            self.error(d);
            None
        }
    }
}
