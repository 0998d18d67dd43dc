//! The design row by row: per observation its fixed-effect row x, offset, outcome, residual
//! class, and per random term its level and z row.
//!
//! The estimation path never needs this (it works on `SufficientStatistics`, one pass). Methods
//! that must look at observations after a fit do: cluster-robust (sandwich) standard errors need
//! each cluster's X_j, y_j and Z_j, and the parametric bootstrap simulates outcomes row by row.
//! So this is a separate, second pass over the frame, laid out by the same `DesignLayout` as
//! `build`'s pass (column expansion, parameter sharing) and with its class order and level
//! numbering; it must not estimate anything.

use nalgebra::DMatrix;

use crate::diagnostics::{Diagnostic, Location};
use crate::model::ModelSpec;
use crate::prepare::AnalysisFrame;

use super::columns::column_value;
use super::grouping::{Grouping, NO_LEVEL};
use super::layout::DesignLayout;
use super::{equation_columns, groupings, shared_parameters};

/// The observations of a design, in the order `build` visits them (frame rows, then equations).
#[derive(Debug, Clone)]
pub struct ObservationRows {
    /// Frame row of each observation.
    pub row: Vec<usize>,
    /// Equation of each observation.
    pub equation: Vec<usize>,
    /// n × p: the free fixed-effect columns (shared labels summed), as `Design::fixed`.
    pub x: DMatrix<f64>,
    /// The part of the linear predictor with fixed coefficients (`0.5*x`).
    pub offset: Vec<f64>,
    /// The outcome as in the data (not offset-corrected).
    pub y: Vec<f64>,
    /// Residual class of each observation, an index into `Design::classes`.
    pub class: Vec<usize>,
    /// Per random term, in `ModelSpec::random` order.
    pub terms: Vec<TermRows>,
}

/// One random term's part of the observations.
#[derive(Debug, Clone)]
pub struct TermRows {
    /// Level of each observation, an index into `Design::random[k].levels`; `None` when the
    /// term has no effect in the observation's equation.
    pub level: Vec<Option<usize>>,
    /// n × q: the term's z row per observation (zero for effects of other equations).
    pub z: DMatrix<f64>,
    pub nlevels: usize,
}

impl ObservationRows {
    pub fn len(&self) -> usize {
        self.row.len()
    }

    pub fn is_empty(&self) -> bool {
        self.row.is_empty()
    }
}

/// Every observation of `spec` on `frame`, row by row.
pub fn observation_rows(
    spec: &ModelSpec,
    frame: &AnalysisFrame,
) -> Result<ObservationRows, Vec<Diagnostic>> {
    let mut errors = Vec::new();
    let equations = equation_columns(spec, frame, &mut errors);
    let groupings = groupings(spec, frame, &mut errors);
    if !errors.is_empty() {
        return Err(errors);
    }
    let fixed = shared_parameters(&equations);
    let layout = DesignLayout::new(spec, frame, &equations, &fixed, &groupings);
    let laid = LaidOut::new(&layout);
    let n = laid.row.len();
    if n == 0 {
        return Err(vec![Diagnostic::error(
            "no observations: every row misses a model variable",
            Location::None,
        )]);
    }
    let class = class_numbers(&laid.class_key);
    let terms = laid
        .codes
        .into_iter()
        .zip(laid.z)
        .zip(&groupings)
        .zip(&layout.effects)
        .map(|(((codes, z), g), effects)| term_rows(codes, &z, g, effects.len()))
        .collect();
    Ok(ObservationRows {
        row: laid.row,
        equation: laid.equation,
        x: DMatrix::from_row_slice(n, layout.p, &laid.x),
        offset: laid.offset,
        y: laid.y,
        class,
        terms,
    })
}

/// The observations laid out, in the order `build` visits them, before classes and levels are
/// numbered.
struct LaidOut {
    row: Vec<usize>,
    equation: Vec<usize>,
    /// Row-major n × p.
    x: Vec<f64>,
    offset: Vec<f64>,
    y: Vec<f64>,
    /// Per observation: (equation, the `by` value classes are ordered by).
    class_key: Vec<(usize, f64)>,
    /// Per term, per observation: the grouping code, `NO_LEVEL` when the term has no effect in
    /// the observation's equation.
    codes: Vec<Vec<u32>>,
    /// Per term: row-major n × q.
    z: Vec<Vec<f64>>,
}

