//! Preparation: the file's `group`, `order`, `factor`, `vary`, `let` and `keep` statements, run in
//! file order over the rows of a `DataTable`, giving the `AnalysisFrame` that `design` reads.
//!
//! Owns evaluation of preparation expressions (arithmetic, comparisons, `log/exp/sqrt/abs`,
//! `center`, `scale`, `within`/`between` by group, `lag`/`lead`/`diff` by group in order,
//! `complete`, `is_missing`, `ifelse`), factor level order, and the `DropReport` that counts every
//! row removed and why. It must not fit anything or look at equations; names have been resolved
//! by `check` before it runs, but it still reports data problems (a text cell used as a number,
//! all rows dropped) as diagnostics instead of panicking.

use crate::data::Column;

/// The rows and columns an analysis runs on: data columns plus `let` columns, after `keep`.
#[derive(Debug, Clone, PartialEq)]
pub struct AnalysisFrame {
    pub names: Vec<String>,
    pub columns: Vec<Column>,
    pub nrows: usize,
    /// 1-based data-file row of each kept row (for messages).
    pub source_rows: Vec<usize>,
    pub drops: DropReport,
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
