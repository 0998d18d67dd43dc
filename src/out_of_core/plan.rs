//! What reading a model's data file out of core takes, decided from the model file before any
//! row is read: whether each `group`'s rows must be in one piece (a `lag`, `lead` or `diff`
//! shifts within groups), which `let`s wait for summaries over all rows (`center`, `scale`,
//! `within`, `between`, and every `let` computed from one of them) and are therefore computed
//! again in the second pass, which prepared columns the second pass needs, and what cannot be
//! done in two passes (refused, located, with a hint).
//!
//! Owns only these decisions; it must not read data.

use std::collections::HashSet;

use crate::check::{ColumnKind, Schema};
use crate::diagnostics::{Diagnostic, Location};
use crate::functions::Builtin;
use crate::model::expression::{calls_in, Name};
use crate::model::preparation::{Preparation, Step, Variable};
use crate::model::{Expression, ExpressionKind, ModelSpec, OutcomeKind, TermKind};
use crate::syntax::ast::{ModelFile, Span};

#[derive(Debug, Clone)]
pub struct Plan {
    /// The `group` column whose rows must be in one piece (the file keeps them together).
    pub whole_groups: Option<String>,
    /// `let`s whose values wait for summaries over all rows, computed again in the second pass.
    pub deferred: HashSet<String>,
    /// Prepared columns the second pass needs (if the frame has them): the model's variables and
    /// groupings and the inputs of the deferred `let`s.
    pub kept: Vec<String>,
    /// Every name the model file uses (columns whose kind must not change between pieces).
    pub used: HashSet<String>,
    /// The preparation statements as `check` lowers them: what each piece is prepared by (its
    /// `factor`s applied to the whole file's levels).
    pub preparation: Preparation,
    /// Numeric data columns a `factor` makes text: their levels are in numeric order.
    pub numeric_factors: HashSet<String>,
    /// Where the deferred `let`s are written: the first pass's warnings from them are about
    /// provisional values, and are dropped.
    pub deferred_spans: Vec<Span>,
}

/// The names an expression reads.
fn names_in(expr: &Expression, out: &mut Vec<String>) {
    match &expr.kind {
        ExpressionKind::Name(Name::Constant(_)) => {}
        ExpressionKind::Name(n) => out.push(n.text().to_string()),
        ExpressionKind::Unary { operand, .. } => names_in(operand, out),
        ExpressionKind::Binary { lhs, rhs, .. } => {
            names_in(lhs, out);
            names_in(rhs, out);
        }
        ExpressionKind::Call { args, .. } => args.iter().for_each(|a| names_in(&a.value, out)),
        ExpressionKind::Number(_) | ExpressionKind::Text(_) | ExpressionKind::Missing => {}
    }
}

fn function_name(call: &Expression) -> &'static str {
    match &call.kind {
        ExpressionKind::Call { function, .. } => function.name(),
        _ => "",
    }
}

fn call_args(call: &Expression) -> Vec<&Expression> {
    match &call.kind {
        ExpressionKind::Call { args, .. } => args.iter().map(|a| &a.value).collect(),
        _ => Vec::new(),
    }
}

const HINT: &str = "fit the model on a file that fits in memory (a sample, or a part of the \
                    file split by group)";
const HINT_COLUMN: &str = "compute this column in the data file, or fit the model on a file \
                           that fits in memory (a sample, or a part of the file split by group)";

fn refuse(what: String, span: Span) -> Diagnostic {
    Diagnostic::at(format!("out of core, {what}"), span).with_hint(HINT.to_string())
}

/// About a `let` or `keep`: the column can be computed beforehand.
fn refuse_column(what: String, span: Span) -> Diagnostic {
    Diagnostic::at(format!("out of core, {what}"), span).with_hint(HINT_COLUMN.to_string())
}

