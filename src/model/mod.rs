//! The model IR: what `check` resolves a model file into, and what `design`, `estimate`, `infer`
//! and `report` speak.
//!
//! Owns the resolved description of the equations (outcomes, fixed terms with their labels or
//! fixed values, random terms on grouping factors, residual classes) and the derived quantities.
//! Every name in here has been resolved by `check`: a variable is a column of the analysis frame
//! (a data column or a `let`), a label is a label. This module must not read data, evaluate
//! anything or know about source text beyond the spans it keeps for messages. `expression`: the
//! lowered expressions of `let`, `keep` and `:=`, and the one printer of expressions;
//! `preparation`: the lowered `group`/`order`/`factor`/`let`/`keep` steps `prepare` runs;
//! `level_one`: a model with random-coefficient equations rewritten as its level-1 model.

pub mod expression;
pub mod preparation;

mod family;
mod level_one;
mod supported;

pub use expression::{Argument, ArgumentName, BinaryOp, Expression, ExpressionKind, Name, UnaryOp};

use serde::Serialize;

use crate::diagnostics::Span;

pub use family::{Family, FamilyKind, Link};
pub use level_one::{LevelOne, Substitution};
pub use supported::{
    unsupported, unsupported_designs, unsupported_families, unsupported_residuals,
};

/// How the variance parameters are estimated: maximum likelihood, or restricted (REML).
#[derive(Debug, Clone, Copy, PartialEq, Eq, Serialize)]
pub enum Method {
    Ml,
    Reml,
}

/// A whole resolved model: what to fit and what to derive from it.
#[derive(Debug, Clone, PartialEq, Serialize)]
pub struct ModelSpec {
    /// In file order. Several equations are fitted jointly (stacked).
    pub equations: Vec<EquationSpec>,
    /// Random-effect terms after expansion: a nested `(1 | g1/g2)` is two terms (`g1` and
    /// `g2:g1`), an uncorrelated `(1 + x || g)` is one term per effect. Terms of different
    /// equations on the same grouping factor are merged into one correlated term (one block per
    /// group, correlated across equations); terms within one equation stay separate, as in lme4.
    pub random: Vec<RandomTermSpec>,
    /// Residual structure per equation (index into `equations`), one entry per equation.
    pub residual: Vec<ResidualSpec>,
    /// `name := expr`, in file order.
    pub definitions: Vec<Definition>,
    /// From `estimate`; REML when the file says nothing (lme4's default).
    pub method: Method,
    /// From `interval`; `None` when the file has no `interval` statement.
    pub interval: Option<IntervalChoice>,
    /// `vary name = v1, v2, ...`: the file is fitted once per value.
    pub vary: Option<Vary>,
    /// Quadrature points per scalar random effect for a non-Gaussian model (`estimate
    /// ml(agq = 25)`, glmer's nAGQ); 1 is the Laplace approximation, the default.
    pub agq: usize,
}

/// One `outcome ~ terms` equation.
#[derive(Debug, Clone, PartialEq, Serialize)]
pub struct EquationSpec {
    /// The outcome: a variable of the analysis frame, or for a random-coefficient equation the
    /// label of a random slope (`sync ~ 1 + a*w`).
    pub outcome: String,
    pub outcome_kind: OutcomeKind,
    /// The intercept's coefficient, `None` when the formula removes it (`0 +` or `- 1`).
    pub intercept: Option<Coefficient>,
    /// Fixed terms in formula order, without the intercept.
    pub terms: Vec<FixedTermSpec>,
    /// The outcome's family and link (`family`); Gaussian with the identity link by default.
    pub family: Family,
    pub span: Span,
}

#[derive(Debug, Clone, PartialEq, Serialize)]
pub enum OutcomeKind {
    /// A column of the analysis frame.
    Variable,
    /// The random coefficient named by this label in another equation's random term
    /// (a level-2 regression of a random slope).
    RandomCoefficient,
}

/// How a fixed coefficient is estimated, lavaan style.
#[derive(Debug, Clone, PartialEq, Serialize)]
pub enum Coefficient {
    /// Estimated; a label names it, and the same label on two terms makes them equal.
    Free { label: Option<String> },
    /// Fixed at a value (`0.5*x`).
    Fixed(f64),
}

/// A fixed term: a variable, or an interaction of variables (`x:z`). A text variable is
/// treatment-coded by `design` (R's `<column><level>` names).
#[derive(Debug, Clone, PartialEq, Serialize)]
pub struct FixedTermSpec {
    /// The interacting variables, in the order written; one for a main effect.
    pub variables: Vec<String>,
    pub coefficient: Coefficient,
    /// What the term's values are: frame variables, or a group's latent random coefficient.
    pub kind: TermKind,
    /// How the term is written in R (`x`, `x:z`), before factor coding.
    pub name: String,
    pub span: Span,
}

