//! The covariance of all parameters (the rows of the `ParameterTable`) that the intervals of
//! `:=` definitions are drawn from: the joint fit's own, the observed information's, or, when
//! that cannot be formed, Cov(β̂) alone for definitions of fixed effects. Owns that choice; must
//! not compute the information itself (`estimate` does).

use nalgebra::DMatrix;

use super::defined::DefinedQuantities;
use crate::design::Design;
use crate::diagnostics::{Diagnostic, Location};
use crate::estimate::{self, Fit};
use crate::model::ModelSpec;
use crate::parameters::ParameterTable;

/// The covariance of the table's rows for the definitions in `quantities`: `joint` when the fit
/// computed it (a random coefficient as a predictor), else the observed information's inverse,
/// else the fixed effects' block (see `fixed_effects_covariance`). Notes and fallbacks are
/// pushed to `warnings`.
pub fn covariance_for_definitions(
    spec: &ModelSpec,
    design: &Design,
    fit: &Fit,
    table: &ParameterTable,
    quantities: &DefinedQuantities,
    joint: Option<DMatrix<f64>>,
    warnings: &mut Vec<String>,
) -> Result<DMatrix<f64>, Diagnostic> {
    if let Some(covariance) = joint {
        return Ok(covariance);
    }
    match estimate::parameter_covariance_generalized(design, fit, table) {
        Ok((covariance, note)) => {
            warnings.extend(note);
            Ok(covariance)
        }
        Err(why) => fixed_effects_covariance(spec, fit, table, quantities, &why, warnings),
    }
}

/// When the information matrix of all parameters cannot be formed (residuals correlated within
/// a unit have no row in the parameter table yet), definitions of fixed effects alone still have
/// what they need: the fit's Cov(β), with the variance parameters held at their estimates.
/// Definitions that involve a variance parameter cannot be given an interval then: refused,
/// located at the first of them.
fn fixed_effects_covariance(
    spec: &ModelSpec,
    fit: &Fit,
    table: &ParameterTable,
    quantities: &DefinedQuantities,
    why: &str,
    warnings: &mut Vec<String>,
) -> Result<DMatrix<f64>, Diagnostic> {
    let p = fit.fixed.len();
    let n = table.len();
    let jacobian = quantities.jacobian(&table.estimates());
    let names: Vec<&str> = quantities.names().collect();
    let involved: Vec<&str> = (0..jacobian.nrows())
        .filter(|&k| (p..n).any(|j| jacobian[(k, j)] != 0.0))
        .filter_map(|k| names.get(k).copied())
        .collect();
    if let Some(first) = involved.first() {
        let span = spec
            .definitions
            .iter()
            .find(|d| d.name == *first)
            .map(|d| d.span);
        return Err(Diagnostic::error(
            format!(
                "`{}` involve{} variance parameters, whose covariance cannot be computed at this \
                 fit: {why}",
                involved.join("`, `"),
                if involved.len() == 1 { "s" } else { "" }
            ),
            span.map_or(Location::None, Location::Source),
        )
        .with_hint(
            "this model's variance parameters have no joint information matrix with the \
             fixed effects; define the quantity from fixed effects only",
        ));
    }
    warnings.push(format!(
        "the covariance of all parameters cannot be computed at this fit ({why}); the defined \
         quantities involve fixed effects only and use their covariance Cov(β), the variance \
         parameters held at their estimates"
    ));
    let mut covariance = DMatrix::zeros(n, n);
    covariance
        .view_mut((0, 0), (p, p))
        .copy_from(&fit.beta_covariance);
    Ok(covariance)
}