/// What reading `file`'s data out of core takes; its preparation is lowered as `check` lowers
/// it (the file has been checked against `schema`).
pub fn plan(file: &ModelFile, spec: &ModelSpec, schema: &Schema) -> Result<Plan, Vec<Diagnostic>> {
    let preparation = crate::check::lower_preparation(file, schema)?;
    let mut planner = Planner::default();
    if spec.has_random_coefficients() {
        planner.errors.push(random_coefficients_refused(spec));
    }
    // AR(1) puts each series' rows in `order` before the design pass; pieces are not.
    for r in &spec.residual {
        if let (Some(series), Some(e)) = (&r.ar1_within, spec.equations.get(r.equation)) {
            let what = format!("AR(1) residuals (`ar1 within {series}`) are not supported yet");
            planner.errors.push(refuse(what, e.span));
        }
    }
    for step in &preparation.steps {
        match step {
            Step::Group(Variable { name, span }) => {
                planner.group = Some((name.text().to_string(), *span));
                planner.used.insert(name.text().to_string());
            }
            Step::Order(Variable { name, .. }) => {
                planner.used.insert(name.text().to_string());
            }
            Step::Factor(factor) => planner.factor(&factor.column, factor.column_span, schema),
            Step::Let {
                name, value, span, ..
            } => planner.let_statement(name, value, *span),
            Step::Keep {
                condition, span, ..
            } => planner.keep(condition, *span),
        }
    }
    let whole_groups = planner.whole_groups(schema);
    let Planner {
        errors,
        deferred,
        deferred_spans,
        numeric_factors,
        deferred_inputs,
        mut used,
        ..
    } = planner;
    if !errors.is_empty() {
        return Err(errors);
    }
    let kept = kept_columns(spec, &deferred, &deferred_inputs);
    used.extend(kept.iter().cloned());
    Ok(Plan {
        whole_groups,
        deferred,
        kept,
        used,
        deferred_spans,
        preparation,
        numeric_factors,
    })
}

/// A model with random coefficients, refused at its group-level equation: an outcome or a term
/// that is a random coefficient.
fn random_coefficients_refused(spec: &ModelSpec) -> Diagnostic {
    let at = spec.equations.iter().find(|e| {
        e.outcome_kind != OutcomeKind::Variable
            || e.terms.iter().any(|t| t.kind != TermKind::Variables)
    });
    let what = "a random coefficient as an outcome or a predictor is not supported yet";
    match at {
        Some(e) => refuse(what.into(), e.span),
        None => Diagnostic::error(format!("out of core, {what}"), Location::None),
    }
}

/// What the statements, read in file order, have decided so far.
#[derive(Default)]
struct Planner {
    errors: Vec<Diagnostic>,
    group: Option<(String, Span)>,
    /// The first shift.
    shifts_at: Option<Span>,
    deferred: HashSet<String>,
    deferred_spans: Vec<Span>,
    numeric_factors: HashSet<String>,
    deferred_inputs: Vec<String>,
    used: HashSet<String>,
}

/// What an expression reads: its names, its summary calls and its shift calls.
struct Reads<'e> {
    names: Vec<String>,
    summaries: Vec<&'e Expression>,
    shifts: Vec<&'e Expression>,
}

