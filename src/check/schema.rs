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
    /// Text columns with a damaged cell: (column, where the first is, that cell, what is wrong
    /// with it). Every distinct text is a level, so such a cell would silently be a group or
    /// category of its own.
    pub damaged: Vec<(String, String, String, &'static str)>,
}

impl Schema {
    pub fn new(file_name: impl Into<String>, columns: Vec<(String, ColumnKind)>) -> Self {
        Schema {
            file_name: file_name.into(),
            columns,
            stray: Vec::new(),
            damaged: Vec::new(),
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
            damaged: {
                let mut damaged = damaged_cells(table);
                if let Some((column, line, cell)) = &table.text_after_quote {
                    if let Some(name) = table.names.get(*column) {
                        damaged.retain(|(c, ..)| c != name);
                        damaged.push((
                            name.clone(),
                            format!("line {line}"),
                            cell.clone(),
                            "text after its closing quote",
                        ));
                    }
                }
                damaged
            },
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

/// The first damaged cell of each text column: bytes that are not UTF-8 (read as U+FFFD) or a
/// quote inside a cell (a quoted cell's quotes are gone by now; one left is out of place). Only
/// the levels are looked at, and the rows only of a column that has such a level.
fn damaged_cells(table: &DataTable) -> Vec<(String, String, String, &'static str)> {
    let mut out = Vec::new();
    for (name, column) in table.names.iter().zip(&table.columns) {
        let Column::Text { codes, levels } = column else {
            continue;
        };
        let reason = |level: &str| {
            if level.contains('\u{FFFD}') {
                Some("bytes that are not UTF-8")
            } else if level.contains('"') {
                Some("a quote inside a cell")
            } else {
                None
            }
        };
        if !levels.iter().any(|l| reason(l).is_some()) {
            continue;
        }
        let first = codes.iter().enumerate().find_map(|(row, &code)| {
            let level = levels.get(code as usize)?;
            reason(level).map(|why| (row, level, why))
        });
        if let Some((row, level, why)) = first {
            out.push((
                name.clone(),
                crate::data::row_place(table.lines.as_ref(), table.first_row + row + 1),
                level.clone(),
                why,
            ));
        }
    }
    out
}
