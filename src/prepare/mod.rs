//! Preparation: the file's `group`, `order`, `factor`, `let` and `keep` statements, as `check`
//! lowered them (`model::Preparation`), run in file order over the rows of a `DataTable` (with
//! the current `vary` value), giving the `AnalysisFrame` that `design` reads.
//!
//! Owns evaluation of preparation expressions (arithmetic, comparisons, `log/exp/sqrt/abs`,
//! `center`, `scale`, `within`/`between` by group, `lag`/`lead`/`diff` by group in order,
//! `complete`, `is_missing`, `ifelse`), factor level order, and the `DropReport` that counts every
//! row removed and why. It must not fit anything or look at equations; names have been resolved
//! by `check` before it runs, but it still reports data problems (a text cell used as a number,
//! all rows dropped) as diagnostics instead of panicking.

mod eval;
mod factor;
mod grouped;
mod keep;
mod series;
mod summaries;
mod workspace;

use std::borrow::Cow;
use std::cell::RefCell;
use std::collections::HashSet;
use std::ops::ControlFlow;

use crate::data::{Column, DataTable, MISSING_CODE};
use crate::diagnostics::{Diagnostic, Span};
use crate::model::preparation::{Preparation, Step};
use crate::model::Expression;

use self::eval::{Evaluator, Failure};
pub use self::factor::factor_levels;
use self::grouped::GroupIds;
use self::keep::KeepOutcome;
pub use self::series::order_series;
pub use self::summaries::{GroupKey, SampleSummaries, SummaryMode};
use self::workspace::Workspace;

/// The rows and columns an analysis runs on: data columns plus `let` columns, after `keep`.
#[derive(Debug, Clone, PartialEq)]
pub struct AnalysisFrame {
    pub names: Vec<String>,
    pub columns: Vec<Column>,
    pub nrows: usize,
    /// 1-based data-file row of each kept row (for messages).
    pub source_rows: Vec<usize>,
    pub drops: DropReport,
    /// Problems that did not stop preparation (a `log` of 0 made missing, ...).
    pub warnings: Vec<Diagnostic>,
}

impl AnalysisFrame {
    pub fn column(&self, name: &str) -> Option<&Column> {
        self.names
            .iter()
            .position(|n| n == name)
            .map(|i| &self.columns[i])
    }
}

/// Every row removed between the data file and the fit, and why.
#[derive(Debug, Clone, PartialEq, Default)]
pub struct DropReport {
    pub rows_read: usize,
    /// In the order they happened: a `keep` statement, or missing values in model variables.
    pub steps: Vec<DropStep>,
}

#[derive(Debug, Clone, PartialEq)]
pub struct DropStep {
    /// Human-readable reason: "keep complete(t_lag, p_lag)", "missing in hrsd_next".
    pub reason: String,
    pub rows: usize,
}

impl DropReport {
    pub fn rows_dropped(&self) -> usize {
        self.steps.iter().map(|s| s.rows).sum()
    }
}

/// Run the file's `group`, `order`, `factor`, `let` and `keep` statements (the `plan` `check`
/// lowered them into), in file order, over `table`. `vary` gives the current value of each
/// `vary` name (for `lag(x, span)`).
///
/// On failure every error found is returned, followed by the warnings.
pub fn prepare(
    plan: &Preparation,
    table: &DataTable,
    vary: &[(String, f64)],
) -> Result<AnalysisFrame, Vec<Diagnostic>> {
    prepare_with(plan, table, vary, &PieceOptions::default())
}

/// How a piece of a file read out of core is prepared (`prepare_with`).
#[derive(Default)]
pub struct PieceOptions<'a> {
    /// Where summaries over all rows are collected or applied.
    pub summaries: Option<&'a RefCell<SampleSummaries>>,
    /// A `keep` that leaves no row of this piece is not an error (other pieces may have rows).
    pub allow_empty: bool,
    /// Run only the `group` and `order` statements and these `let`s (the table holds the
    /// prepared rows and the other columns): the lets whose values wait for summaries.
    pub only_lets: Option<&'a HashSet<String>>,
    /// Leave `factor` statements out (their level order is set on the whole file's levels,
    /// `factor_levels`); numbers named by one still become text.
    pub skip_factors: bool,
    /// The table's rows' 1-based rows in the data file, when they are not consecutive (a
    /// prepared piece read back), for messages.
    pub source_rows: Option<&'a [usize]>,
}

/// `prepare` for a piece of a file read out of core.
pub fn prepare_with(
    plan: &Preparation,
    table: &DataTable,
    vary: &[(String, f64)],
    options: &PieceOptions,
) -> Result<AnalysisFrame, Vec<Diagnostic>> {
    let rows_read = table.nrows;
    let mut ws = Workspace::new(table);
    ws.summaries = options.summaries;
    if let Some(rows) = options.source_rows {
        ws.source_rows = rows.to_vec();
    }
    if options.only_lets.is_none() {
        factor::numbers_as_levels(&mut ws, plan);
    }
    let mut outcome = Outcome {
        errors: Vec::new(),
        warnings: Vec::new(),
        drops: DropReport {
            rows_read,
            steps: Vec::new(),
        },
    };
    for step in &plan.steps {
        match step {
            // Checked where used: the column may be a `let` further down.
            Step::Group(group) => ws.group = Some(group.clone()),
            Step::Order(order) => ws.order = Some(order.clone()),
            Step::Factor(_) | Step::Keep { .. } if options.only_lets.is_some() => {}
            Step::Factor(_) if options.skip_factors => {}
            Step::Let { name, .. }
                if options.only_lets.is_some_and(|only| !only.contains(name)) => {}
            Step::Factor(factor) => {
                if let Err(found) = factor::apply_factor(&mut ws, factor) {
                    outcome.errors.extend(found);
                }
            }
            Step::Let {
                name,
                name_span,
                value,
                ..
            } => apply_let(&mut ws, (name, *name_span), value, vary, &mut outcome),
            Step::Keep {
                condition,
                text,
                span,
            } => {
                let keep = Keep {
                    condition,
                    text,
                    span: *span,
                };
                if keep_rows(&mut ws, &keep, vary, options.allow_empty, &mut outcome).is_break() {
                    break;
                }
            }
        }
    }
    if !outcome.errors.is_empty() {
        return Err(unique(outcome.errors, outcome.warnings));
    }
    Ok(AnalysisFrame {
        nrows: ws.nrows(),
        names: ws.names,
        columns: ws.columns.into_iter().map(Cow::into_owned).collect(),
        source_rows: ws.source_rows,
        drops: outcome.drops,
        warnings: outcome.warnings,
    })
}

