//! The `vary` values to fit: the file's, or those `--vary name=value` chooses (checked as the
//! file's own would be), and how a value is named in messages and titles.

use super::session::Session;
use crate::check::{self, CheckOptions, Schema};
use crate::diagnostics::{Diagnostic, Location};

/// The values of the file's `vary` name to fit, restricted by `--vary name=value`.
pub(super) fn vary_values(
    session: &Session,
    requested: &[String],
) -> Result<Vec<Option<(String, f64)>>, Vec<Diagnostic>> {
    let vary = &session.checked.spec.vary;
    let Some(vary) = vary else {
        if let Some(first) = requested.first() {
            return Err(vec![Diagnostic::error(
                format!("`--vary {first}`: the model file has no `vary` statement"),
                Location::File(session.model.path.clone()),
            )]);
        }
        return Ok(vec![None]);
    };
    let mut chosen = Vec::new();
    for request in requested {
        let parsed = request
            .split_once('=')
            .and_then(|(n, v)| v.trim().parse::<f64>().ok().map(|v| (n.trim(), v)));
        match parsed {
            Some((name, value)) if name == vary.name => chosen.push(value),
            Some((name, _)) => {
                return Err(vec![Diagnostic::error(
                    format!(
                        "`--vary {request}`: the model varies `{}`, not `{name}`",
                        vary.name
                    ),
                    Location::File(session.model.path.clone()),
                )])
            }
            None => {
                return Err(vec![Diagnostic::error(
                    format!(
                        "`--vary {request}`: expected NAME=NUMBER, e.g. `--vary {}=1`",
                        vary.name
                    ),
                    Location::None,
                )])
            }
        }
    }
    let values = if chosen.is_empty() {
        vary.values.clone()
    } else {
        check_requested_values(session, &chosen)?;
        chosen
    };
    Ok(values
        .into_iter()
        .map(|v| Some((vary.name.clone(), v)))
        .collect())
}

/// `--vary` values pass the checks the file's own `vary` values pass (a `lag` distance of 0 is
/// refused either way, at the `lag`): the file is checked again with them in its `vary`
/// statement.
fn check_requested_values(session: &Session, chosen: &[f64]) -> Result<(), Vec<Diagnostic>> {
    use crate::syntax::ast::{Literal, Statement};
    let mut ast = session.model.ast.clone();
    for statement in &mut ast.statements {
        if let Statement::Vary { values, name, .. } = statement {
            *values = chosen
                .iter()
                .map(|&value| Literal::Number {
                    value,
                    span: name.span,
                })
                .collect();
        }
    }
    let options = CheckOptions {
        data_override: true,
    };
    match check::check_with(&ast, &Schema::from_table(&session.table), options) {
        Ok(_) => Ok(()),
        Err(diagnostics) => {
            let values: Vec<String> = chosen.iter().map(|v| v.to_string()).collect();
            let heading = Diagnostic::error(
                format!(
                    "the values given with `--vary` ({}) do not pass the model's checks:",
                    values.join(", ")
                ),
                Location::None,
            );
            let errors = diagnostics.into_iter().filter(|d| d.is_error());
            Err(std::iter::once(heading).chain(errors).collect())
        }
    }
}

/// A `vary` value as messages, titles and stage names show it: ` (span = 1)`, or nothing.
pub fn vary_label(value: &Option<(String, f64)>) -> String {
    match value {
        // `{}` would spell out 1e300 digit by digit.
        Some((name, v)) if v.abs() >= 1e15 => format!(" ({name} = {v:e})"),
        Some((name, v)) => format!(" ({name} = {v})"),
        None => String::new(),
    }
}
