//! The design of a model on an analysis frame: fixed-effect columns with R's term names,
//! random-effect terms per grouping factor, residual classes, and the sufficient statistics the
//! likelihood needs, accumulated in one pass over the rows.
//!
//! It must not optimize anything; after it, nothing touches rows again.

mod columns;
mod grouping;
mod identifiable;
mod layout;
mod pieces;
mod random_coefficients;
mod rank;
mod rows;
mod slopes;
mod statistics;

use crate::diagnostics::{Diagnostic, Location};
use crate::model::{Coefficient, ModelSpec};
use crate::prepare::AnalysisFrame;

pub use pieces::{
    levels_seen, merge_levels_seen, LevelsSeen, LocalGroupings, PieceDesign, PieceGroupings,
    PieceSums,
};
pub use random_coefficients::{GroupColumn, GroupObservation, LatentOutcome};
pub use rows::{observation_rows, rows_used, ObservationRows, TermRows};
pub use slopes::{fixed_slopes, FixedSlopes};
pub use statistics::{
    CrossBlock, CrossStatistics, FactorStatistics, LevelBlock, SeriesClass, SeriesStatistics,
    SufficientStatistics, UnitSize, WithinUnitStatistics,
};

use columns::EquationColumns;
use grouping::Grouping;

/// Everything estimation needs from the data, plus the names the report needs.
#[derive(Debug, Clone)]
pub struct Design {
    /// The free fixed-effect parameters, in the order of the columns of X.
    pub fixed: Vec<FixedParameter>,
    /// The random-effect terms, in the order of `ModelSpec::random`.
    pub random: Vec<RandomTerm>,
    /// Residual classes (equation, level of `by`); the first one's relative SD is fixed at 1.
    pub classes: Vec<ResidualClass>,
    /// Observations used and dropped, per equation.
    pub equations: Vec<EquationObservations>,
    /// Prepared rows that no equation uses (they miss a variable of every equation).
    pub rows_unused: usize,
    pub stats: SufficientStatistics,
    /// The group-level equation with a latent random coefficient as a predictor, fitted jointly
    /// with the level-1 rows (`estimate::fit_latent`); `None` for ordinary models.
    pub latent: Option<LatentOutcome>,
}

impl Design {
    pub fn nobs(&self) -> usize {
        self.stats.n.iter().sum()
    }
}

/// One free fixed coefficient. Several columns share it when they carry the same label.
#[derive(Debug, Clone, PartialEq)]
pub struct FixedParameter {
    /// Each (equation index, R's term name) this parameter multiplies; the first is its name.
    pub columns: Vec<(usize, String)>,
    pub label: Option<String>,
}

impl FixedParameter {
    pub fn equation(&self) -> usize {
        self.columns[0].0
    }
    pub fn term(&self) -> &str {
        &self.columns[0].1
    }
}

/// A random-effect term: `q` effects varying over the levels of one grouping factor.
#[derive(Debug, Clone, PartialEq)]
pub struct RandomTerm {
    /// lme4's name of the grouping (`Subject`, `cask:batch`).
    pub name: String,
    /// (equation index, R's effect name) per effect.
    pub effects: Vec<(usize, String)>,
    pub correlated: bool,
    /// Level names in order of first appearance.
    pub levels: Vec<String>,
}

impl RandomTerm {
    pub fn q(&self) -> usize {
        self.effects.len()
    }
}

/// A set of observations sharing one residual variance.
#[derive(Debug, Clone, PartialEq)]
pub struct ResidualClass {
    pub equation: usize,
    /// The level of the equation's `by` column, `None` without `residual by`.
    pub level: Option<String>,
    pub nobs: usize,
}

/// How many observations an equation has, and how many rows it lost to missing values.
#[derive(Debug, Clone, PartialEq)]
pub struct EquationObservations {
    pub outcome: String,
    pub used: usize,
    pub dropped: usize,
    /// Per model variable: rows in which it was missing (a row can count for several).
    pub missing: Vec<(String, usize)>,
}

