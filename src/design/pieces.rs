//! The design of a model whose rows come in pieces, in file order (a data file read out of
//! core): the fixed columns are built once, from the first piece's frame and the levels every
//! piece's observations have; grouping levels are numbered across pieces in order of first
//! appearance; each piece's rows are summed on their own (in parallel with other pieces) and
//! the sums merged in file order: the statistics `build` gives for the whole frame, up to the
//! order in which rows were added (the last bits).
//!
//! Owns only that bookkeeping. It must not read files or prepare rows, and it relies on every
//! piece coding a text column alike (the caller's job).

use std::collections::HashMap;

use crate::diagnostics::{Diagnostic, Location};
use crate::model::ModelSpec;
use crate::prepare::AnalysisFrame;

use super::columns::EquationColumns;
use super::grouping::{Grouping, LevelIndex, NO_LEVEL};
use super::statistics::{self, Pass};
use super::{complete, random_term_problems, shared_parameters, Design, ParameterMap};

/// Per equation, per text column of an indicator (frame index): the levels seen in its
/// observations.
pub type LevelsSeen = Vec<HashMap<usize, Vec<bool>>>;

/// The levels each equation's observations have in one piece (merge the pieces' with
/// `merge_levels_seen`).
pub fn levels_seen(spec: &ModelSpec, frame: &AnalysisFrame) -> Result<LevelsSeen, Vec<Diagnostic>> {
    spec.equations
        .iter()
        .enumerate()
        .map(|(e, eq)| EquationColumns::new(e, eq, spec, frame, None).map(|c| c.levels_seen(frame)))
        .collect()
}

pub fn merge_levels_seen(into: &mut LevelsSeen, other: LevelsSeen) {
    if into.is_empty() {
        *into = other;
        return;
    }
    for (mine, theirs) in into.iter_mut().zip(other) {
        for (column, seen) in theirs {
            let entry = mine
                .entry(column)
                .or_insert_with(|| vec![false; seen.len()]);
            for (a, b) in entry.iter_mut().zip(seen) {
                *a |= b;
            }
        }
    }
}

/// One piece's groupings, numbered on their own.
pub struct LocalGroupings(Vec<(Grouping, LevelIndex)>);

/// One piece's groupings, numbered after the pieces before it.
pub struct PieceGroupings(Vec<Grouping>);

/// One piece's sums.
pub struct PieceSums(Pass);

pub struct PieceDesign<'s> {
    spec: &'s ModelSpec,
    equations: Vec<EquationColumns>,
    fixed: ParameterMap,
    levels: Vec<LevelIndex>,
    sums: Option<Pass>,
    nrows: usize,
}

impl<'s> PieceDesign<'s> {
    /// The columns from `template` (a piece's frame: its names, kinds and text levels are every
    /// piece's) and the levels seen in all pieces.
    pub fn new(
        spec: &'s ModelSpec,
        template: &AnalysisFrame,
        seen: &LevelsSeen,
    ) -> Result<Self, Vec<Diagnostic>> {
        let mut errors = crate::model::unsupported(spec);
        if spec.equations.is_empty() {
            errors.push(Diagnostic::error(
                "the model has no equation",
                Location::None,
            ));
        }
        let mut equations = Vec::new();
        for (e, eq) in spec.equations.iter().enumerate() {
            let present = seen
                .get(e)
                .filter(|p| !p.values().all(|s| s.iter().all(|x| *x)));
            match EquationColumns::new(e, eq, spec, template, present) {
                Ok(cols) => equations.push(cols),
                Err(mut d) => errors.append(&mut d),
            }
        }
        errors.extend(random_term_problems(spec, template));
        if !errors.is_empty() {
            return Err(errors);
        }
        let fixed = shared_parameters(&equations);
        Ok(PieceDesign {
            spec,
            equations,
            fixed,
            levels: vec![LevelIndex::default(); spec.random.len()],
            sums: None,
            nrows: 0,
        })
    }

    /// A piece's groupings numbered on their own (any piece, in parallel): the per-row work.
    pub fn local_groups(&self, frame: &AnalysisFrame) -> Result<LocalGroupings, Vec<Diagnostic>> {
        self.spec
            .random
            .iter()
            .map(|term| {
                let mut levels = LevelIndex::default();
                Grouping::continued(term, frame, &mut levels)
                    .map(|g| (g, levels))
                    .map_err(|d| vec![*d])
            })
            .collect::<Result<Vec<_>, _>>()
            .map(LocalGroupings)
    }

    /// Number a piece's groups after those of the pieces before it (call in file order): the
    /// whole file's levels in order of first appearance.
    pub fn number_groups(&mut self, local: LocalGroupings) -> PieceGroupings {
        PieceGroupings(
            local
                .0
                .into_iter()
                .zip(&mut self.levels)
                .map(|((mut grouping, own), all)| {
                    let remap = all.continue_with(&own);
                    for code in grouping.codes.iter_mut().filter(|c| **c != NO_LEVEL) {
                        *code = remap[*code as usize];
                    }
                    grouping
                })
                .collect(),
        )
    }

    /// Sum one piece's rows (any piece, in any order, in parallel).
    pub fn sum_piece(&self, frame: &AnalysisFrame, groupings: &PieceGroupings) -> PieceSums {
        PieceSums(statistics::sum_rows(
            self.spec,
            frame,
            &self.equations,
            &self.fixed,
            &groupings.0,
            statistics::CHUNK_ROWS,
        ))
    }

    /// Add a piece's sums (in file order).
    pub fn add(&mut self, sums: PieceSums, nrows: usize) {
        self.nrows += nrows;
        match &mut self.sums {
            None => self.sums = Some(sums.0),
            Some(all) => all.merge(sums.0, self.fixed.len() + 1),
        }
    }

    pub fn finish(self) -> Result<Design, Vec<Diagnostic>> {
        let Some(pass) = self.sums else {
            return Err(vec![Diagnostic::error(
                "no observations: the data file has no rows",
                Location::None,
            )]);
        };
        let nlevels: Vec<usize> = self.levels.iter().map(LevelIndex::nlevels).collect();
        let accumulated =
            statistics::finish(self.spec, pass, &nlevels, self.nrows, self.fixed.len())?;
        let names = self.levels.iter().map(|l| l.names().to_vec()).collect();
        complete(self.spec, self.fixed, accumulated, names)
    }
}
