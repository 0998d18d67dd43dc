//! Reading a CSV file into a `DataTable` in one pass.
//!
//! Owns the file-level rules: the first record is the header, a cell that is empty or `NA`
//! (after trimming ASCII whitespace) is missing, a column is numeric when every non-missing cell
//! parses as a number and text (a factor with levels in byte order) otherwise. It must not give
//! meaning to columns (which is a group, an outcome): that is for later stages.

// The signature `Result<_, Diagnostic>` is the project's interface; errors are rare and cold.
#![allow(clippy::result_large_err)]

use std::collections::HashMap;
use std::path::Path;

use ::csv::{ByteRecord, ReaderBuilder};

use super::{Column, DataTable, StrayText, MISSING_CODE};
use crate::diagnostics::{Diagnostic, Location};

/// Read a CSV file with a header line into typed columns.
///
/// Errors (the file cannot be read, a row has a different number of fields than the header, a
/// header name is empty or repeated, there are no data rows) are diagnostics pointing at the
/// file or at the offending row.
pub fn read_csv(path: &Path) -> Result<DataTable, Diagnostic> {
    let bytes = std::fs::read(path).map_err(|e| {
        Diagnostic::error(
            format!("cannot read data file `{}`: {e}", path.display()),
            Location::File(path.to_path_buf()),
        )
    })?;
    parse_csv(path, &bytes)
}

fn reader(bytes: &[u8]) -> ::csv::Reader<&[u8]> {
    ReaderBuilder::new()
        .has_headers(true)
        .flexible(true)
        .from_reader(bytes)
}

fn csv_error(path: &Path, error: ::csv::Error) -> Diagnostic {
    let row = error.position().map(|p| p.record() as usize);
    let location = match row {
        Some(row) if row > 0 => Location::Data {
            path: path.to_path_buf(),
            row: Some(row),
            column: None,
        },
        _ => Location::File(path.to_path_buf()),
    };
    Diagnostic::error(
        format!("cannot read `{}`: {error}", path.display()),
        location,
    )
}

fn parse_csv(path: &Path, bytes: &[u8]) -> Result<DataTable, Diagnostic> {
    let mut rdr = reader(bytes);
    let names = read_header(path, &mut rdr)?;
    let ncols = names.len();
    let mut builders: Vec<ColumnBuilder> = (0..ncols).map(|_| ColumnBuilder::new()).collect();

    let mut record = ByteRecord::new();
    let mut nrows = 0usize;
    let mut ragged: Option<(usize, usize)> = None;
    let mut ragged_count = 0usize;
    loop {
        match rdr.read_byte_record(&mut record) {
            Ok(true) => {}
            Ok(false) => break,
            Err(e) => return Err(csv_error(path, e)),
        }
        let row = nrows;
        nrows += 1;
        if record.len() != ncols {
            // Keep going so the message can say how many rows are affected.
            ragged_count += 1;
            ragged.get_or_insert((row + 1, record.len()));
            continue;
        }
        for (builder, cell) in builders.iter_mut().zip(record.iter()) {
            builder.push(row, cell);
        }
    }

    if let Some((row, fields)) = ragged {
        let others = if ragged_count > 1 {
            format!(" ({} rows like this in all)", ragged_count)
        } else {
            String::new()
        };
        return Err(Diagnostic::error(
            format!(
                "row {row} has {fields} field{}, but the header has {ncols}{others}",
                if fields == 1 { "" } else { "s" }
            ),
            Location::Data {
                path: path.to_path_buf(),
                row: Some(row),
                column: None,
            },
        ));
    }
    if nrows == 0 {
        return Err(Diagnostic::error(
            format!("data file `{}` has a header but no rows", path.display()),
            Location::File(path.to_path_buf()),
        ));
    }

    // Text columns that began as numbers have not interned their early cells; one more pass over
    // the (in-memory) file fills them in. Columns that are text from the first cell never need it.
    let reread: Vec<usize> = builders
        .iter()
        .enumerate()
        .filter(|(_, b)| b.numeric_prefix() > 0)
        .map(|(j, _)| j)
        .collect();
    if !reread.is_empty() {
        let mut rdr = reader(bytes);
        let mut row = 0usize;
        while rdr
            .read_byte_record(&mut record)
            .map_err(|e| csv_error(path, e))?
        {
            let mut done = true;
            for &j in &reread {
                if row < builders[j].numeric_prefix() {
                    builders[j].intern_at(row, &record[j]);
                    done = false;
                }
            }
            if done {
                break;
            }
            row += 1;
        }
    }

    let mut columns = Vec::with_capacity(ncols);
    let mut stray_text = Vec::with_capacity(ncols);
    for builder in builders {
        let (column, stray) = builder.finish();
        columns.push(column);
        stray_text.push(stray);
    }
    Ok(DataTable {
        path: path.to_path_buf(),
        names,
        columns,
        nrows,
        stray_text,
    })
}

