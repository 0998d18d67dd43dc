//! The level-1 model of a model with random-coefficient equations, rewritten from the spec
//! alone.
//!
//! A random-coefficient equation (`sync ~ 1 + a*w`, where `sync` labels the random slope of
//! `dp`) is a level-2 regression of a slope. Substituted into the level-1 equation it gives
//! `(g10 + a·w + u1)·dp`: its intercept is the level-1 fixed slope that the label names, and
//! each predictor becomes the cross-level interaction `dp:w` with the predictor's coefficient.
//! `design` builds the columns of the rewritten model and reports each interaction's parameter
//! under the random-coefficient equation again (`sync ~ w`, label `a`).
//!
//! Owns that rewriting and what it asks of a spec (which equations are level-1 equations, which
//! random effect a label names). It must not read data. Which models it covers is
//! `model::unsupported`'s to say; of the others it leaves out what has no place.

use super::{
    EquationSpec, FixedTermSpec, ModelSpec, OutcomeKind, RandomEffectSpec, RandomTermSpec, TermKind,
};

/// The level-1 model: the level-1 equations with the random-coefficient equations substituted
/// in.
#[derive(Debug, Clone, PartialEq)]
pub struct LevelOne {
    /// The level-1 equations in file order, each with the terms substituted into it appended;
    /// the random terms and residuals numbered among them.
    pub spec: ModelSpec,
    /// Per equation of `spec`: its index in the original model.
    pub original: Vec<usize>,
    /// Per substituted term, in order.
    pub substituted: Vec<Substitution>,
}

/// A term of a random-coefficient equation substituted into a level-1 equation.
#[derive(Debug, Clone, PartialEq)]
pub struct Substitution {
    /// The level-1 equation (index in `LevelOne::spec`).
    pub equation: usize,
    /// The variables of the slope the random coefficient regresses (`dp`).
    pub slope: Vec<String>,
    /// The random-coefficient equation (index in the original model).
    pub regression: usize,
}

impl EquationSpec {
    /// An equation about a variable with a random coefficient as a predictor (`reduction ~ 1 +
    /// b*sync`): a group-level equation, one observation per group.
    pub fn has_latent_predictor(&self) -> bool {
        self.outcome_kind == OutcomeKind::Variable
            && self
                .terms
                .iter()
                .any(|t| t.kind == TermKind::RandomCoefficient)
    }
}

impl ModelSpec {
    /// Whether the model has random-coefficient outcomes or predictors.
    pub fn has_random_coefficients(&self) -> bool {
        self.equations.iter().any(|eq| {
            eq.outcome_kind == OutcomeKind::RandomCoefficient
                || eq
                    .terms
                    .iter()
                    .any(|t| t.kind == TermKind::RandomCoefficient)
        })
    }

    /// Whether equation `e` is a level-1 equation: about a variable, without a random
    /// coefficient as a predictor.
    pub fn is_level_one(&self, e: usize) -> bool {
        self.equations.get(e).is_some_and(|eq| {
            eq.outcome_kind == OutcomeKind::Variable && !eq.has_latent_predictor()
        })
    }

    /// The random term and the position among its effects of the effect `label` names.
    pub fn labelled_effect(&self, label: &str) -> Option<(usize, usize)> {
        self.random.iter().enumerate().find_map(|(k, t)| {
            t.effects
                .iter()
                .position(|e| e.label.as_deref() == Some(label))
                .map(|s| (k, s))
        })
    }

    /// The level-1 model this model's design is built from.
    pub fn level_one(&self) -> LevelOne {
        let original: Vec<usize> = (0..self.equations.len())
            .filter(|&e| self.is_level_one(e))
            .collect();
        let mut equations: Vec<EquationSpec> = original
            .iter()
            .map(|&e| self.equations[e].clone())
            .collect();
        let mut substituted = Vec::new();
        for (e, eq) in self.equations.iter().enumerate() {
            if eq.outcome_kind != OutcomeKind::RandomCoefficient {
                continue;
            }
            if let Some((level1, effect)) = self.substitution(eq, &original) {
                substitute(e, eq, level1, effect, &mut equations, &mut substituted);
            }
        }
        let residual = self
            .residual
            .iter()
            .filter_map(|r| {
                reduced_index(&original, r.equation).map(|e| {
                    let mut r = r.clone();
                    r.equation = e;
                    r
                })
            })
            .collect();
        LevelOne {
            spec: ModelSpec {
                equations,
                random: self.level_one_random(&original),
                residual,
                definitions: self.definitions.clone(),
                method: self.method,
                interval: self.interval.clone(),
                vary: self.vary.clone(),
                agq: self.agq,
            },
            original,
            substituted,
        }
    }

    /// Where the random-coefficient equation `eq` goes: the level-1 equation (its index among
    /// `original`) and the random effect its outcome labels.
    fn substitution(
        &self,
        eq: &EquationSpec,
        original: &[usize],
    ) -> Option<(usize, &RandomEffectSpec)> {
        let (k, s) = self.labelled_effect(&eq.outcome)?;
        let effect = &self.random[k].effects[s];
        let level1 = reduced_index(original, effect.equation)?;
        Some((level1, effect))
    }

    /// The random terms with their effects' equations numbered among the level-1 equations.
    fn level_one_random(&self, original: &[usize]) -> Vec<RandomTermSpec> {
        let mut random = Vec::new();
        for term in &self.random {
            let mut t: RandomTermSpec = term.clone();
            for effect in &mut t.effects {
                if let Some(r) = reduced_index(original, effect.equation) {
                    effect.equation = r;
                }
            }
            random.push(t);
        }
        random
    }
}

/// Equation `e`'s index among the level-1 equations (`original`), if it is one.
fn reduced_index(original: &[usize], e: usize) -> Option<usize> {
    original.iter().position(|&o| o == e)
}

/// Substitute the random-coefficient equation `e` into level-1 equation `level1`: each of its
/// terms becomes the cross-level interaction with the slope's variables.
fn substitute(
    e: usize,
    eq: &EquationSpec,
    level1: usize,
    effect: &RandomEffectSpec,
    equations: &mut [EquationSpec],
    substituted: &mut Vec<Substitution>,
) {
    for term in &eq.terms {
        let mut variables = effect.variables.clone();
        variables.extend(term.variables.iter().cloned());
        equations[level1].terms.push(FixedTermSpec {
            name: variables.join(":"),
            variables,
            coefficient: term.coefficient.clone(),
            kind: TermKind::Variables,
            span: term.span,
        });
        substituted.push(Substitution {
            equation: level1,
            slope: effect.variables.clone(),
            regression: e,
        });
    }
}