/// Build the design of `spec` on `frame` and accumulate its sufficient statistics in one pass.
pub fn build(spec: &ModelSpec, frame: &AnalysisFrame) -> Result<Design, Vec<Diagnostic>> {
    build_in_chunks(spec, frame, statistics::CHUNK_ROWS)
}

/// `build` with the one-pass accumulation split into chunks of `chunk_rows` rows (summed in
/// parallel, merged in order). `build` uses a fixed size; tests use small chunks to exercise the
/// merge on small data.
#[doc(hidden)]
pub fn build_in_chunks(
    spec: &ModelSpec,
    frame: &AnalysisFrame,
    chunk_rows: usize,
) -> Result<Design, Vec<Diagnostic>> {
    // What the design cannot build is the checker's to say, located; a spec that did not come
    // through it is refused here by the same rules rather than built wrong.
    let mut errors = crate::model::unsupported(spec);
    if spec.has_random_coefficients() {
        if !errors.is_empty() {
            return Err(errors);
        }
        return random_coefficients::build(spec, frame);
    }
    if spec.equations.is_empty() {
        errors.push(Diagnostic::error(
            "the model has no equation",
            Location::None,
        ));
    }
    if !errors.is_empty() {
        return Err(errors);
    }

    let equations = equation_columns(spec, frame, &mut errors);
    let groupings = groupings(spec, frame, &mut errors);
    errors.extend(random_term_problems(spec, frame));
    if !errors.is_empty() {
        return Err(errors);
    }
    let fixed = shared_parameters(&equations);
    let accumulated =
        statistics::accumulate(spec, frame, &equations, &fixed, &groupings, chunk_rows)?;
    let names = groupings.iter().map(Grouping::level_names).collect();
    complete(spec, fixed, accumulated, names)
}

/// Each equation's fixed columns; their problems go to `errors`.
fn equation_columns(
    spec: &ModelSpec,
    frame: &AnalysisFrame,
    errors: &mut Vec<Diagnostic>,
) -> Vec<EquationColumns> {
    let mut equations = Vec::new();
    for (e, eq) in spec.equations.iter().enumerate() {
        // A level no observation of this equation has (rows dropped by `keep` or by missing
        // values) gets no column, as R drops unused levels: a scan of the needed columns, before
        // the one statistics pass.
        let built = EquationColumns::new(e, eq, spec, frame, None).and_then(|cols| {
            match cols.levels_present(frame) {
                None => Ok(cols),
                Some(present) => EquationColumns::new(e, eq, spec, frame, Some(&present)),
            }
        });
        match built {
            Ok(cols) => equations.push(cols),
            Err(mut d) => errors.append(&mut d),
        }
    }
    equations
}

/// Each random term's grouping levels; their problems go to `errors`.
fn groupings(
    spec: &ModelSpec,
    frame: &AnalysisFrame,
    errors: &mut Vec<Diagnostic>,
) -> Vec<Grouping> {
    let mut groupings = Vec::new();
    for term in &spec.random {
        match Grouping::new(term, frame) {
            Ok(g) => groupings.push(g),
            Err(d) => errors.push(*d),
        }
    }
    groupings
}

/// The random terms' effects: of an equation that exists, slopes of numeric columns.
fn random_term_problems(spec: &ModelSpec, frame: &AnalysisFrame) -> Vec<Diagnostic> {
    let mut errors = Vec::new();
    for term in &spec.random {
        for effect in &term.effects {
            if effect.equation >= spec.equations.len() {
                errors.push(Diagnostic::at(
                    format!("random effect `{}` refers to no equation", effect.name),
                    term.span,
                ));
            }
            for v in &effect.variables {
                // Here, not in the checker: a `let` is text or numbers once evaluated.
                match frame.column(v) {
                    Some(crate::data::Column::Numeric(_)) => {}
                    Some(_) => errors.push(not_supported(
                        &format!("a random slope of the text column `{v}`"),
                        term.span,
                    )),
                    None => errors.push(Diagnostic::at(
                        format!("no column `{v}` for a random slope"),
                        term.span,
                    )),
                }
            }
        }
    }
    errors
}

