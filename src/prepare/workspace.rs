//! The rows and columns while preparation runs: data columns and `let` columns over the rows
//! kept so far, plus the defaults set by `group` and `order`. Owns adding a column and keeping a
//! subset of rows; it must not evaluate expressions.
//!
//! Data columns are borrowed from the table until a step changes them (a `keep` selects rows, a
//! `factor` recodes): the table is read once per `vary` value, never copied whole.

use std::borrow::Cow;
use std::cell::RefCell;
use std::collections::{HashMap, HashSet};

use rayon::prelude::*;

use super::summaries::SampleSummaries;
use crate::data::{Column, DataTable, RowLines, StrayText};
use crate::model::preparation::Variable;

pub(crate) struct Workspace<'a> {
    pub names: Vec<String>,
    pub columns: Vec<Cow<'a, Column>>,
    /// 1-based data-file row of each current row.
    pub source_rows: Vec<usize>,
    /// Mostly numeric text columns of the data file and their first non-number.
    pub stray: HashMap<String, StrayText>,
    /// How many of `names` are data columns (the rest are lets).
    pub data_columns: usize,
    pub group: Option<Variable>,
    pub order: Option<Variable>,
    /// Lets whose definition failed: uses of them are not reported again.
    pub failed: HashSet<String>,
    /// The file lines of the data rows, for messages.
    pub lines: Option<&'a RowLines>,
    /// Out of core: where `center`, `scale`, `within` and `between` record or find their sums
    /// over all rows; `None` when the whole file is in memory.
    pub summaries: Option<&'a RefCell<SampleSummaries>>,
}

impl<'a> Workspace<'a> {
    /// "line L (data row R)" for 1-based data `row`, or "data row R" without a file.
    pub fn row_place(&self, row: usize) -> String {
        crate::data::row_place(self.lines, row)
    }

    pub fn new(table: &'a DataTable) -> Self {
        let stray = table
            .names
            .iter()
            .zip(&table.stray_text)
            .filter_map(|(name, stray)| stray.clone().map(|s| (name.clone(), s)))
            .collect();
        Workspace {
            data_columns: table.names.len(),
            names: table.names.clone(),
            columns: table.columns.iter().map(Cow::Borrowed).collect(),
            source_rows: (table.first_row + 1..=table.first_row + table.nrows).collect(),
            stray,
            group: None,
            order: None,
            failed: HashSet::new(),
            lines: table.lines.as_ref(),
            summaries: None,
        }
    }

    pub fn nrows(&self) -> usize {
        self.source_rows.len()
    }

    pub fn position(&self, name: &str) -> Option<usize> {
        self.names.iter().position(|n| n == name)
    }

    pub fn column(&self, name: &str) -> Option<&Column> {
        self.position(name).map(|i| &*self.columns[i])
    }

    /// The column, made the workspace's own first if it is still the table's.
    pub fn column_mut(&mut self, name: &str) -> Option<&mut Column> {
        self.position(name).map(|i| self.columns[i].to_mut())
    }

    pub fn is_data_column(&self, name: &str) -> bool {
        self.position(name).is_some_and(|i| i < self.data_columns)
    }

    pub fn add(&mut self, name: String, column: Column) {
        debug_assert_eq!(column.len(), self.nrows());
        self.names.push(name);
        self.columns.push(Cow::Owned(column));
    }

    /// Keep the rows where `keep` is true, in their current order (columns selected in parallel:
    /// millions of rows times every column).
    pub fn retain(&mut self, keep: &[bool]) {
        let rows: Vec<usize> = (0..keep.len()).filter(|&i| keep[i]).collect();
        if rows.len() == keep.len() {
            return;
        }
        self.columns
            .par_iter_mut()
            .for_each(|column| *column = Cow::Owned(column.select(&rows)));
        self.source_rows = rows.iter().map(|&i| self.source_rows[i]).collect();
    }
}
