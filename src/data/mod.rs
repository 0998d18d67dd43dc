//! Tabular data: reading CSV (plain or gzip-compressed), Parquet and Arrow IPC files into typed
//! columns, chosen by the file's extension (`read_data_with_sha256`).
//!
//! Owns `DataTable`, `Column` and `RowLines` (each data row's file line, for messages). It must
//! not know about model files or preparation.

use std::path::PathBuf;

mod columnar;
mod csv;
mod memory;
mod pieces;
pub use self::memory::{memory_shortfall, AVAILABLE_MEMORY_VARIABLE};
pub use self::pieces::{CsvPieces, RawPiece};

pub use self::columnar::Format as ColumnarFormat;
pub(crate) use self::csv::missing_codes;
pub use self::csv::{read_csv, read_csv_gz_with_sha256, read_csv_with_sha256, sha256_hex};

/// Reads a data file as the `data` statement names it: Parquet (`.parquet`), Arrow IPC
/// (`.arrow`, `.feather`, `.arrows`), gzip-compressed CSV or TSV (`.gz`), or CSV/TSV, with the
/// declared missing codes, and the SHA-256 of the file's bytes for the report's provenance.
#[allow(clippy::result_large_err)]
pub fn read_data_with_sha256(
    path: &std::path::Path,
    missing: &[String],
) -> Result<(DataTable, String), crate::diagnostics::Diagnostic> {
    memory::check_fits_in_memory(path)?;
    if let Some(format) = columnar::Format::of(path) {
        let bytes = std::fs::read(path).map_err(|e| {
            crate::diagnostics::Diagnostic::error(
                format!("cannot read data file `{}`: {e}", path.display()),
                crate::diagnostics::Location::File(path.to_path_buf()),
            )
        })?;
        let digest = sha256_hex(&bytes);
        let table = columnar::parse_columnar(path, bytes, format, missing)?;
        return Ok((table, digest));
    }
    if path
        .extension()
        .is_some_and(|e| e.eq_ignore_ascii_case("gz"))
    {
        return read_csv_gz_with_sha256(path, missing);
    }
    read_csv_with_sha256(path, missing)
}

/// Code of a missing cell in a text column.
pub const MISSING_CODE: u32 = u32::MAX;

/// Text codes renumbered through `remap` (old code → new), missing cells kept missing.
pub fn remap_codes(codes: Vec<u32>, remap: &[u32]) -> Vec<u32> {
    codes
        .into_iter()
        .map(|c| {
            if c == MISSING_CODE {
                c
            } else {
                remap[c as usize]
            }
        })
        .collect()
}

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

impl Column {
    pub fn len(&self) -> usize {
        match self {
            Column::Numeric(values) => values.len(),
            Column::Text { codes, .. } => codes.len(),
        }
    }

    pub fn is_empty(&self) -> bool {
        self.len() == 0
    }

    /// Whether row `i` is missing (NaN, or `MISSING_CODE`).
    pub fn is_missing(&self, i: usize) -> bool {
        match self {
            Column::Numeric(values) => values[i].is_nan(),
            Column::Text { codes, .. } => codes[i] == MISSING_CODE,
        }
    }

    /// The column restricted to the rows in `rows` (in that order).
    pub fn select(&self, rows: &[usize]) -> Column {
        match self {
            Column::Numeric(values) => Column::Numeric(rows.iter().map(|&i| values[i]).collect()),
            Column::Text { codes, levels } => Column::Text {
                codes: rows.iter().map(|&i| codes[i]).collect(),
                levels: levels.clone(),
            },
        }
    }
}

/// The first cell of a text column that did not parse as a number, kept when most of the
/// column's cells were numbers, so that a numeric use can say which cell spoilt it.
#[derive(Debug, Clone, PartialEq)]
pub struct StrayText {
    /// 1-based data row (the header is not counted).
    pub row: usize,
    /// The file line the row starts on (what an editor shows), when the table came from a file.
    pub line: Option<u64>,
    pub text: String,
}

