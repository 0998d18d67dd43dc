//! The design row by row: per observation its fixed-effect row x, offset, outcome, residual
//! class, and per random term its level and z row.
//!
//! The estimation path never needs this (it works on `SufficientStatistics`, one pass). Methods
//! that must look at observations after a fit do: cluster-robust (sandwich) standard errors need
//! each cluster's X_j, y_j and Z_j, and the parametric bootstrap simulates outcomes row by row.
//! So this is a separate, second pass over the frame, built with the same column expansion,
//! parameter sharing, class order and level numbering as `build`; it must not estimate anything.

use nalgebra::DMatrix;

use crate::data::Column;
use crate::diagnostics::{Diagnostic, Location};
use crate::model::ModelSpec;
use crate::prepare::AnalysisFrame;

use super::columns::{column_value, EquationColumns};
use super::grouping::{Grouping, NO_LEVEL};
use super::{shared_parameters, Target};

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
    let mut equations = Vec::new();
    for (e, eq) in spec.equations.iter().enumerate() {
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
    let mut groupings = Vec::new();
    for term in &spec.random {
        match Grouping::new(term, frame) {
            Ok(g) => groupings.push(g),
            Err(d) => errors.push(*d),
        }
    }
    if !errors.is_empty() {
        return Err(errors);
    }
    let fixed = shared_parameters(&equations);
    let p = fixed.len();
    let slope_columns: Vec<Vec<(usize, Vec<usize>)>> = spec
        .random
        .iter()
        .map(|t| {
            t.effects
                .iter()
                .map(|e| {
                    let cols = e
                        .variables
                        .iter()
                        .filter_map(|v| frame.names.iter().position(|n| n == v))
                        .collect();
                    (e.equation, cols)
                })
                .collect()
        })
        .collect();

    let mut row = Vec::new();
    let mut equation = Vec::new();
    let mut x: Vec<f64> = Vec::new();
    let mut offset = Vec::new();
    let mut y = Vec::new();
    let mut class_key: Vec<(usize, f64)> = Vec::new();
    let mut codes: Vec<Vec<u32>> = vec![Vec::new(); spec.random.len()];
    let mut z: Vec<Vec<f64>> = vec![Vec::new(); spec.random.len()];
    for r in 0..frame.nrows {
        for (e, eq) in equations.iter().enumerate() {
            if !eq.complete(frame, r) {
                continue;
            }
            row.push(r);
            equation.push(e);
            let mut xr = vec![0.0; p];
            let mut off = 0.0;
            for (k, col) in eq.columns.iter().enumerate() {
                let v = col.value(frame, r);
                match fixed.target(e, k) {
                    Target::Parameter(i) => xr[i] += v,
                    Target::Offset(c) => off += c * v,
                }
            }
            x.extend_from_slice(&xr);
            offset.push(off);
            y.push(column_value(frame, eq.outcome, r));
            class_key.push(match eq.by {
                None => (e, 0.0),
                Some(c) => match &frame.columns[c] {
                    Column::Numeric(v) => (e, v[r]),
                    Column::Text { codes, .. } => (e, f64::from(codes[r])),
                },
            });
            for (k, effects) in slope_columns.iter().enumerate() {
                let active = effects.iter().any(|(q, _)| *q == e);
                codes[k].push(if active {
                    groupings[k].codes[r]
                } else {
                    NO_LEVEL
                });
                for (q, cols) in effects {
                    z[k].push(if *q == e && active {
                        cols.iter().map(|&c| column_value(frame, c, r)).product()
                    } else {
                        0.0
                    });
                }
            }
        }
    }
    let n = row.len();
    if n == 0 {
        return Err(vec![Diagnostic::error(
            "no observations: every row misses a model variable",
            Location::None,
        )]);
    }

    // Classes numbered as `build` numbers them: by equation, then the `by` column's order.
    let mut keys: Vec<(usize, f64)> = class_key.clone();
    keys.sort_by(|a, b| a.partial_cmp(b).unwrap_or(std::cmp::Ordering::Equal));
    keys.dedup();
    let class = class_key
        .iter()
        .map(|k| keys.iter().position(|c| c == k).unwrap_or(0))
        .collect();

    // Levels numbered as `build` numbers them: the grouping's first-appearance order, keeping
    // only levels with observations.
    let terms = codes
        .into_iter()
        .zip(z)
        .zip(&groupings)
        .zip(&slope_columns)
        .map(|(((codes, z), g), effects)| {
            let mut used = vec![false; g.nlevels()];
            for &c in codes.iter().filter(|&&c| c != NO_LEVEL) {
                used[c as usize] = true;
            }
            let mut dense = vec![usize::MAX; g.nlevels()];
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
                z: DMatrix::from_row_slice(n, effects.len(), &z),
                nlevels,
            }
        })
        .collect();

    Ok(ObservationRows {
        row,
        equation,
        x: DMatrix::from_row_slice(n, p, &x),
        offset,
        y,
        class,
        terms,
    })
}