impl LaidOut {
    fn new(layout: &DesignLayout) -> Self {
        let nterms = layout.effects.len();
        let mut laid = LaidOut {
            row: Vec::new(),
            equation: Vec::new(),
            x: Vec::new(),
            offset: Vec::new(),
            y: Vec::new(),
            class_key: Vec::new(),
            codes: vec![Vec::new(); nterms],
            z: vec![Vec::new(); nterms],
        };
        let frame = layout.frame;
        for r in 0..frame.nrows {
            for (e, eq) in layout.equations.iter().enumerate() {
                if !eq.complete(frame, r) {
                    continue;
                }
                laid.row.push(r);
                laid.equation.push(e);
                let mut xr = vec![0.0; layout.p];
                let off = layout.fixed_row(e, r, &mut xr);
                laid.x.extend_from_slice(&xr);
                laid.offset.push(off);
                laid.y.push(column_value(frame, eq.outcome, r));
                laid.class_key.push((e, layout.class_key(e, r).1));
                laid.push_terms(layout, e, r);
            }
        }
        laid
    }

    /// Each term's grouping code and z row of an observation of equation `e` at row `r`.
    fn push_terms(&mut self, layout: &DesignLayout, e: usize, r: usize) {
        for (k, effects) in layout.effects.iter().enumerate() {
            let active = layout.in_equation[k][e];
            self.codes[k].push(if active {
                layout.groupings[k].codes[r]
            } else {
                NO_LEVEL
            });
            let mut zr = vec![0.0; effects.len()];
            layout.z_row(k, e, r, &mut zr);
            self.z[k].extend_from_slice(&zr);
        }
    }
}

/// Classes numbered as `build` numbers them: by equation, then the `by` column's order.
fn class_numbers(class_key: &[(usize, f64)]) -> Vec<usize> {
    let mut keys: Vec<(usize, f64)> = class_key.to_vec();
    keys.sort_by(|a, b| a.partial_cmp(b).unwrap_or(std::cmp::Ordering::Equal));
    keys.dedup();
    class_key
        .iter()
        .map(|k| keys.iter().position(|c| c == k).unwrap_or(0))
        .collect()
}

/// One term's rows, levels numbered as `build` numbers them: the grouping's first-appearance
/// order, keeping only levels with observations.
fn term_rows(codes: Vec<u32>, z: &[f64], grouping: &Grouping, q: usize) -> TermRows {
    let mut used = vec![false; grouping.nlevels()];
    for &c in codes.iter().filter(|&&c| c != NO_LEVEL) {
        used[c as usize] = true;
    }
    let mut dense = vec![usize::MAX; grouping.nlevels()];
    let mut nlevels = 0;
    for (old, _) in used.iter().enumerate().filter(|(_, u)| **u) {
        dense[old] = nlevels;
        nlevels += 1;
    }
    TermRows {
        level: codes
            .iter()
            .map(|&c| (c != NO_LEVEL).then(|| dense[c as usize]))
            .collect(),
        z: DMatrix::from_row_slice(codes.len(), q, z),
        nlevels,
    }
}

/// The frame rows each equation of `spec` uses (those missing none of its model variables), per
/// equation in order: the observations `build` sums. For comparing which rows two models use
/// (`tandem compare`) without a second pass over the design.
pub fn rows_used(
    spec: &ModelSpec,
    frame: &AnalysisFrame,
) -> Result<Vec<Vec<usize>>, Vec<Diagnostic>> {
    let mut errors = Vec::new();
    let equations = equation_columns(spec, frame, &mut errors);
    if !errors.is_empty() {
        return Err(errors);
    }
    Ok((equations.iter())
        .map(|eq| {
            (0..frame.nrows)
                .filter(|&r| eq.complete(frame, r))
                .collect()
        })
        .collect())
}
