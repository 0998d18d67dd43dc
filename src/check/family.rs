//! `family` statements and `estimate ml(agq = N)`: which equation's outcome (by name, or every
//! equation's) has which family and link, its binomial trials and offset columns, and the
//! method and quadrature that follow. Owns resolving those names (did-you-mean for a misspelt
//! family, link or option), the rules that the file says each equation's family once, that REML
//! is refused for a non-Gaussian model (glmer fits by maximum likelihood, so ML is its default),
//! and lme4's rules for `agq`. It must not look at data (the outcome's values are checked on the
//! prepared frame by `levels`) nor decide what the engines fit (`model::supported`).

use crate::diagnostics::{did_you_mean, Diagnostic};
use crate::model::{EquationSpec, Family, FamilyKind, Link, RandomTermSpec};
use crate::syntax::ast::{
    EstimateOption, FamilyOption, FamilyStatement, Ident, Method, ModelFile, Span, Statement,
};

use super::names::Lookup;
use super::schema::ColumnKind;
use super::Checker;

/// The options a `family` statement takes.
const FAMILY_OPTIONS: [&str; 3] = ["link", "trials", "offset"];

/// The most quadrature points per axis: lme4's `GHrule` has rules up to 100 (`ord < 101`).
pub(crate) const MAX_AGQ: usize = 100;

