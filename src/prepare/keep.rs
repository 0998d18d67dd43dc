//! `keep`: dropping the rows where a condition is false or missing, and counting them.
//!
//! Owns the rule that a missing condition drops the row (as R's `subset`), the drop reason text
//! ("keep complete(t_lag, p_lag)", from the condition's canonical text `check` keeps), and the
//! error when no row is left. It must not evaluate
//! anything itself beyond asking `eval` for the condition.

use super::eval::{Eval, Evaluator, Value};
use super::workspace::Workspace;
use super::DropStep;
use crate::diagnostics::{Diagnostic, Span};
use crate::model::Expression;

/// What a `keep` did.
pub(crate) enum KeepOutcome {
    Kept(DropStep),
    /// The condition holds in no row; the rows are left as they were.
    NothingLeft(Diagnostic),
}

/// Evaluate the condition, keep the rows where it holds and return the drop step. Warnings from
/// evaluating the condition are appended to `warnings`.
pub(crate) fn apply_keep(
    ws: &mut Workspace,
    condition: &Expression,
    text: &str,
    span: Span,
    vary: &[(String, f64)],
    warnings: &mut Vec<Diagnostic>,
) -> Eval<KeepOutcome> {
    let n = ws.nrows();
    let mask: Vec<bool> = {
        let mut evaluator = Evaluator::new(ws, vary);
        let value = evaluator.eval(condition);
        warnings.append(&mut evaluator.warnings);
        match value? {
            Value::Numbers(v) => v.iter().map(|&x| !x.is_nan() && x != 0.0).collect(),
            Value::Number(x) => vec![!x.is_nan() && x != 0.0; n],
            Value::Text { .. } | Value::String(_) => {
                return Err(Diagnostic::at(
                    format!("`keep` needs a condition, and `{text}` is text"),
                    condition.span,
                )
                .with_hint("compare it: `sex == \"Male\"`")
                .into())
            }
        }
    };
    let kept = mask.iter().filter(|&&k| k).count();
    let reason = format!("keep {text}");
    if kept == 0 && n > 0 {
        return Ok(KeepOutcome::NothingLeft(Diagnostic::at(
            format!("`{reason}` drops every row ({n} rows before it)"),
            span,
        )));
    }
    ws.retain(&mask);
    Ok(KeepOutcome::Kept(DropStep {
        reason,
        rows: n - kept,
    }))
}
