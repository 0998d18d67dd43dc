//! One bootstrap replicate refitted as the original was (the same method, the design rebuilt
//! from the replicate's frame, the original optimum offered as a start) and reduced to the
//! statistics the bootstrap summarises. Owns that refit; must not resample or summarise.

use super::bootstrap::Replicate;
use super::defined::DefinedQuantities;
use crate::design;
use crate::diagnostics::Diagnostic;
use crate::estimate;
use crate::model::{Method, ModelSpec};
use crate::parameters::ParameterTable;
use crate::prepare::AnalysisFrame;

/// Refit a replicate frame as the original was fitted (the optimizer also trying `warm`, the
/// original optimum, as a start) and report its statistics: the ParameterTable's estimates,
/// then the defined quantities evaluated on them.
pub fn refit_statistics(
    spec: &ModelSpec,
    frame: &AnalysisFrame,
    method: Method,
    quantities: Option<&DefinedQuantities>,
    warm: Option<&[f64]>,
) -> Result<Replicate, String> {
    let first = |d: Vec<Diagnostic>| {
        d.into_iter()
            .next()
            .map_or_else(|| "the refit failed".to_string(), |d| d.message)
    };
    let design = design::build(spec, frame).map_err(first)?;
    let fit = if design.latent.is_some() {
        estimate::fit_latent_estimates(&design, method).map_err(first)?
    } else {
        estimate::fit_from(&design, method, warm).map_err(first)?
    };
    let mut values = ParameterTable::from_fit(spec, &design, &fit).estimates();
    if let Some(q) = quantities {
        // The programs index the original table's rows: a replicate whose table differs (a
        // level missing from it) must not be evaluated.
        if values.len() != q.parameters {
            return Err(format!(
                "the refit has {} parameters, the model {}",
                values.len(),
                q.parameters
            ));
        }
        let defined = q.values(&values);
        values.extend(defined);
    }
    Ok(Replicate {
        values,
        converged: fit.converged,
    })
}
