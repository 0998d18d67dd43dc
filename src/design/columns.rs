//! The fixed-effect columns of one equation, with R's names and R's treatment coding.
//!
//! Owns expanding a term (`x`, `x:z`, a text column, `age:Sex`) into columns that are products of
//! numeric values and level indicators. It must not read rows beyond looking up column kinds and
//! levels; values are computed per row by `statistics` through `DesignColumn::value`.

use crate::model::expression::source_name;
use std::collections::HashMap;

use crate::data::{Column, MISSING_CODE};
use crate::diagnostics::{Diagnostic, Span};
use crate::model::{Coefficient, EquationSpec, FixedTermSpec, ModelSpec};
use crate::prepare::AnalysisFrame;

/// One factor of a column's product: a numeric column's value, or the indicator of a level.
#[derive(Debug, Clone, Copy, PartialEq)]
pub enum Factor {
    Numeric(usize),
    Indicator { column: usize, code: u32 },
}

#[derive(Debug, Clone)]
pub struct DesignColumn {
    /// R's name: `(Intercept)`, `x`, `SexFemale`, `age:SexFemale`.
    pub name: String,
    pub coefficient: Coefficient,
    /// Empty for the intercept.
    pub factors: Vec<Factor>,
}

impl DesignColumn {
    pub fn value(&self, frame: &AnalysisFrame, row: usize) -> f64 {
        self.factors.iter().fold(1.0, |acc, f| match *f {
            Factor::Numeric(c) => acc * column_value(frame, c, row),
            Factor::Indicator { column, code } => match &frame.columns[column] {
                Column::Text { codes, .. } if codes[row] == code => acc,
                _ => 0.0,
            },
        })
    }
}

/// A numeric column's value at `row`; NaN for a text column (never asked for one).
pub fn column_value(frame: &AnalysisFrame, column: usize, row: usize) -> f64 {
    match &frame.columns[column] {
        Column::Numeric(v) => v[row],
        Column::Text { .. } => f64::NAN,
    }
}

/// The columns of one equation and the variables an observation of it needs.
#[derive(Debug, Clone)]
pub struct EquationColumns {
    pub equation: usize,
    pub outcome: usize,
    pub columns: Vec<DesignColumn>,
    /// Frame column indices that must be non-missing for a row to give an observation.
    pub required: Vec<usize>,
    /// The `residual by` column, if any.
    pub by: Option<usize>,
    /// The `residual correlated within` unit column, if any.
    pub within: Option<usize>,
    /// The `residual ar1 within` series column, if any.
    pub series: Option<usize>,
}

impl EquationColumns {
    /// `present`, when given, says per text column (frame index) which level codes occur in the
    /// equation's observations; absent levels get no column and the first present level is the
    /// reference (R drops unused levels from the model frame).
    pub fn new(
        equation: usize,
        eq: &EquationSpec,
        spec: &ModelSpec,
        frame: &AnalysisFrame,
        present: Option<&HashMap<usize, Vec<bool>>>,
    ) -> Result<Self, Vec<Diagnostic>> {
        let mut lookup = Lookup {
            frame,
            span: eq.span,
            errors: Vec::new(),
            required: Vec::new(),
        };
        let outcome = lookup.index(&eq.outcome);
        if let Some(o) = outcome {
            if !matches!(frame.columns[o], Column::Numeric(_)) {
                lookup.errors.push(Diagnostic::at(
                    format!("the outcome `{}` is not numeric", eq.outcome),
                    eq.span,
                ));
            }
        }
        lookup.required.extend(outcome);
        let columns = fixed_columns(eq, present, &mut lookup);
        lookup.random_effect_columns(spec, equation);
        let (by, within) = lookup.residual_columns(spec, equation);
        let series = spec
            .residual
            .iter()
            .filter(|r| r.equation == equation)
            .find_map(|r| r.ar1_within.as_ref())
            .and_then(|s| lookup.index_required(s));
        if !lookup.errors.is_empty() {
            return Err(lookup.errors);
        }
        Ok(EquationColumns {
            equation,
            outcome: outcome.unwrap_or_default(),
            columns,
            required: lookup.required,
            by,
            within,
            series,
        })
    }

    /// Whether every variable this equation needs is present in `row`.
    pub fn complete(&self, frame: &AnalysisFrame, row: usize) -> bool {
        self.required.iter().all(|&c| !is_missing(frame, c, row))
    }

