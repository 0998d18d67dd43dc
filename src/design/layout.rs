//! How a frame's rows become design rows: per observation of an equation its fixed row (shared
//! labels summed, columns with fixed coefficients gathered into the offset), the key of its
//! residual class, and per random term whether the term has an effect in that equation and its
//! z row. One layout serves the design pass (`statistics`) and the observation rows (`rows`),
//! so the sufficient statistics and the rows after a fit see the same columns.
//!
//! Owns that per-row layout. It must not sum, store or number anything.

use crate::data::Column;
use crate::model::ModelSpec;
use crate::prepare::AnalysisFrame;

use super::columns::{column_value, EquationColumns};
use super::grouping::Grouping;
use super::{ParameterMap, Target};

pub(super) struct DesignLayout<'a> {
    pub(super) frame: &'a AnalysisFrame,
    pub(super) equations: &'a [EquationColumns],
    pub(super) groupings: &'a [Grouping],
    fixed: &'a ParameterMap,
    /// Per term, per effect: (equation, frame columns of the slope's variables).
    pub(super) effects: Vec<Vec<(usize, Vec<usize>)>>,
    /// Per term, per equation: whether the term has an effect in that equation.
    pub(super) in_equation: Vec<Vec<bool>>,
    /// Number of free fixed-effect parameters (columns of X).
    pub(super) p: usize,
}

impl<'a> DesignLayout<'a> {
    pub(super) fn new(
        spec: &ModelSpec,
        frame: &'a AnalysisFrame,
        equations: &'a [EquationColumns],
        fixed: &'a ParameterMap,
        groupings: &'a [Grouping],
    ) -> Self {
        let effects: Vec<Vec<(usize, Vec<usize>)>> = spec
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
        let in_equation: Vec<Vec<bool>> = effects
            .iter()
            .map(|es| {
                (0..equations.len())
                    .map(|e| es.iter().any(|(eq, _)| *eq == e))
                    .collect()
            })
            .collect();
        DesignLayout {
            frame,
            equations,
            groupings,
            fixed,
            effects,
            in_equation,
            p: fixed.len(),
        }
    }

    /// Add equation `e`'s fixed columns at `row` into `x` (its first p entries; the caller zeroes
    /// them) and return the offset: the part of the linear predictor with fixed coefficients.
    pub(super) fn fixed_row(&self, e: usize, row: usize, x: &mut [f64]) -> f64 {
        let mut offset = 0.0;
        for (k, col) in self.equations[e].columns.iter().enumerate() {
            let v = col.value(self.frame, row);
            match self.fixed.target(e, k) {
                Target::Parameter(i) => x[i] += v,
                Target::Offset(c) => offset += c * v,
            }
        }
        offset
    }

    /// The `residual by` value of an observation of equation `e` at `row`: a hashable key
    /// (numeric bits or text code) and the value classes are ordered by; `(0, 0.0)` without `by`.
    pub(super) fn class_key(&self, e: usize, row: usize) -> (u64, f64) {
        match self.equations[e].by {
            None => (0u64, 0.0),
            Some(c) => match &self.frame.columns[c] {
                Column::Numeric(v) => (v[row].to_bits(), v[row]),
                Column::Text { codes, .. } => (u64::from(codes[row]), f64::from(codes[row])),
            },
        }
    }

    /// Term `k`'s z row for an observation of equation `e` at `row` (zero for the effects of
    /// other equations).
    pub(super) fn z_row(&self, k: usize, e: usize, row: usize, z: &mut [f64]) {
        for (zi, (eqi, vars)) in z.iter_mut().zip(&self.effects[k]) {
            *zi = if *eqi == e {
                vars.iter()
                    .map(|&c| column_value(self.frame, c, row))
                    .product()
            } else {
                0.0
            };
        }
    }
}