impl Planner {
    /// The names and calls of `expr`, noting the names as used and the first shift.
    fn read<'e>(&mut self, expr: &'e Expression) -> Reads<'e> {
        let mut names = Vec::new();
        names_in(expr, &mut names);
        self.used.extend(names.iter().cloned());
        let mut summaries = Vec::new();
        calls_in(expr, Builtin::summarises_rows, &mut summaries);
        let mut shifts = Vec::new();
        calls_in(expr, Builtin::shifts_rows, &mut shifts);
        if let Some(s) = shifts.first() {
            self.shifts_at.get_or_insert(s.span);
        }
        Reads {
            names,
            summaries,
            shifts,
        }
    }

    fn factor(&mut self, column: &str, column_span: Span, schema: &Schema) {
        self.used.insert(column.to_string());
        match schema.columns.iter().find(|(c, _)| *c == column) {
            Some((_, kind)) => {
                if *kind == ColumnKind::Numeric {
                    self.numeric_factors.insert(column.to_string());
                }
            }
            None => self.errors.push(refuse(
                format!("`factor` must name a column of the data file (`{column}` is not one)"),
                column_span,
            )),
        }
    }

    fn let_statement(&mut self, name: &str, value: &Expression, span: Span) {
        let reads = self.read(value);
        for call in &reads.summaries {
            self.check_summary(call);
        }
        for call in &reads.shifts {
            self.check_shift(call);
        }
        let Reads {
            names,
            summaries,
            shifts,
        } = reads;
        let waits = !summaries.is_empty() || names.iter().any(|n| self.deferred.contains(n));
        if !waits {
            return;
        }
        if let (Some(shift), Some(_)) = (shifts.first(), summaries.first()) {
            self.errors.push(refuse_column(
                format!(
                    "one `let` cannot both shift rows (`{}`) and summarise all rows",
                    function_name(shift)
                ),
                shift.span,
            ));
        }
        // A within/between by the `group` statement's column reads that column.
        if summaries.iter().any(|c| call_args(c).len() < 2) {
            if let Some((g, _)) = &self.group {
                self.deferred_inputs.push(g.clone());
            }
        }
        self.deferred_inputs.extend(names);
        self.deferred.insert(name.to_string());
        self.deferred_spans.push(span);
    }

    /// A summary cannot take a summary, or a `let` that waits for one.
    fn check_summary(&mut self, call: &Expression) {
        let mut inner = Vec::new();
        for arg in call_args(call) {
            names_in(arg, &mut inner);
            let mut nested = Vec::new();
            calls_in(arg, Builtin::summarises_rows, &mut nested);
            if !nested.is_empty() {
                inner.push(String::new());
            }
        }
        if let Some(waits) = inner
            .iter()
            .find(|n| n.is_empty() || self.deferred.contains(*n))
        {
            let what = if waits.is_empty() {
                "a summary of a summary".to_string()
            } else {
                format!("`{waits}`, which waits for a summary of all rows itself")
            };
            self.errors.push(refuse_column(
                format!("`{}` cannot take {what}", function_name(call)),
                call.span,
            ));
        }
    }

    /// A shift cannot shift a `let` that waits for a summary.
    fn check_shift(&mut self, call: &Expression) {
        let mut inner = Vec::new();
        call_args(call).iter().for_each(|a| names_in(a, &mut inner));
        if let Some(waits) = inner.iter().find(|n| self.deferred.contains(*n)) {
            self.errors.push(refuse_column(
                format!(
                    "`{}` cannot shift `{waits}`, which waits for a summary of all rows",
                    function_name(call)
                ),
                call.span,
            ));
        }
    }

    fn keep(&mut self, condition: &Expression, span: Span) {
        let reads = self.read(condition);
        if let Some(call) = reads.summaries.first() {
            self.errors.push(refuse_column(
                format!(
                    "a `keep` cannot use `{}`: it needs a summary of all rows before any \
                     row can be kept",
                    function_name(call)
                ),
                call.span,
            ));
        } else if let Some(n) = reads.names.iter().find(|n| self.deferred.contains(*n)) {
            self.errors.push(refuse_column(
                format!("a `keep` cannot use `{n}`: it waits for a summary of all rows"),
                span,
            ));
        }
    }

    /// The `group` column whose rows must be in one piece, when a shift needs them.
    fn whole_groups(&mut self, schema: &Schema) -> Option<String> {
        match (self.shifts_at, &self.group) {
            (None, _) => None,
            (Some(_), Some((g, span))) => {
                let data_column = schema.columns.iter().any(|(c, _)| c == g);
                if !data_column {
                    self.errors.push(refuse(
                        format!(
                            "the `group` column `{g}` must be a column of the data file: rows \
                             are kept together by it while the file is read"
                        ),
                        *span,
                    ));
                }
                Some(g.clone())
            }
            (Some(span), None) => {
                self.errors.push(refuse(
                    "a shift without a `group` statement runs over the whole file, which is \
                     read in pieces"
                        .into(),
                    span,
                ));
                None
            }
        }
    }
}

/// The prepared columns the second pass needs: the model's variables and groupings and the
/// inputs of the deferred `let`s (not the deferred ones themselves, computed again).
fn kept_columns(
    spec: &ModelSpec,
    deferred: &HashSet<String>,
    deferred_inputs: &[String],
) -> Vec<String> {
    let mut kept: Vec<String> = Vec::new();
    let mut keep = |name: &String| {
        if !kept.contains(name) && !deferred.contains(name) && !name.is_empty() {
            kept.push(name.clone());
        }
    };
    crate::check::model_variables(spec)
        .iter()
        .for_each(&mut keep);
    for term in &spec.random {
        term.grouping.iter().for_each(&mut keep);
    }
    for residual in &spec.residual {
        residual.by.iter().for_each(&mut keep);
        residual.correlated_within.iter().for_each(&mut keep);
    }
    deferred_inputs.iter().for_each(&mut keep);
    kept
}