impl Checker<'_> {
    /// Fills each equation's `family` from the file's `family` statements.
    pub(crate) fn check_families(&mut self, file: &ModelFile, equations: &mut [EquationSpec]) {
        let mut said: Vec<Option<Span>> = vec![None; equations.len()];
        for statement in &file.statements {
            let Statement::Family(spec) = statement else {
                continue;
            };
            // A statement with an error of its own is not applied: a second, corrected one
            // below it is then no duplicate.
            let errors = self.errors.len();
            let family = self.family_of(spec);
            let targets = self.statement_targets(
                spec.equation.as_ref(),
                equations,
                "its equation is a Gaussian group-level regression",
                "a family belongs to an outcome observed in the data",
            );
            let Some(family) = family.filter(|_| self.errors.len() == errors) else {
                continue;
            };
            for index in targets {
                if said[index].is_some() {
                    self.error(
                        Diagnostic::at(
                            format!(
                                "the outcome `{}` gets a second `family`",
                                equations[index].outcome
                            ),
                            spec.span,
                        )
                        .with_hint("say each equation's family once"),
                    );
                    continue;
                }
                said[index] = Some(spec.span);
                equations[index].family = family.clone();
            }
        }
    }

    /// The statement's family, link, trials and offset; `None` when its family is unknown.
    fn family_of(&mut self, spec: &FamilyStatement) -> Option<Family> {
        let kind = self.family_kind(&spec.family);
        let mut family = Family {
            kind: kind.unwrap_or(FamilyKind::Gaussian),
            link: kind.unwrap_or(FamilyKind::Gaussian).default_link(),
            trials: None,
            offset: None,
            span: Some(spec.span),
        };
        let mut seen: Vec<&str> = Vec::new();
        for option in &spec.options {
            let name = option.name.name.as_str();
            if !FAMILY_OPTIONS.contains(&name) {
                let mut d = Diagnostic::at(
                    format!("`{name}` is not an option of `family`"),
                    option.name.span,
                )
                .with_expected("`link`, `trials` or `offset`");
                if let Some(hint) = did_you_mean(name, FAMILY_OPTIONS) {
                    d = d.with_hint(hint);
                }
                self.error(d);
                continue;
            }
            if seen.contains(&name) {
                self.error(
                    Diagnostic::at(format!("a second `{name}`"), option.name.span)
                        .with_hint("give each option once"),
                );
                continue;
            }
            seen.push(name);
            let Some(kind) = kind else { continue };
            match name {
                "link" => {
                    if let Some(link) = self.family_link(kind, &option.value) {
                        family.link = link;
                    }
                }
                "trials" => family.trials = self.family_column(kind, option),
                _ => family.offset = self.family_column(kind, option),
            }
        }
        kind.map(|_| family)
    }

    fn family_kind(&mut self, name: &Ident) -> Option<FamilyKind> {
        if let Some(kind) = FamilyKind::ALL.into_iter().find(|k| k.name() == name.name) {
            return Some(kind);
        }
        let names = FamilyKind::ALL.map(|k| k.name());
        let mut d = Diagnostic::at(format!("`{}` is not a family", name.name), name.span)
            .with_expected("`binomial`, `poisson` or `gaussian`");
        if let Some(hint) = did_you_mean(&name.name, names) {
            d = d.with_hint(hint);
        } else if name.name == "logit" || name.name == "probit" || name.name == "logistic" {
            d = d.with_hint("a logistic or probit model is `family binomial(link = ...)`");
        }
        self.error(d);
        None
    }

    fn family_link(&mut self, kind: FamilyKind, name: &Ident) -> Option<Link> {
        let allowed: Vec<&str> = kind.links().iter().map(|l| l.name()).collect();
        let list = || {
            allowed
                .iter()
                .map(|l| format!("`{l}`"))
                .collect::<Vec<_>>()
                .join(", ")
        };
        match Link::ALL.into_iter().find(|l| l.name() == name.name) {
            Some(link) if kind.links().contains(&link) => Some(link),
            Some(_) => {
                self.error(
                    Diagnostic::at(
                        format!(
                            "the {} family does not take the `{}` link",
                            kind.name(),
                            name.name
                        ),
                        name.span,
                    )
                    .with_expected(format!("one of {}", list())),
                );
                None
            }
            None => {
                let mut d = Diagnostic::at(format!("`{}` is not a link", name.name), name.span)
                    .with_expected(format!("one of {}", list()));
                if let Some(hint) = did_you_mean(&name.name, allowed.iter().copied()) {
                    d = d.with_hint(hint);
                }
                self.error(d);
                None
            }
        }
    }

    /// The column of `trials = ` or `offset = `: numeric, and of a family that takes it.
    fn family_column(&mut self, kind: FamilyKind, option: &FamilyOption) -> Option<String> {
        let (what, column) = (option.name.name.as_str(), &option.value);
        let takes = match what {
            "trials" => kind == FamilyKind::Binomial,
            _ => kind != FamilyKind::Gaussian,
        };
        if !takes {
            let hint = match what {
                "trials" => "`trials` is the binomial family's number of trials".to_string(),
                _ => format!(
                    "in a Gaussian model an offset is a coefficient fixed at 1: write `1*{}` in \
                     the equation",
                    column.name
                ),
            };
            self.error(
                Diagnostic::at(
                    format!("the {} family takes no `{what}`", kind.name()),
                    option.name.span,
                )
                .with_hint(hint),
            );
            return None;
        }
        match self.scope.lookup(&column.name, usize::MAX) {
            Lookup::Column(ColumnKind::Numeric) | Lookup::Let => Some(column.name.clone()),
            Lookup::Column(ColumnKind::Text) => {
                self.error(
                    Diagnostic::at(
                        format!("`{what}` names the text column `{}`", column.name),
                        column.span,
                    )
                    .with_expected("a numeric column"),
                );
                None
            }
            _ => {
                let d = self
                    .scope
                    .unknown_variable(&column.name, column.span, usize::MAX, &[]);
                self.error(d);
                None
            }
        }
    }

    /// The method when a model is not Gaussian (ML, glmer's only one; REML is refused where the
    /// file asks for it), and `agq` with lme4's rules: a whole number from 1 to `MAX_AGQ`, above
    /// 1 only for a non-Gaussian model with one random term of one effect.
    pub(crate) fn check_method_and_agq(
        &mut self,
        estimate: Option<(Span, &[EstimateOption])>,
        method: Method,
        equations: &[EquationSpec],
        random: &[RandomTermSpec],
    ) -> (Method, usize) {
        let family = equations.iter().find(|e| !e.family.is_gaussian());
        let method = match (family, estimate) {
            (Some(eq), Some((span, _))) if method == Method::Reml => {
                self.error(
                    Diagnostic::at(
                        format!(
                            "the {} family is fitted by maximum likelihood, not REML",
                            eq.family.kind.name()
                        ),
                        span,
                    )
                    .with_hint("write `estimate ml` (as glmer does), or leave it out"),
                );
                Method::Ml
            }
            (Some(_), None) => Method::Ml,
            _ => method,
        };
        let mut agq = 1;
        for option in estimate.map_or(&[][..], |(_, options)| options) {
            if option.name.name != "agq" {
                let mut d = Diagnostic::at(
                    format!("`{}` is not an option of `estimate`", option.name.name),
                    option.name.span,
                )
                .with_expected("`agq`");
                if let Some(hint) = did_you_mean(&option.name.name, ["agq"]) {
                    d = d.with_hint(hint);
                }
                self.error(d);
                continue;
            }
            let value = option.value;
            if value.fract() != 0.0 || !(1.0..=MAX_AGQ as f64).contains(&value) {
                self.error(
                    Diagnostic::at(
                        format!("`agq = {value}` is not a number of quadrature points"),
                        option.span,
                    )
                    .with_expected(format!(
                        "a whole number from 1 (the Laplace approximation) to {MAX_AGQ}"
                    )),
                );
                continue;
            }
            agq = value as usize;
            if agq > 1 {
                self.check_agq(option, family.is_some(), random);
            }
        }
        (method, agq)
    }

    /// lme4's rule: "nAGQ > 1 is only available for models with a single, scalar
    /// random-effects term".
    fn check_agq(
        &mut self,
        option: &EstimateOption,
        non_gaussian: bool,
        random: &[RandomTermSpec],
    ) {
        if !non_gaussian {
            self.error(
                Diagnostic::at(
                    "`agq` applies to a binomial or Poisson model; a Gaussian model's likelihood \
                     is exact",
                    option.span,
                )
                .with_hint("remove `agq`, or add a `family` statement"),
            );
            return;
        }
        let scalar = random.len() == 1 && random[0].effects.len() == 1;
        if !scalar {
            let found = match random.len() {
                0 => "the model has no random term".to_string(),
                1 => format!(
                    "`{}` has {} effects",
                    random[0].name,
                    random[0].effects.len()
                ),
                n => format!("the model has {n} random terms"),
            };
            self.error(
                Diagnostic::at(
                    format!(
                        "`agq` above 1 needs a single random term with a single effect (a \
                         random intercept); {found}"
                    ),
                    option.span,
                )
                .with_hint("use the Laplace approximation (`estimate ml`), as lme4 requires"),
            );
        }
    }
}
