//! Random-effect terms: resolving `( effects | grouping )` of one equation and expanding lme4's
//! shorthands, then merging terms of different equations into one block per grouping. Owns
//! lme4's naming (`cask:batch` for `batch/cask`, `(Intercept)`, `x:z`), the implicit random
//! intercept (`(x | g)` has one, `(0 + x | g)` not), `||` as one term per effect, and the rule
//! that a label names its coefficient's random part. It must not look at data.

use std::collections::BTreeSet;

use crate::diagnostics::Diagnostic;
use crate::model::{Coefficient, RandomEffectSpec, RandomTermSpec};
use crate::syntax::ast::{Equation, FormulaTerm, Grouping, Ident, RandomEffect, RandomTerm, Span};

use super::equations::{intercept_of, term_name, LabelSite, Labels};
use super::Checker;

/// R's name of the intercept.
pub(crate) const INTERCEPT: &str = "(Intercept)";

impl Checker<'_> {
    /// The equation's random terms after expansion (nested and `||`), each on one grouping.
    pub(crate) fn resolve_random_terms(
        &mut self,
        equation_index: usize,
        equation: &Equation,
        labels: &Labels,
    ) -> Vec<RandomTermSpec> {
        let intercept_label = match intercept_of(equation) {
            Some(Coefficient::Free { label }) => label,
            _ => None,
        };
        let mut terms: Vec<RandomTermSpec> = Vec::new();
        for term in &equation.terms {
            let FormulaTerm::Random(random) = term else {
                continue;
            };
            let effects =
                self.resolve_effects(equation_index, random, labels, intercept_label.as_deref());
            let groupings = self.resolve_grouping(&random.grouping);
            if effects.is_empty() {
                self.error(
                    Diagnostic::at("this random term has no effects", random.span)
                        .with_expected("`1` or a variable before the `|`"),
                );
                continue;
            }
            for (grouping, name) in groupings {
                let first_new = terms.len();
                if random.correlated {
                    terms.push(RandomTermSpec {
                        grouping: grouping.clone(),
                        name: name.clone(),
                        effects: effects.clone(),
                        correlated: true,
                        span: random.span,
                    });
                } else {
                    for effect in &effects {
                        terms.push(RandomTermSpec {
                            grouping: grouping.clone(),
                            name: name.clone(),
                            effects: vec![effect.clone()],
                            correlated: false,
                            span: random.span,
                        });
                    }
                }
                self.report_repeated_effects(&terms, first_new);
            }
        }
        terms
    }

    /// One equation may not give the same grouping the same effect twice.
    fn report_repeated_effects(&mut self, terms: &[RandomTermSpec], first_new: usize) {
        let (earlier, new) = terms.split_at(first_new);
        for term in new {
            for effect in &term.effects {
                let repeated = earlier
                    .iter()
                    .filter(|t| t.name == term.name)
                    .any(|t| t.effects.iter().any(|e| e.name == effect.name));
                if repeated {
                    self.error(
                        Diagnostic::at(
                            format!(
                                "`{}` already varies over `{}` in an earlier random term of this \
                                 equation",
                                effect.name, term.name
                            ),
                            term.span,
                        )
                        .with_hint("give each effect once per grouping"),
                    );
                }
            }
        }
    }

    fn resolve_effects(
        &mut self,
        equation_index: usize,
        random: &RandomTerm,
        labels: &Labels,
        intercept_label: Option<&str>,
    ) -> Vec<RandomEffectSpec> {
        let mut intercept = true;
        let mut slopes: Vec<RandomEffectSpec> = Vec::new();
        let own_labels: Vec<&str> = labels
            .iter()
            .filter(|(_, sites)| sites.iter().any(|s| s.equation == equation_index))
            .map(|(name, _)| name.as_str())
            .collect();
        for effect in &random.effects {
            let (factors, span) = match effect {
                RandomEffect::Intercept { present, .. } => {
                    intercept = *present;
                    continue;
                }
                // The factors' own spans: the effect's span may run into the whitespace after it.
                RandomEffect::Slope { factors, span } => (
                    factors,
                    match (factors.first(), factors.last()) {
                        (Some(first), Some(last)) => first.span.join(last.span),
                        _ => *span,
                    },
                ),
            };
            let written = factors
                .iter()
                .map(|f| f.name.as_str())
                .collect::<Vec<_>>()
                .join(":");
            let factors = &self.distinct_factors(factors, &written, span);
            let resolved =
                if let (true, Some(sites)) = (factors.len() == 1, labels.get(&factors[0].name)) {
                    self.labelled_slope(equation_index, &factors[0].name, sites, span)
                } else {
                    self.variable_slope(equation_index, factors, labels, &own_labels)
                };
            if let Some((variables, label)) = resolved {
                self.push_slope(
                    &mut slopes,
                    equation_index,
                    variables,
                    label,
                    &written,
                    span,
                );
            }
        }
        let mut effects = Vec::new();
        // lme4 puts the intercept first however the term is written.
        if intercept {
            effects.push(RandomEffectSpec {
                equation: equation_index,
                variables: Vec::new(),
                label: intercept_label.map(str::to_string),
                name: INTERCEPT.to_string(),
            });
        }
        effects.extend(slopes);
        effects
    }

    /// A resolved slope joins the term's slopes unless the term has it already.
    fn push_slope(
        &mut self,
        slopes: &mut Vec<RandomEffectSpec>,
        equation_index: usize,
        variables: Vec<String>,
        label: Option<String>,
        written: &str,
        span: Span,
    ) {
        let key: BTreeSet<&String> = variables.iter().collect();
        if slopes
            .iter()
            .any(|s| s.variables.iter().collect::<BTreeSet<_>>() == key)
        {
            self.error(
                Diagnostic::at(
                    format!("`{written}` appears twice in this random term"),
                    span,
                )
                .with_hint("give each random effect once"),
            );
            return;
        }
        slopes.push(RandomEffectSpec {
            equation: equation_index,
            name: term_name(&variables),
            variables,
            label,
        });
    }

    /// A random slope written as a label: the one term of this equation the label names.
    fn labelled_slope(
        &mut self,
        equation_index: usize,
        name: &str,
        sites: &[LabelSite],
        span: Span,
    ) -> Option<(Vec<String>, Option<String>)> {
        let mut targets: Vec<&Vec<String>> = sites
            .iter()
            .filter(|s| s.equation == equation_index)
            .map(|s| &s.term)
            .collect();
        targets.dedup();
        match targets.as_slice() {
            [] => {
                self.error(
                    Diagnostic::at(
                        format!(
                            "`{name}` labels a coefficient of another equation; a random \
                             effect needs a term of this equation"
                        ),
                        span,
                    )
                    .with_hint(
                        "label this equation's term and use that label, or write the \
                         variable",
                    ),
                );
                None
            }
            [target] if target.is_empty() => {
                self.error(
                    Diagnostic::at(format!("`{name}` labels the intercept"), span)
                        .with_hint("write `1` for a random intercept"),
                );
                None
            }
            [target] => Some(((*target).clone(), Some(name.to_string()))),
            _ => {
                self.error(
                    Diagnostic::at(
                        format!(
                            "`{name}` labels several terms of this equation, so its \
                             random part is ambiguous"
                        ),
                        span,
                    )
                    .with_hint("write the variable whose slope should vary"),
                );
                None
            }
        }
    }

    /// A random slope written as variables: each must be a column or a `let`.
    fn variable_slope(
        &mut self,
        equation_index: usize,
        factors: &[Ident],
        labels: &Labels,
        own_labels: &[&str],
    ) -> Option<(Vec<String>, Option<String>)> {
        let mut ok = true;
        for factor in factors {
            if !self.scope.is_frame_variable(&factor.name, usize::MAX) {
                ok = false;
                let mut d =
                    self.scope
                        .unknown_variable(&factor.name, factor.span, usize::MAX, own_labels);
                if !own_labels.is_empty() {
                    d.message = format!(
                        "{}, and no label `{}` in this equation",
                        d.message, factor.name
                    );
                }
                self.error(d);
            }
        }
        ok.then(|| {
            let variables: Vec<String> = factors.iter().map(|f| f.name.clone()).collect();
            let label = label_of_term(labels, equation_index, &variables);
            (variables, label)
        })
    }

    /// Resolves and expands a grouping: `g1/g2` gives `(["g1"], "g1")` and
    /// `(["g2", "g1"], "g2:g1")`; an interaction level `g1:g2` is one grouping `g1:g2`.
    fn resolve_grouping(&mut self, grouping: &Grouping) -> Vec<(Vec<String>, String)> {
        let mut ok = true;
        for factor in grouping.levels.iter().flatten() {
            if !self.scope.is_frame_variable(&factor.name, usize::MAX) {
                ok = false;
                let d = self
                    .scope
                    .unknown_variable(&factor.name, factor.span, usize::MAX, &[]);
                self.error(d);
            }
        }
        if !ok {
            return Vec::new();
        }
        // `g/g` and `g:g` group by `g` twice over: the same partition as `g`, so two terms on
        // it (lme4 would fit both, and their variances are not identified apart).
        let mut seen: Vec<&str> = Vec::new();
        for factor in grouping.levels.iter().flatten() {
            if seen.contains(&factor.name.as_str()) {
                self.error(
                    Diagnostic::at(
                        format!(
                            "`{}` appears twice in this grouping: a factor nested in or crossed \
                             with itself is itself, so the groups would repeat `{}`'s",
                            factor.name, factor.name
                        ),
                        factor.span,
                    )
                    .with_hint(format!("group by `{}` once", factor.name)),
                );
                return Vec::new();
            }
            seen.push(&factor.name);
        }
        let mut expanded: Vec<(Vec<String>, String)> = Vec::new();
        for level in &grouping.levels {
            let names: Vec<String> = level.iter().map(|f| f.name.clone()).collect();
            let own = names.join(":");
            let (columns, name) = match expanded.last() {
                None => (names, own),
                Some((outer_columns, outer_name)) => {
                    let outer = if outer_name.contains(':') {
                        format!("({outer_name})")
                    } else {
                        outer_name.clone()
                    };
                    let mut columns = names;
                    columns.extend(outer_columns.iter().cloned());
                    (columns, format!("{own}:{outer}"))
                }
            };
            expanded.push((columns, name));
        }
        expanded
    }

    /// Merges each equation's terms into the model's: a correlated term joins the first earlier
    /// correlated term of another equation on the same grouping (one block per grouping,
    /// correlated across equations); terms of one equation stay separate, as in lme4, and
    /// uncorrelated (`||`) terms never merge.
    pub(crate) fn merge_random_terms(
        &self,
        per_equation: Vec<Vec<RandomTermSpec>>,
    ) -> Vec<RandomTermSpec> {
        let mut merged: Vec<RandomTermSpec> = Vec::new();
        for (equation, terms) in per_equation.into_iter().enumerate() {
            for term in terms {
                let target = term.correlated.then(|| {
                    merged.iter().position(|m| {
                        m.correlated
                            && m.name == term.name
                            && !m.effects.iter().any(|e| e.equation == equation)
                    })
                });
                // A block that already holds this equation's effects is not a candidate, so two
                // terms of one equation never share a block.
                match target.flatten() {
                    Some(index) => merged[index].effects.extend(term.effects),
                    None => merged.push(term),
                }
            }
        }
        merged
    }
}

/// The label of this equation's fixed term on exactly these variables, if it has one: a label
/// names its coefficient's random part too.
fn label_of_term(labels: &Labels, equation: usize, variables: &[String]) -> Option<String> {
    let key: BTreeSet<&String> = variables.iter().collect();
    let mut found = labels.iter().filter(|(_, sites)| {
        sites
            .iter()
            .any(|s| s.equation == equation && s.term.iter().collect::<BTreeSet<_>>() == key)
    });
    match (found.next(), found.next()) {
        (Some((name, _)), None) => Some(name.clone()),
        _ => None,
    }
}