    /// Which levels of each text column in the fixed part occur in this equation's
    /// observations; `None` when every level occurs (the common case: nothing to drop).
    pub fn levels_present(&self, frame: &AnalysisFrame) -> Option<HashMap<usize, Vec<bool>>> {
        let present = self.levels_seen(frame);
        if present.values().all(|seen| seen.iter().all(|s| *s)) {
            None
        } else {
            Some(present)
        }
    }

    /// Per text column of an indicator (frame index): which of its levels the equation's
    /// observations have.
    pub fn levels_seen(&self, frame: &AnalysisFrame) -> HashMap<usize, Vec<bool>> {
        let mut present: HashMap<usize, Vec<bool>> = HashMap::new();
        for col in &self.columns {
            for f in &col.factors {
                if let Factor::Indicator { column, .. } = f {
                    if let Column::Text { levels, .. } = &frame.columns[*column] {
                        present
                            .entry(*column)
                            .or_insert_with(|| vec![false; levels.len()]);
                    }
                }
            }
        }
        if present.is_empty() {
            return present;
        }
        for row in 0..frame.nrows {
            if !self.complete(frame, row) {
                continue;
            }
            for (column, seen) in present.iter_mut() {
                if let Column::Text { codes, .. } = &frame.columns[*column] {
                    seen[codes[row] as usize] = true;
                }
            }
        }
        present
    }
}

/// The frame columns one equation names: the problems of looking them up (located at the
/// equation) and the columns an observation needs, in order of first mention.
struct Lookup<'a> {
    frame: &'a AnalysisFrame,
    span: Span,
    errors: Vec<Diagnostic>,
    required: Vec<usize>,
}

impl Lookup<'_> {
    fn index(&mut self, name: &str) -> Option<usize> {
        let i = self.frame.names.iter().position(|n| n == name);
        if i.is_none() {
            self.errors.push(Diagnostic::at(
                format!("no column `{name}` in the analysis frame"),
                self.span,
            ));
        }
        i
    }

    fn require(&mut self, i: usize) {
        if !self.required.contains(&i) {
            self.required.push(i);
        }
    }

    /// The column `name`, which an observation needs.
    fn index_required(&mut self, name: &str) -> Option<usize> {
        let i = self.index(name);
        if let Some(ci) = i {
            self.require(ci);
        }
        i
    }

    /// The slope variables and grouping columns of the random effects in `equation`.
    fn random_effect_columns(&mut self, spec: &ModelSpec, equation: usize) {
        for term in &spec.random {
            for effect in term.effects.iter().filter(|e| e.equation == equation) {
                for v in &effect.variables {
                    self.index_required(v);
                }
                for g in &term.grouping {
                    self.index_required(g);
                }
            }
        }
    }

    /// The `residual by` and `correlated within` columns of `equation`.
    fn residual_columns(
        &mut self,
        spec: &ModelSpec,
        equation: usize,
    ) -> (Option<usize>, Option<usize>) {
        let mut by = None;
        let mut within = None;
        for r in spec.residual.iter().filter(|r| r.equation == equation) {
            if let Some(b) = &r.by {
                by = self.index_required(b);
            }
            if let Some(u) = &r.correlated_within {
                within = self.index_required(u);
            }
        }
        (by, within)
    }
}

/// What decides a text column's coding in a term: R's rule is that a factor in a term is
/// contrast-coded when the term without it is already in the model (the empty term counts when
/// there is an intercept); otherwise it gets one indicator per level. Without an intercept, only
/// the first factor gets the full set (after it, the empty term counts as present).
struct Coding<'a> {
    seen_terms: Vec<Vec<&'a str>>,
    empty_present: bool,
    /// R orders the variables of an interaction by their first appearance in the formula
    /// (`0 + Sex + age:Sex` gives `SexMale:age`), which for `age * Sex` is as written.
    appearance: Vec<&'a str>,
}

impl Coding<'_> {
    /// Whether text variable `v` of `term` is contrast-coded (its first level dropped).
    fn contrasted(&self, term: &FixedTermSpec, v: &str) -> bool {
        let margin: Vec<&str> = term
            .variables
            .iter()
            .filter(|w| *w != v)
            .map(String::as_str)
            .collect();
        if margin.is_empty() {
            self.empty_present
        } else {
            self.seen_terms.iter().any(|t| same_set(t, &margin))
        }
    }
}