fn read_header(path: &Path, rdr: &mut ::csv::Reader<&[u8]>) -> Result<Vec<String>, Diagnostic> {
    let header = rdr.byte_headers().map_err(|e| csv_error(path, e))?.clone();
    if header.is_empty() {
        return Err(Diagnostic::error(
            format!("data file `{}` is empty", path.display()),
            Location::File(path.to_path_buf()),
        ));
    }
    let names: Vec<String> = header
        .iter()
        .map(|h| String::from_utf8_lossy(h.trim_ascii()).into_owned())
        .collect();
    let mut problems = Vec::new();
    for (j, name) in names.iter().enumerate() {
        if name.is_empty() {
            problems.push(format!("column {} has an empty name", j + 1));
        } else if names[..j].contains(name) {
            problems.push(format!("column name `{name}` appears more than once"));
        }
    }
    if !problems.is_empty() {
        return Err(Diagnostic::error(
            format!(
                "the header of `{}` is not usable: {}",
                path.display(),
                problems.join("; ")
            ),
            Location::File(path.to_path_buf()),
        )
        .with_expected("a unique, non-empty name for every column"));
    }
    Ok(names)
}

fn is_missing_cell(cell: &[u8]) -> bool {
    cell.is_empty() || cell == b"NA"
}

fn parse_number(cell: &[u8]) -> Option<f64> {
    // Rust's parser also takes "inf"/"nan" spellings; R's read.csv takes "Inf" and "NaN" too.
    std::str::from_utf8(cell).ok()?.parse::<f64>().ok()
}

/// A column being read: numeric until the first non-numeric cell, then text.
enum ColumnBuilder {
    Numeric(Vec<f64>),
    Text(TextBuilder),
}

struct TextBuilder {
    codes: Vec<u32>,
    lookup: HashMap<Vec<u8>, u32>,
    levels: Vec<Vec<u8>>,
    /// Rows `0..numeric_prefix` were read as numbers before the first text cell and still need
    /// their text codes (filled by a second pass).
    numeric_prefix: usize,
    numeric_cells: usize,
    text_cells: usize,
    first_text: StrayText,
    /// Consecutive repeats (an id column) skip the hash lookup.
    last: Option<u32>,
}

impl TextBuilder {
    fn intern(&mut self, cell: &[u8]) -> u32 {
        if let Some(code) = self.last {
            if self.levels[code as usize] == cell {
                return code;
            }
        }
        let code = match self.lookup.get(cell) {
            Some(&code) => code,
            None => {
                let code = self.levels.len() as u32;
                self.levels.push(cell.to_vec());
                self.lookup.insert(cell.to_vec(), code);
                code
            }
        };
        self.last = Some(code);
        code
    }
}

impl ColumnBuilder {
    fn new() -> Self {
        ColumnBuilder::Numeric(Vec::new())
    }

    fn numeric_prefix(&self) -> usize {
        match self {
            ColumnBuilder::Numeric(_) => 0,
            ColumnBuilder::Text(t) => t.numeric_prefix,
        }
    }

    fn push(&mut self, row: usize, raw: &[u8]) {
        let cell = raw.trim_ascii();
        match self {
            ColumnBuilder::Numeric(values) => {
                if is_missing_cell(cell) {
                    values.push(f64::NAN);
                } else if let Some(x) = parse_number(cell) {
                    values.push(x);
                } else {
                    let numeric_cells = values.iter().filter(|v| !v.is_nan()).count();
                    let prefix = if numeric_cells > 0 { row } else { 0 };
                    let mut codes = Vec::with_capacity(values.capacity().max(row + 1));
                    for v in values.iter() {
                        // Placeholder for numbers until the second pass; missing stays missing.
                        codes.push(if v.is_nan() { MISSING_CODE } else { 0 });
                    }
                    let mut text = TextBuilder {
                        codes,
                        lookup: HashMap::new(),
                        levels: Vec::new(),
                        numeric_prefix: prefix,
                        numeric_cells,
                        text_cells: 1,
                        first_text: StrayText {
                            row: row + 1,
                            text: String::from_utf8_lossy(cell).into_owned(),
                        },
                        last: None,
                    };
                    let code = text.intern(cell);
                    text.codes.push(code);
                    *self = ColumnBuilder::Text(text);
                }
            }
            ColumnBuilder::Text(text) => {
                if is_missing_cell(cell) {
                    text.codes.push(MISSING_CODE);
                    return;
                }
                if parse_number(cell).is_some() {
                    text.numeric_cells += 1;
                } else {
                    text.text_cells += 1;
                }
                let code = text.intern(cell);
                text.codes.push(code);
            }
        }
    }

    fn intern_at(&mut self, row: usize, raw: &[u8]) {
        if let ColumnBuilder::Text(text) = self {
            let cell = raw.trim_ascii();
            if !is_missing_cell(cell) {
                let code = text.intern(cell);
                text.codes[row] = code;
            }
        }
    }

    fn finish(self) -> (Column, Option<StrayText>) {
        match self {
            ColumnBuilder::Numeric(values) => (Column::Numeric(values), None),
            ColumnBuilder::Text(text) => {
                let mut order: Vec<u32> = (0..text.levels.len() as u32).collect();
                order.sort_by(|&a, &b| text.levels[a as usize].cmp(&text.levels[b as usize]));
                let mut remap = vec![0u32; order.len()];
                for (new, &old) in order.iter().enumerate() {
                    remap[old as usize] = new as u32;
                }
                let codes = text
                    .codes
                    .into_iter()
                    .map(|c| {
                        if c == MISSING_CODE {
                            c
                        } else {
                            remap[c as usize]
                        }
                    })
                    .collect();
                let levels = order
                    .iter()
                    .map(|&old| String::from_utf8_lossy(&text.levels[old as usize]).into_owned())
                    .collect();
                let stray = (text.numeric_cells > text.text_cells).then_some(text.first_text);
                (Column::Text { codes, levels }, stray)
            }
        }
    }
}
