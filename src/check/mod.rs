//! Name resolution and checks: a `ModelFile` plus the data's column names and kinds become a
//! `CheckedModel` (the `model::ModelSpec` that later stages fit), or every diagnostic found.
//!
//! Owns resolving each name against data columns, earlier `let`s, labels, grouping factors and
//! `vary` names, with "did you mean" hints; collecting every error instead of stopping at the
//! first. It must not evaluate data: what needs values (a variable's level) is decided on the
//! prepared frame by `levels`.
//!
//! Decisions this module makes (and documents for users):
//! - A missing `data` statement is an error unless the caller has a data override (`--data`).
//! - `data`, `group`, `order`, `estimate`, `interval` and `vary` appear at most once.
//! - `let`s exist from their statement on (`let`/`keep`/`group`/`order` see only earlier ones);
//!   equations, `residual` and `interval` see every `let`, since they use the final frame.
//! - `within`/`between` need a `group` statement or an explicit group; `lag`/`lead`/`diff` need a
//!   `group` statement (a lag must never cross a unit boundary) and use the `order` column, or
//!   the rows' file order when there is no `order` statement.
//! - REML when there is no `estimate` statement (lme4's default), ML when an equation has a
//!   non-Gaussian `family` (glmer's only method); interval defaults are in `interval`.

mod definitions;
mod equations;
mod expressions;
mod family;
mod interval;
pub mod levels;
mod lower;
mod moderators;
mod names;
mod outcomes;
mod preparation;
mod random;
mod residual;
mod schema;
mod settings;
mod stray;
mod supported;

pub use definitions::lower_definitions;
pub use interval::{interval_work, IntervalWork, MAX_BOOTSTRAP_DRAWS, MAX_MONTE_CARLO_DRAWS};
pub(crate) use levels::model_variables;
pub use levels::{check_frame, variable_levels, VariableLevel};
pub use lower::lower_preparation;
pub use moderators::{conditional_main_effects, conditional_main_effects_in};
pub use outcomes::check_outcomes;
pub use schema::{ColumnKind, Schema};

use crate::diagnostics::{Diagnostic, Location};
use crate::model::preparation::Preparation;
use crate::model::ModelSpec;
use crate::syntax::ast::{ModelFile, Span, Statement};

use names::Scope;

/// What the caller knows beyond the file and the columns.
#[derive(Debug, Clone, Copy, Default, PartialEq, Eq)]
pub struct CheckOptions {
    /// The data file comes from elsewhere (`--data`), so the file need not name one.
    pub data_override: bool,
}

/// A model that passed every check: its resolved spec, its preparation plan and any warnings.
#[derive(Debug, Clone, PartialEq)]
pub struct CheckedModel {
    pub spec: ModelSpec,
    /// The `group`, `order`, `factor`, `let` and `keep` statements, lowered, for `prepare`.
    pub preparation: Preparation,
    pub warnings: Vec<Diagnostic>,
}

/// Checks `file` against the columns in `schema`; the file must name its data.
pub fn check(file: &ModelFile, schema: &Schema) -> Result<CheckedModel, Vec<Diagnostic>> {
    check_with(file, schema, CheckOptions::default())
}