/// An equation's fixed columns: the intercept, then each term's, with R's names and coding.
fn fixed_columns(
    eq: &EquationSpec,
    present: Option<&HashMap<usize, Vec<bool>>>,
    lookup: &mut Lookup,
) -> Vec<DesignColumn> {
    let mut columns = Vec::new();
    if let Some(c) = &eq.intercept {
        columns.push(DesignColumn {
            name: "(Intercept)".into(),
            coefficient: c.clone(),
            factors: Vec::new(),
        });
    }
    let mut coding = Coding {
        seen_terms: Vec::new(),
        empty_present: eq.intercept.is_some(),
        appearance: Vec::new(),
    };
    for term in &eq.terms {
        for v in &term.variables {
            if !coding.appearance.contains(&v.as_str()) {
                coding.appearance.push(v);
            }
        }
    }
    for term in &eq.terms {
        let (pieces, had_factor) = term_pieces(term, present, &coding, lookup);
        if had_factor {
            coding.empty_present = true;
        }
        coding
            .seen_terms
            .push(term.variables.iter().map(String::as_str).collect());
        let Some(pieces) = pieces else {
            continue;
        };
        for (names, factors) in combinations(&pieces) {
            columns.push(DesignColumn {
                name: names.join(":"),
                coefficient: term.coefficient.clone(),
                factors,
            });
        }
    }
    columns
}

/// One variable's named factors in a term.
type Piece = Vec<(String, Factor)>;

/// Per variable of `term` (in order of appearance), its named factors: one numeric column, or
/// the indicators of a text column's levels. `None` when a variable is missing (the problem
/// goes to `lookup`); and whether the term has a text column.
fn term_pieces(
    term: &FixedTermSpec,
    present: Option<&HashMap<usize, Vec<bool>>>,
    coding: &Coding,
    lookup: &mut Lookup,
) -> (Option<Vec<Piece>>, bool) {
    let frame = lookup.frame;
    let mut pieces: Vec<Piece> = Vec::new();
    let mut ok = true;
    let mut had_factor = false;
    let mut variables: Vec<&String> = term.variables.iter().collect();
    variables.sort_by_key(|v| coding.appearance.iter().position(|a| a == v));
    for v in variables {
        let Some(ci) = lookup.index(v) else {
            ok = false;
            continue;
        };
        lookup.require(ci);
        match &frame.columns[ci] {
            Column::Numeric(_) => {
                pieces.push(vec![(source_name(v).into_owned(), Factor::Numeric(ci))])
            }
            Column::Text { levels, .. } => {
                had_factor = true;
                let first = usize::from(coding.contrasted(term, v));
                pieces.push(indicators(v, ci, levels, first, present));
            }
        }
    }
    (ok.then_some(pieces), had_factor)
}

/// The indicators of text column `ci` (variable `v`): its levels that occur, after skipping
/// `first` of them (the reference level when contrast-coded).
fn indicators(
    v: &str,
    ci: usize,
    levels: &[String],
    first: usize,
    present: Option<&HashMap<usize, Vec<bool>>>,
) -> Piece {
    let occurs = |code: usize| {
        present
            .and_then(|p| p.get(&ci))
            .is_none_or(|codes| codes[code])
    };
    levels
        .iter()
        .enumerate()
        .filter(|(code, _)| occurs(*code))
        .skip(first)
        .map(|(code, level)| {
            (
                format!("{}{level}", source_name(v)),
                Factor::Indicator {
                    column: ci,
                    code: code as u32,
                },
            )
        })
        .collect()
}

/// The columns of a term: every combination of its variables' factors. Each new piece's levels
/// are the outer loop, so the first variable varies fastest (R's order).
fn combinations(pieces: &[Piece]) -> Vec<(Vec<String>, Vec<Factor>)> {
    let mut combos: Vec<(Vec<String>, Vec<Factor>)> = vec![(Vec::new(), Vec::new())];
    for piece in pieces {
        let mut next = Vec::new();
        for (name, factor) in piece {
            for (names, factors) in &combos {
                let mut n = names.clone();
                n.push(name.clone());
                let mut f = factors.clone();
                f.push(*factor);
                next.push((n, f));
            }
        }
        combos = next;
    }
    combos
}

pub fn is_missing(frame: &AnalysisFrame, column: usize, row: usize) -> bool {
    match &frame.columns[column] {
        Column::Numeric(v) => v[row].is_nan(),
        Column::Text { codes, .. } => codes[row] == MISSING_CODE,
    }
}

fn same_set(a: &[&str], b: &[&str]) -> bool {
    a.len() == b.len() && a.iter().all(|x| b.contains(x))
}