/// The design from the sums of all rows: the checks that need them (a within-unit correlation
/// with units of one row, rank, identifiability), then the names.
fn complete(
    spec: &ModelSpec,
    fixed: ParameterMap,
    accumulated: statistics::Accumulated,
    level_names: Vec<Vec<String>>,
) -> Result<Design, Vec<Diagnostic>> {
    if let Some(w) = &accumulated.0.within {
        if w.sizes.iter().all(|s| s.size < 2) {
            let location = spec
                .residual
                .iter()
                .find(|r| r.correlated_within.as_deref() == Some(w.unit.as_str()))
                .and_then(|r| spec.equations.get(r.equation))
                .map_or(Location::None, |e| Location::Source(e.span));
            return Err(vec![Diagnostic::error(
                format!(
                    "every unit of `{}` has a single observation: there is no within-unit \
                     residual correlation to estimate",
                    w.unit
                ),
                location,
            )
            .with_hint(format!(
                "drop `correlated within {}`, or check that column and the `keep` statements",
                w.unit
            ))]);
        }
    }
    let (stats, classes, observations, kept_levels, rows_unused) = accumulated;
    let mut problems = rank::problems(spec, &fixed.parameters, &stats, &classes);
    problems.extend(identifiable::problems(spec, &stats, &classes));
    if !problems.is_empty() {
        return Err(problems);
    }
    Ok(Design {
        fixed: fixed.parameters,
        random: spec
            .random
            .iter()
            .zip(&level_names)
            .zip(&kept_levels)
            .map(|((t, names), kept)| RandomTerm {
                name: t.name.clone(),
                effects: t
                    .effects
                    .iter()
                    .map(|e| (e.equation, e.name.clone()))
                    .collect(),
                correlated: t.correlated,
                levels: kept.iter().map(|&i| names[i].clone()).collect(),
            })
            .collect(),
        classes,
        equations: observations,
        rows_unused,
        stats,
        latent: None,
    })
}

fn not_supported(what: &str, span: crate::diagnostics::Span) -> Diagnostic {
    Diagnostic::at(format!("{what} is not supported yet"), span)
}

/// Where each equation's design column goes: a free parameter (shared by equal labels) or the
/// offset (a fixed value).
pub(crate) struct ParameterMap {
    parameters: Vec<FixedParameter>,
    /// Per equation, per column: `Target`.
    targets: Vec<Vec<Target>>,
}

#[derive(Debug, Clone, Copy)]
pub(crate) enum Target {
    Parameter(usize),
    Offset(f64),
}

fn shared_parameters(equations: &[EquationColumns]) -> ParameterMap {
    let mut parameters: Vec<FixedParameter> = Vec::new();
    let mut targets = Vec::new();
    for eq in equations {
        let mut t = Vec::new();
        for col in &eq.columns {
            t.push(match &col.coefficient {
                Coefficient::Fixed(v) => Target::Offset(*v),
                Coefficient::Free { label } => {
                    let existing = label.as_ref().and_then(|l| {
                        parameters
                            .iter()
                            .position(|p| p.label.as_deref() == Some(l.as_str()))
                    });
                    match existing {
                        Some(i) => {
                            parameters[i].columns.push((eq.equation, col.name.clone()));
                            Target::Parameter(i)
                        }
                        None => {
                            parameters.push(FixedParameter {
                                columns: vec![(eq.equation, col.name.clone())],
                                label: label.clone(),
                            });
                            Target::Parameter(parameters.len() - 1)
                        }
                    }
                }
            });
        }
        targets.push(t);
    }
    ParameterMap {
        parameters,
        targets,
    }
}

impl ParameterMap {
    pub(crate) fn len(&self) -> usize {
        self.parameters.len()
    }
    pub(crate) fn target(&self, equation: usize, column: usize) -> Target {
        self.targets[equation][column]
    }
}
