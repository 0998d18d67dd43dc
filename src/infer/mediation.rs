//! The mediation summary of a file that defines an indirect effect (`indirect` or `ab`) and a
//! `total`: indirect (ACME), direct (ADE = total − indirect), total, and proportion mediated
//! (indirect / total), like R's `mediate()` prints them.
//!
//! Direct and proportion are appended to the compiled definitions as two more programs, so
//! one run gives every row its delta SE and its interval from the SAME parameter draws (draws
//! depend only on the seed and V̂, never on how many definitions are evaluated). Owns that
//! recognition and bookkeeping; it must not draw or differentiate by itself.

use nalgebra::DMatrix;

use crate::diagnostics::Diagnostic;

use super::defined::{DefinedQuantities, Op, Program};
use super::defined_estimates::{estimate_defined, DefinedEstimate, IntervalMethod};

/// Definition names recognised as the indirect effect, in order of preference.
pub const INDIRECT_NAMES: &[&str] = &["indirect", "ab"];
pub const TOTAL_NAME: &str = "total";

#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum MediationEffect {
    Indirect,
    Direct,
    Total,
    ProportionMediated,
}

impl MediationEffect {
    /// The label R's `mediate()` prints.
    pub fn label(self) -> &'static str {
        match self {
            MediationEffect::Indirect => "ACME",
            MediationEffect::Direct => "ADE",
            MediationEffect::Total => "Total Effect",
            MediationEffect::ProportionMediated => "Prop. Mediated",
        }
    }
}

#[derive(Debug, Clone, PartialEq)]
pub struct MediationRow {
    pub effect: MediationEffect,
    pub result: DefinedEstimate,
}

#[derive(Debug, Clone, PartialEq)]
pub struct MediationSummary {
    /// The definitions read as indirect and total.
    pub indirect: String,
    pub total: String,
    /// Indirect, direct, total, proportion mediated.
    pub rows: Vec<MediationRow>,
}

/// The file's definitions plus `direct` and `proportion mediated`, and where each effect is.
#[derive(Debug, Clone, PartialEq)]
pub struct MediationPlan {
    pub quantities: DefinedQuantities,
    /// How many of `quantities` are the file's own definitions (they come first).
    pub original: usize,
    indirect: usize,
    total: usize,
}

impl MediationPlan {
    /// `None` when the definitions have no indirect effect or no total.
    pub fn new(quantities: &DefinedQuantities) -> Option<Self> {
        let position = |name: &str| quantities.programs.iter().position(|p| p.name == name);
        let indirect = INDIRECT_NAMES.iter().find_map(|n| position(n))?;
        let total = position(TOTAL_NAME)?;
        let mut augmented = quantities.clone();
        let span = quantities.programs[indirect].span;
        augmented.programs.push(Program {
            name: "direct".to_string(),
            span,
            ops: vec![Op::Defined(total), Op::Defined(indirect), Op::Sub],
        });
        augmented.programs.push(Program {
            name: "proportion mediated".to_string(),
            span,
            ops: vec![Op::Defined(indirect), Op::Defined(total), Op::Div],
        });
        Some(MediationPlan {
            quantities: augmented,
            original: quantities.len(),
            indirect,
            total,
        })
    }

    /// Picks the summary out of results for `self.quantities` (all of them, in order).
    pub fn summary(&self, results: &[DefinedEstimate]) -> MediationSummary {
        let row = |effect, k: usize| MediationRow {
            effect,
            result: results[k].clone(),
        };
        MediationSummary {
            indirect: results[self.indirect].name.clone(),
            total: results[self.total].name.clone(),
            rows: vec![
                row(MediationEffect::Indirect, self.indirect),
                row(MediationEffect::Direct, self.original),
                row(MediationEffect::Total, self.total),
                row(MediationEffect::ProportionMediated, self.original + 1),
            ],
        }
    }
}

/// Every definition's results (file order) and, when the file defines an indirect effect and
/// a total, the mediation summary from the same run.
pub type DefinedWithMediation = (
    Vec<DefinedEstimate>,
    Option<MediationSummary>,
    Vec<Diagnostic>,
);

pub fn estimate_with_mediation(
    quantities: &DefinedQuantities,
    estimates: &[f64],
    covariance: &DMatrix<f64>,
    method: &IntervalMethod,
) -> Result<DefinedWithMediation, Vec<Diagnostic>> {
    match MediationPlan::new(quantities) {
        None => {
            let (rows, warnings) = estimate_defined(quantities, estimates, covariance, method)?;
            Ok((rows, None, warnings))
        }
        Some(plan) => {
            let (mut rows, warnings) =
                estimate_defined(&plan.quantities, estimates, covariance, method)?;
            let summary = plan.summary(&rows);
            rows.truncate(plan.original);
            Ok((rows, Some(summary), warnings))
        }
    }
}
