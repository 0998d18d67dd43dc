//! The fixed part's slope in one predictor, row by row: for each observation the fixed-effect
//! row x_i and offset, and their derivatives in the predictor, ∂x_i/∂v and ∂offset_i/∂v, which
//! an average marginal effect (`ame(v)`) weighs with the link's slope. Owns building them from
//! the same column code as the fit's design; must not know about links or parameters.
//!
//! Every fixed column is a product of distinct variables (`x:x` is `x`, as in R), so it is
//! linear in `v`, and the central difference of the design at v ± 1 is its exact derivative, not
//! an approximation. A predictor computed from `v` in a `let` is another variable here; the
//! checker refuses `ame(v)` then.

use nalgebra::DMatrix;

use super::rows::observation_rows;
use crate::data::Column;
use crate::diagnostics::{Diagnostic, Location};
use crate::model::ModelSpec;
use crate::prepare::AnalysisFrame;

/// One predictor's slopes of the fixed part, one row per observation (as `ObservationRows`).
#[derive(Debug, Clone, PartialEq)]
pub struct FixedSlopes {
    /// The frame row of each observation.
    pub row: Vec<usize>,
    /// n × p: the fixed-effect rows.
    pub x: DMatrix<f64>,
    /// The part of the linear predictor with fixed coefficients.
    pub offset: Vec<f64>,
    /// n × p: ∂x_i/∂v.
    pub dx: DMatrix<f64>,
    /// ∂offset_i/∂v.
    pub doffset: Vec<f64>,
}

/// The fixed part's rows of `spec` on `frame` and their slopes in the numeric frame variable
/// `variable`.
pub fn fixed_slopes(
    spec: &ModelSpec,
    frame: &AnalysisFrame,
    variable: &str,
) -> Result<FixedSlopes, Vec<Diagnostic>> {
    let Some(position) = frame.names.iter().position(|n| n == variable) else {
        return Err(not_numeric(variable));
    };
    let Column::Numeric(values) = &frame.columns[position] else {
        return Err(not_numeric(variable));
    };
    let shifted = |by: f64| {
        let mut moved = frame.clone();
        moved.columns[position] = Column::Numeric(values.iter().map(|v| v + by).collect());
        observation_rows(spec, &moved)
    };
    let at = observation_rows(spec, frame)?;
    let (up, down) = (shifted(1.0)?, shifted(-1.0)?);
    if up.x.shape() != at.x.shape() || down.x.shape() != at.x.shape() {
        return Err(vec![Diagnostic::error(
            format!("internal: moving `{variable}` changed the design's shape"),
            Location::None,
        )]);
    }
    let dx = (&up.x - &down.x) * 0.5;
    let doffset = (up.offset.iter().zip(&down.offset))
        .map(|(u, d)| 0.5 * (u - d))
        .collect();
    Ok(FixedSlopes {
        row: at.row,
        x: at.x,
        offset: at.offset,
        dx,
        doffset,
    })
}

fn not_numeric(variable: &str) -> Vec<Diagnostic> {
    vec![Diagnostic::error(
        format!("`{variable}` is not a numeric variable of the analysis frame"),
        Location::None,
    )]
}
