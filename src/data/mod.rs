//! Tabular data: reading CSV into typed columns.
//!
//! Owns `DataTable` and `Column`. It must not know about model files or preparation.

use std::path::PathBuf;

/// Code of a missing cell in a text column.
pub const MISSING_CODE: u32 = u32::MAX;

/// One column of data. Missing numbers are NaN; missing text cells have code `MISSING_CODE`.
#[derive(Debug, Clone, PartialEq)]
pub enum Column {
    Numeric(Vec<f64>),
    /// Text (a factor): a code per row into `levels`.
    Text {
        codes: Vec<u32>,
        levels: Vec<String>,
    },
}

/// A data file as read: named columns of equal length.
#[derive(Debug, Clone, PartialEq)]
pub struct DataTable {
    pub path: PathBuf,
    pub names: Vec<String>,
    pub columns: Vec<Column>,
    pub nrows: usize,
}

impl DataTable {
    pub fn column(&self, name: &str) -> Option<&Column> {
        self.names
            .iter()
            .position(|n| n == name)
            .map(|i| &self.columns[i])
    }
}