/// What the statements give besides the rows, in file order.
struct Outcome {
    errors: Vec<Diagnostic>,
    warnings: Vec<Diagnostic>,
    drops: DropReport,
}

/// A `keep`: the rows it drops counted; a `keep` that leaves no row stops preparation (nothing
/// after it can say anything useful about zero rows), unless a piece may be empty.
fn keep_rows(
    ws: &mut Workspace,
    keep: &Keep,
    vary: &[(String, f64)],
    allow_empty: bool,
    outcome: &mut Outcome,
) -> ControlFlow<()> {
    let found = keep::apply_keep(
        ws,
        keep.condition,
        keep.text,
        keep.span,
        vary,
        &mut outcome.warnings,
    );
    match found {
        Ok(KeepOutcome::Kept(step)) => outcome.drops.steps.push(step),
        Ok(KeepOutcome::NothingLeft(_)) if allow_empty => {
            outcome.drops.steps.push(drop_every_row(ws, keep.text));
        }
        Ok(KeepOutcome::NothingLeft(d)) => {
            outcome.errors.push(d);
            return ControlFlow::Break(());
        }
        Err(Failure::Error(d)) => outcome.errors.push(*d),
        Err(Failure::Poisoned) => {}
    }
    ControlFlow::Continue(())
}

/// A `keep` step: its condition, the condition's text and where the statement is.
struct Keep<'p> {
    condition: &'p Expression,
    text: &'p str,
    span: Span,
}

/// A piece's `keep` that leaves no row: every row dropped, and counted.
fn drop_every_row(ws: &mut Workspace, text: &str) -> DropStep {
    let n = ws.nrows();
    ws.retain(&vec![false; n]);
    DropStep {
        reason: format!("keep {text}"),
        rows: n,
    }
}

/// The errors, then the warnings, each once: a bad `group` column is reported once per use;
/// once is enough.
fn unique(errors: Vec<Diagnostic>, warnings: Vec<Diagnostic>) -> Vec<Diagnostic> {
    let mut unique: Vec<Diagnostic> = Vec::new();
    for d in errors.into_iter().chain(warnings) {
        if !unique.contains(&d) {
            unique.push(d);
        }
    }
    unique
}

/// A `let`: a new column, or an error (a name taken already, or a failed evaluation, after
/// which uses of the name are poisoned rather than reported again).
fn apply_let(
    ws: &mut Workspace,
    (name, name_span): (&str, Span),
    value: &Expression,
    vary: &[(String, f64)],
    outcome: &mut Outcome,
) {
    if ws.position(name).is_some() || vary.iter().any(|(v, _)| v == name) {
        let what = if ws.is_data_column(name) {
            "a data column"
        } else if ws.position(name).is_some() {
            "an earlier `let`"
        } else {
            "a `vary` name"
        };
        outcome.errors.push(
            Diagnostic::at(format!("`let {name}` would redefine {what}"), name_span)
                .with_hint("choose a new name"),
        );
        return;
    }
    let n = ws.nrows();
    let mut evaluator = Evaluator::new(ws, vary);
    let result = evaluator.eval(value).map(|v| v.into_column(n));
    outcome.warnings.append(&mut evaluator.warnings);
    match result {
        Ok(column) => ws.add(name.to_string(), column),
        Err(failure) => {
            if let Failure::Error(d) = failure {
                outcome.errors.push(*d);
            }
            ws.failed.insert(name.to_string());
        }
    }
}

/// Whether every group of `groups` has at most one distinct non-missing value of `variable`
/// (rows with a missing group are ignored). False when either column is unknown.
pub fn constant_within(frame: &AnalysisFrame, variable: &str, groups: &str) -> bool {
    let (Some(x), Some(g)) = (frame.column(variable), frame.column(groups)) else {
        return false;
    };
    let ids = match g {
        Column::Numeric(v) => GroupIds::from_numbers(v),
        Column::Text { codes, .. } => GroupIds::from_codes(codes),
    };
    match x {
        Column::Numeric(v) => {
            let keys: Vec<Option<u64>> = v
                .iter()
                .map(|x| (!x.is_nan()).then(|| (x + 0.0).to_bits()))
                .collect();
            grouped::constant_within(&keys, &ids)
        }
        Column::Text { codes, .. } => {
            let keys: Vec<Option<u32>> = codes
                .iter()
                .map(|&c| (c != MISSING_CODE).then_some(c))
                .collect();
            grouped::constant_within(&keys, &ids)
        }
    }
}
