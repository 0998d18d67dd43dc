//! The rows and columns while preparation runs: data columns and `let` columns over the rows
//! kept so far, plus the defaults set by `group` and `order`. Owns adding a column and keeping a
//! subset of rows; it must not evaluate expressions.

use std::collections::{HashMap, HashSet};

use crate::data::{Column, DataTable, StrayText};
use crate::syntax::ast::Ident;

pub(crate) struct Workspace {
    pub names: Vec<String>,
    pub columns: Vec<Column>,
    /// 1-based data-file row of each current row.
    pub source_rows: Vec<usize>,
    /// Mostly numeric text columns of the data file and their first non-number.
    pub stray: HashMap<String, StrayText>,
    /// How many of `names` are data columns (the rest are lets).
    pub data_columns: usize,
    pub group: Option<Ident>,
    pub order: Option<Ident>,
    /// Lets whose definition failed: uses of them are not reported again.
    pub failed: HashSet<String>,
}

impl Workspace {
    pub fn new(table: DataTable) -> Self {
        let stray = table
            .names
            .iter()
            .zip(table.stray_text)
            .filter_map(|(name, stray)| stray.map(|s| (name.clone(), s)))
            .collect();
        Workspace {
            data_columns: table.names.len(),
            names: table.names,
            columns: table.columns,
            source_rows: (1..=table.nrows).collect(),
            stray,
            group: None,
            order: None,
            failed: HashSet::new(),
        }
    }

    pub fn nrows(&self) -> usize {
        self.source_rows.len()
    }

    pub fn position(&self, name: &str) -> Option<usize> {
        self.names.iter().position(|n| n == name)
    }

    pub fn column(&self, name: &str) -> Option<&Column> {
        self.position(name).map(|i| &self.columns[i])
    }

    pub fn column_mut(&mut self, name: &str) -> Option<&mut Column> {
        self.position(name).map(|i| &mut self.columns[i])
    }

    pub fn is_data_column(&self, name: &str) -> bool {
        self.position(name).is_some_and(|i| i < self.data_columns)
    }

    pub fn add(&mut self, name: String, column: Column) {
        debug_assert_eq!(column.len(), self.nrows());
        self.names.push(name);
        self.columns.push(column);
    }

    /// Keep the rows where `keep` is true, in their current order.
    pub fn retain(&mut self, keep: &[bool]) {
        let rows: Vec<usize> = (0..keep.len()).filter(|&i| keep[i]).collect();
        if rows.len() == keep.len() {
            return;
        }
        for column in &mut self.columns {
            *column = column.select(&rows);
        }
        self.source_rows = rows.iter().map(|&i| self.source_rows[i]).collect();
    }
}
