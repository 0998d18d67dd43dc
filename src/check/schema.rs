//! The data's shape as `check` sees it: the data file's name (for messages) and each column's
//! name and kind. Owns nothing else; it must not hold values, since names are resolved before
//! any row is read into the analysis frame.

use crate::data::{Column, DataTable};

#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum ColumnKind {
    Numeric,
    /// A text column: a factor.
    Text,
}

/// Column names and kinds of one data file.
#[derive(Debug, Clone, PartialEq)]
pub struct Schema {
    /// The data file's name as messages show it ("no column `x` in ot_sessions.csv").
    pub file_name: String,
    pub columns: Vec<(String, ColumnKind)>,
    /// Text columns whose cells were mostly numbers: (column, where its first non-number is —
    /// "line 10 (data row 9)" —, that cell).
    pub stray: Vec<(String, String, String)>,
}

impl Schema {
    pub fn new(file_name: impl Into<String>, columns: Vec<(String, ColumnKind)>) -> Self {
        Schema {
            file_name: file_name.into(),
            columns,
            stray: Vec::new(),
        }
    }

    pub fn from_table(table: &DataTable) -> Self {
        let file_name = table
            .path
            .file_name()
            .map(|n| n.to_string_lossy().into_owned())
            .unwrap_or_else(|| table.path.to_string_lossy().into_owned());
        let columns = table
            .names
            .iter()
            .zip(&table.columns)
            .map(|(name, column)| {
                let kind = match column {
                    Column::Numeric(_) => ColumnKind::Numeric,
                    Column::Text { .. } => ColumnKind::Text,
                };
                (name.clone(), kind)
            })
            .collect();
        let stray = table
            .names
            .iter()
            .zip(&table.stray_text)
            .filter_map(|(name, stray)| {
                stray
                    .as_ref()
                    .map(|s| (name.clone(), s.place(), s.text.clone()))
            })
            .collect();
        Schema {
            file_name,
            columns,
            stray,
        }
    }

    pub fn kind(&self, name: &str) -> Option<ColumnKind> {
        self.columns
            .iter()
            .find(|(n, _)| n == name)
            .map(|(_, kind)| *kind)
    }

    pub fn names(&self) -> impl Iterator<Item = &str> {
        self.columns.iter().map(|(n, _)| n.as_str())
    }
}
