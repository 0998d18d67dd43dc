//! Main effects that the data cannot speak for: in `y ~ x + x:m`, the coefficient of `x` is the
//! slope of `x` where the moderator `m` is 0. When 0 is outside the range `m` takes in the
//! prepared frame (alliance rated 1 to 7, age in years), that slope is an extrapolation, and a
//! reader of its label (`reactivity`) takes it for the average effect. This module finds those
//! terms and says so, located at the term, with the range and a centring hint. It must not
//! change the model: the warning is a reading aid, the fit is the one asked for.

use crate::data::Column;
use crate::diagnostics::{Diagnostic, Location};
use crate::model::{Coefficient, ModelSpec, TermKind};
use crate::prepare::AnalysisFrame;

/// One warning per (lower-order term, numeric moderator whose observed range excludes 0).
pub fn conditional_main_effects(spec: &ModelSpec, frame: &AnalysisFrame) -> Vec<Diagnostic> {
    conditional_main_effects_in(spec, &|name| numeric_range(frame, name))
}

/// `conditional_main_effects` with each numeric column's range (smallest and largest finite
/// value) given, for data read in pieces.
pub fn conditional_main_effects_in(
    spec: &ModelSpec,
    range: &dyn Fn(&str) -> Option<(f64, f64)>,
) -> Vec<Diagnostic> {
    let mut out = Vec::new();
    for equation in &spec.equations {
        for term in &equation.terms {
            if term.kind != TermKind::Variables {
                continue;
            }
            let mut moderators: Vec<&str> = Vec::new();
            for higher in &equation.terms {
                if higher.variables.len() <= term.variables.len()
                    || !term.variables.iter().all(|v| higher.variables.contains(v))
                {
                    continue;
                }
                for m in &higher.variables {
                    if !term.variables.contains(m) && !moderators.contains(&m.as_str()) {
                        moderators.push(m);
                    }
                }
            }
            for m in moderators {
                let Some((low, high)) = range(m) else {
                    continue;
                };
                if low <= 0.0 && high >= 0.0 {
                    continue;
                }
                let label = match &term.coefficient {
                    Coefficient::Free { label: Some(l) } => format!(" ({l})"),
                    _ => String::new(),
                };
                out.push(
                    Diagnostic::warning(
                        format!(
                            "`{}`{label} is the effect of `{}` where `{m}` = 0, a value `{m}` \
                             never takes (observed {} to {}): it is not an average effect",
                            term.name,
                            term.variables.join(":"),
                            short(low),
                            short(high)
                        ),
                        Location::Source(term.span),
                    )
                    .with_hint(format!(
                        "centre the moderator (`let {m}_c = center({m})`, and `{m}_c` in the \
                         equation) to report `{}` at the mean of `{m}`",
                        term.name
                    )),
                );
            }
        }
    }
    out
}

/// The smallest and largest non-missing value of a numeric column (`None` for text columns,
/// whose 0 is the reference level, and for columns with no values).
fn numeric_range(frame: &AnalysisFrame, name: &str) -> Option<(f64, f64)> {
    let Column::Numeric(values) = frame.column(name)? else {
        return None;
    };
    let (low, high) = values
        .iter()
        .filter(|v| v.is_finite())
        .fold((f64::INFINITY, f64::NEG_INFINITY), |(lo, hi), &v| {
            (lo.min(v), hi.max(v))
        });
    (low <= high).then_some((low, high))
}

/// Four significant digits, without trailing exponent notation (2.93, 7.1, 1830).
fn short(x: f64) -> String {
    let digits = if x == 0.0 {
        0
    } else {
        (3 - x.abs().log10().floor() as i32).max(0) as usize
    };
    let text = format!("{x:.digits$}");
    if text.contains('.') {
        text.trim_end_matches('0').trim_end_matches('.').to_string()
    } else {
        text
    }
}