/// Where a fixed term's values come from.
#[derive(Debug, Clone, PartialEq, Serialize)]
pub enum TermKind {
    /// The product of the frame variables in `variables`.
    Variables,
    /// The latent random coefficient named by the label in `variables[0]` (`reduction ~ b*sync`
    /// where `sync` labels a random slope): a group-level predictor, one value per group of the
    /// random term that carries the label. Never part of an interaction.
    RandomCoefficient,
}

/// One random-effect term: effects that vary over the levels of one grouping factor, with an
/// unstructured covariance (or a diagonal one when `correlated` is false).
#[derive(Debug, Clone, PartialEq, Serialize)]
pub struct RandomTermSpec {
    /// The factor columns whose combination defines the groups: `["Subject"]`, or
    /// `["cask", "batch"]` for lme4's `cask:batch`.
    pub grouping: Vec<String>,
    /// lme4's name for the grouping: `Subject`, `cask:batch`.
    pub name: String,
    pub effects: Vec<RandomEffectSpec>,
    pub correlated: bool,
    pub span: Span,
}

/// One effect in a random term: an intercept or a slope of one equation.
#[derive(Debug, Clone, PartialEq, Serialize)]
pub struct RandomEffectSpec {
    /// Index into `ModelSpec::equations`.
    pub equation: usize,
    /// Empty for the intercept; otherwise the variable(s) whose slope varies (an interaction
    /// when several).
    pub variables: Vec<String>,
    /// The fixed coefficient's label when the effect was written by label (`(1 + a | g)`).
    pub label: Option<String>,
    /// R's name of the effect: `(Intercept)`, `Days`, `x:z`.
    pub name: String,
}

/// The residual structure of one equation.
#[derive(Debug, Clone, PartialEq, Serialize)]
pub struct ResidualSpec {
    pub equation: usize,
    /// A separate residual variance per level of this column (nlme's varIdent).
    pub by: Option<String>,
    /// Residuals correlated within each unit of this column (compound symmetry).
    pub correlated_within: Option<String>,
    /// AR(1) residuals within each series of this column (`residual ar1 within column`,
    /// nlme's `corAR1(form = ~ 1 | column)`): by position in the file's `order`.
    pub ar1_within: Option<String>,
}

/// `name := expr`, lowered: the expression's names are labels, earlier definitions, or `vary`
/// names; `var()`, `sd()`, `cov()`, `cor()` take labels of random effects and optionally a
/// grouping.
#[derive(Debug, Clone, PartialEq, Serialize)]
pub struct Definition {
    pub name: String,
    pub value: Expression,
    pub span: Span,
}

/// What the command line may change in a checked model: the estimation method and the number
/// and seed of the interval's draws (`--method`, `--draws`, `--seed`).
#[derive(Debug, Clone, Copy, Default, PartialEq)]
pub struct Overrides {
    pub method: Option<Method>,
    pub draws: Option<usize>,
    pub seed: Option<u64>,
}

impl ModelSpec {
    /// The model with the command line's choices in place of the file's; every later stage
    /// reads them from here. Draws and seed apply to a Monte Carlo or bootstrap interval; a
    /// delta interval (or none) draws nothing.
    pub fn with_overrides(mut self, overrides: Overrides) -> Self {
        if let Some(method) = overrides.method {
            self.method = method;
        }
        if let Some(
            IntervalChoice::MonteCarlo { draws, seed, .. }
            | IntervalChoice::Bootstrap { draws, seed, .. }
            | IntervalChoice::ParametricBootstrap { draws, seed, .. },
        ) = &mut self.interval
        {
            *draws = overrides.draws.unwrap_or(*draws);
            *seed = overrides.seed.unwrap_or(*seed);
        }
        self
    }
}

/// How defined quantities get their intervals.
#[derive(Debug, Clone, PartialEq, Serialize)]
pub enum IntervalChoice {
    MonteCarlo {
        draws: usize,
        level: f64,
        seed: u64,
    },
    Bootstrap {
        draws: usize,
        level: f64,
        seed: u64,
        /// The grouping column whose units are resampled; rows when `None`.
        resample: Option<String>,
    },
    ParametricBootstrap {
        draws: usize,
        level: f64,
        seed: u64,
    },
    Delta {
        level: f64,
    },
}

/// `vary name = v1, v2, ...`
#[derive(Debug, Clone, PartialEq, Serialize)]
pub struct Vary {
    pub name: String,
    pub values: Vec<f64>,
}