/// Checks `file` against the columns in `schema`, collecting every error (and warning).
pub fn check_with(
    file: &ModelFile,
    schema: &Schema,
    options: CheckOptions,
) -> Result<CheckedModel, Vec<Diagnostic>> {
    let schema = &factors_as_text(file, schema);
    let mut checker = Checker::new(file, schema);
    let settings = checker.check_settings(file, options);
    checker.check_preparation(file);
    let (mut equations, random) = checker.check_equations(file);
    checker.check_families(file, &mut equations);
    let (method, agq) =
        checker.check_method_and_agq(settings.estimate, settings.method, &equations, &random);
    let residual = checker.check_residuals(file, &equations);
    let definitions = checker.check_definitions(file, &equations, &random);
    let interval = checker.check_interval(settings.interval);
    let spec = ModelSpec {
        equations,
        random,
        residual,
        definitions,
        method,
        interval,
        vary: settings.vary,
        agq,
    };
    checker.check_supported(file, &spec);
    checker.check_vary_used(file, &spec);
    // Every name and function of the preparation has been checked; lowering finds no new
    // error once the checks pass (and is not needed when they do not).
    let preparation = if checker.errors.is_empty() {
        lower::lower_with(file, &checker.scope).unwrap_or_else(|errors| {
            checker.errors.extend(errors);
            Preparation::default()
        })
    } else {
        Preparation::default()
    };
    let mut warnings = checker.warnings;
    warnings.sort_by_key(by_position);
    // A spoilt column explains every later complaint about it ("is a text column"), so those
    // give way to the one message that names the bad cell.
    let spoilt = stray::spoilt_columns(file, schema);
    if !spoilt.is_empty() {
        let names: Vec<String> = schema
            .stray
            .iter()
            .map(|(c, _, _)| format!("`{c}`"))
            .collect();
        checker
            .errors
            .retain(|d| !names.iter().any(|n| d.message.contains(n.as_str())));
        checker.errors.extend(spoilt);
    }
    if checker.errors.is_empty() {
        Ok(CheckedModel {
            spec,
            preparation,
            warnings,
        })
    } else {
        let mut all = checker.errors;
        all.extend(warnings);
        all.sort_by_key(by_position);
        Err(all)
    }
}

/// `factor` on a numeric column makes it categorical for the whole file (see
/// `prepare::factor::numbers_as_levels`): every statement sees it as text.
fn factors_as_text(file: &ModelFile, schema: &Schema) -> Schema {
    let mut schema = schema.clone();
    for statement in &file.statements {
        if let crate::syntax::ast::Statement::Factor { column, .. } = statement {
            if let Some(entry) = schema.columns.iter_mut().find(|(n, _)| *n == column.name) {
                entry.1 = ColumnKind::Text;
            }
        }
    }
    schema
}

/// Checks run by concern; the user reads the file top to bottom.
fn by_position(d: &Diagnostic) -> usize {
    match d.location {
        Location::Source(span) => span.start,
        _ => 0,
    }
}

impl Checker<'_> {
    /// A `vary` name that nothing uses would fit the same model for every value.
    fn check_vary_used(&mut self, file: &ModelFile, spec: &ModelSpec) {
        let (Some(vary), false) = (&spec.vary, self.scope.vary_used.get()) else {
            return;
        };
        let span = file.statements.iter().find_map(|s| match s {
            crate::syntax::ast::Statement::Vary { name, .. } => Some(name.span),
            _ => None,
        });
        if let Some(span) = span {
            self.error(
                Diagnostic::at(
                    format!(
                        "`vary {}`: nothing in the model uses `{}`, so every value would fit the \
                         same model",
                        vary.name, vary.name
                    ),
                    span,
                )
                .with_hint(format!(
                    "use `{}` in a `let`, a `keep`, a `lag` distance or a definition, or remove \
                     the `vary` statement",
                    vary.name
                )),
            );
        }
    }
}

/// The state of one check: the scope names resolve against and what has been found.
pub(crate) struct Checker<'a> {
    pub scope: Scope<'a>,
    pub errors: Vec<Diagnostic>,
    pub warnings: Vec<Diagnostic>,
    pub has_group: bool,
    /// Names of `:=` definitions, with their statement index (labels must not reuse them).
    pub definition_names: Vec<(String, usize)>,
}

impl<'a> Checker<'a> {
    fn new(file: &ModelFile, schema: &'a Schema) -> Self {
        let lets = lower::let_declarations(file);
        let definition_names = file
            .statements
            .iter()
            .enumerate()
            .filter_map(|(i, s)| match s {
                Statement::Define { name, .. } => Some((name.name.clone(), i)),
                _ => None,
            })
            .collect();
        Checker {
            scope: Scope {
                schema,
                lets,
                vary: None,
                vary_used: std::cell::Cell::new(false),
            },
            errors: Vec::new(),
            warnings: Vec::new(),
            has_group: file
                .statements
                .iter()
                .any(|s| matches!(s, Statement::Group { .. })),
            definition_names,
        }
    }

    pub fn error(&mut self, diagnostic: Diagnostic) {
        self.errors.push(diagnostic);
    }
}

/// The span of the start of the file, for problems with the file as a whole.
pub(crate) const FILE_START: Span = Span { start: 0, end: 0 };