impl StrayText {
    /// Where the cell is, for messages (`row_place`).
    pub fn place(&self) -> String {
        place(self.line, self.row)
    }
}

/// "line L (data row R)" for 1-based data `row` starting on file line `line`, or "data row R"
/// when the table has no file.
pub fn row_place(lines: Option<&RowLines>, row: usize) -> String {
    place(lines.map(|l| l.line(row)), row)
}

fn place(line: Option<u64>, row: usize) -> String {
    match line {
        Some(line) => format!("line {line} (data row {row})"),
        None => format!("data row {row}"),
    }
}

/// The file line each data row starts on. Line = row + 1 (the header on line 1) until a blank
/// line, a header or a field spanning lines shifts it; each shift is kept as a break, so the
/// map costs nothing for a plain file.
#[derive(Debug, Clone, PartialEq, Default)]
pub struct RowLines {
    /// (1-based data row, its line), in row order: from that row on, line = its line plus the
    /// rows since.
    breaks: Vec<(usize, u64)>,
}

impl RowLines {
    /// Records that 1-based data `row` starts on `line` (rows in order).
    pub(crate) fn record(&mut self, row: usize, line: u64) {
        if self.line(row) != line {
            self.breaks.push((row, line));
        }
    }

    /// The file line 1-based data `row` starts on.
    pub fn line(&self, row: usize) -> u64 {
        let k = self.breaks.partition_point(|&(r, _)| r <= row);
        match k.checked_sub(1).map(|k| self.breaks[k]) {
            Some((r, line)) => line + (row - r) as u64,
            None => row as u64 + 1,
        }
    }
}

/// A data file as read: named columns of equal length.
#[derive(Debug, Clone, PartialEq)]
pub struct DataTable {
    pub path: PathBuf,
    pub names: Vec<String>,
    pub columns: Vec<Column>,
    pub nrows: usize,
    /// Parallel to `columns`: for a text column whose non-missing cells were mostly numbers, the
    /// first cell that was not; `None` for every other column.
    pub stray_text: Vec<Option<StrayText>>,
    /// What reading the file decided that the report must say (e.g. an ignored row-names
    /// column).
    pub notes: Vec<String>,
    /// The file line of each data row, for messages; `None` for a table built in memory.
    pub lines: Option<RowLines>,
    /// The first cell with text after its closing quote (`"P01"x`, read as `P01x` by the CSV
    /// rules): (column index, file line, the cell as written).
    pub text_after_quote: Option<(usize, u64, String)>,
    /// Data rows of the file before this table's first row: 0 for a whole file, more for a
    /// piece of one read out of core (row numbers in messages are the file's).
    pub first_row: usize,
}

impl DataTable {
    /// A table of numeric columns built in memory (simulations, programs that already hold
    /// their data); `name` stands for the file name in messages. Columns must have equal
    /// lengths; the shortest decides the number of rows otherwise.
    pub fn from_numeric(name: &str, columns: Vec<(String, Vec<f64>)>) -> DataTable {
        let nrows = columns.iter().map(|(_, c)| c.len()).min().unwrap_or(0);
        let stray_text = vec![None; columns.len()];
        let (names, columns): (Vec<String>, Vec<Column>) = columns
            .into_iter()
            .map(|(n, mut c)| {
                c.truncate(nrows);
                (n, Column::Numeric(c))
            })
            .unzip();
        DataTable {
            path: PathBuf::from(name),
            names,
            columns,
            nrows,
            stray_text,
            notes: Vec::new(),
            lines: None,
            text_after_quote: None,
            first_row: 0,
        }
    }

    pub fn column(&self, name: &str) -> Option<&Column> {
        self.names
            .iter()
            .position(|n| n == name)
            .map(|i| &self.columns[i])
    }

    /// The first non-numeric cell of a mostly numeric text column `name`, if any.
    pub fn stray_text(&self, name: &str) -> Option<&StrayText> {
        self.names
            .iter()
            .position(|n| n == name)
            .and_then(|i| self.stray_text.get(i))
            .and_then(Option::as_ref)
    }
}
