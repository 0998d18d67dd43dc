//! Reading Parquet and Arrow IPC (Feather v2) files into a `DataTable`, with the CSV reader's
//! column rules: a numeric column (floats, integers) is numeric, a text column (strings, R's
//! factors as dictionaries, logicals as `FALSE`/`TRUE`) is a factor with levels in byte order,
//! nulls, NaN and the declared missing codes are missing. It must not give meaning to columns,
//! and it refuses (naming the column and its type) what has no CSV counterpart: dates, times,
//! decimals, nested types.

// The signature `Result<_, Diagnostic>` is the project's interface; errors are rare and cold.
#![allow(clippy::result_large_err)]

use std::collections::HashMap;
use std::path::Path;

use arrow_array::cast::AsArray;
use arrow_array::types::{
    Float32Type, Float64Type, Int16Type, Int32Type, Int64Type, Int8Type, UInt16Type, UInt32Type,
    UInt64Type, UInt8Type,
};
use arrow_array::{Array, RecordBatch};
use arrow_schema::{DataType, SchemaRef};

use super::{Column, DataTable, MISSING_CODE};
use crate::diagnostics::{Diagnostic, Location};

/// The columnar formats read here.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Format {
    Parquet,
    /// Arrow IPC file format (`.arrow`, `.feather`, `.ipc`).
    ArrowFile,
    /// Arrow IPC stream format (`.arrows`).
    ArrowStream,
}

impl Format {
    pub fn of(path: &Path) -> Option<Format> {
        let extension = path.extension()?.to_str()?.to_ascii_lowercase();
        match extension.as_str() {
            "parquet" | "parq" => Some(Format::Parquet),
            "arrow" | "feather" | "ipc" => Some(Format::ArrowFile),
            "arrows" => Some(Format::ArrowStream),
            _ => None,
        }
    }

    fn name(self) -> &'static str {
        match self {
            Format::Parquet => "Parquet",
            Format::ArrowFile | Format::ArrowStream => "Arrow IPC",
        }
    }
}

/// A Parquet or Arrow IPC file's `bytes` as a table; `codes` are the declared missing codes
/// (a text cell equal to one, or a number equal to a numeric one, is missing).
pub fn parse_columnar(
    path: &Path,
    bytes: Vec<u8>,
    format: Format,
    codes: &[String],
) -> Result<DataTable, Diagnostic> {
    let (schema, batches) = read_batches(path, bytes, format)?;
    let names: Vec<String> = schema.fields().iter().map(|f| f.name().clone()).collect();
    if names.is_empty() {
        return Err(Diagnostic::error(
            format!("data file `{}` has no columns", path.display()),
            Location::File(path.to_path_buf()),
        ));
    }
    let nrows: usize = batches.iter().map(|b| b.num_rows()).sum();
    if nrows == 0 {
        return Err(Diagnostic::error(
            format!("data file `{}` has no rows", path.display()),
            Location::File(path.to_path_buf()),
        ));
    }
    let (columns, declared) = typed_columns(path, &schema, &batches, nrows, codes)?;
    let mut notes = vec![format!("read from {}", format.name())];
    if !codes.is_empty() {
        let spelled: Vec<String> = codes.iter().map(|c| format!("`{}`", c.trim())).collect();
        notes.push(format!(
            "{declared} cell{} equal to the missing code{} {} read as missing",
            if declared == 1 { "" } else { "s" },
            if codes.len() == 1 { "" } else { "s" },
            spelled.join(", ")
        ));
    }
    Ok(DataTable {
        path: path.to_path_buf(),
        stray_text: vec![None; names.len()],
        names,
        columns,
        nrows,
        notes,
        // A columnar file has records, not lines: messages name the data row.
        lines: None,
        text_after_quote: None,
        first_row: 0,
    })
}

/// The file's schema and all its record batches.
fn read_batches(
    path: &Path,
    bytes: Vec<u8>,
    format: Format,
) -> Result<(SchemaRef, Vec<RecordBatch>), Diagnostic> {
    let unreadable = |e: &dyn std::fmt::Display| {
        Diagnostic::error(
            format!("cannot read `{}` as {}: {e}", path.display(), format.name()),
            Location::File(path.to_path_buf()),
        )
        .with_hint("is the file complete, and is its extension right?")
    };
    type Batches = Box<dyn Iterator<Item = Result<RecordBatch, arrow_schema::ArrowError>>>;
    let (schema, reader): (SchemaRef, Batches) = match format {
        Format::Parquet => {
            use parquet::arrow::arrow_reader::ParquetRecordBatchReaderBuilder;
            let builder = ParquetRecordBatchReaderBuilder::try_new(bytes::Bytes::from(bytes))
                .map_err(|e| unreadable(&e))?;
            let schema = builder.schema().clone();
            (
                schema,
                Box::new(builder.build().map_err(|e| unreadable(&e))?),
            )
        }
        Format::ArrowFile => {
            let reader = arrow_ipc::reader::FileReader::try_new(std::io::Cursor::new(bytes), None)
                .map_err(|e| unreadable(&e))?;
            (reader.schema(), Box::new(reader))
        }
        Format::ArrowStream => {
            let reader =
                arrow_ipc::reader::StreamReader::try_new(std::io::Cursor::new(bytes), None)
                    .map_err(|e| unreadable(&e))?;
            (reader.schema(), Box::new(reader))
        }
    };
    let batches = reader
        .collect::<Result<Vec<_>, _>>()
        .map_err(|e| unreadable(&e))?;
    Ok((schema, batches))
}

/// Each field as a numeric or text column with the declared missing codes made missing, and
/// how many cells were; every column of a type without a CSV counterpart is refused at once.
fn typed_columns(
    path: &Path,
    schema: &SchemaRef,
    batches: &[RecordBatch],
    nrows: usize,
    codes: &[String],
) -> Result<(Vec<Column>, usize), Diagnostic> {
    let numeric_codes: Vec<f64> = codes.iter().filter_map(|c| c.trim().parse().ok()).collect();
    let text_codes: Vec<&str> = codes.iter().map(|c| c.trim()).collect();
    let mut declared = 0usize;
    let mut columns = Vec::with_capacity(schema.fields().len());
    let mut problems = Vec::new();
    for (j, field) in schema.fields().iter().enumerate() {
        let parts: Vec<&dyn Array> = batches.iter().map(|b| b.column(j).as_ref()).collect();
        match column_of(&parts, field.data_type(), nrows) {
            Some(Cells::Numbers(mut values)) => {
                for v in values.iter_mut() {
                    if numeric_codes.contains(v) {
                        *v = f64::NAN;
                        declared += 1;
                    }
                }
                columns.push(Column::Numeric(values));
            }
            Some(Cells::Text(cells)) => {
                let (column, n) = text_column(cells, &text_codes);
                declared += n;
                columns.push(column);
            }
            None => problems.push(format!("`{}` ({})", field.name(), field.data_type())),
        }
    }
    if !problems.is_empty() {
        return Err(Diagnostic::error(
            format!(
                "{} has {} of a type tandem cannot use: {}",
                path.display(),
                if problems.len() == 1 {
                    "a column"
                } else {
                    "columns"
                },
                problems.join(", ")
            ),
            Location::File(path.to_path_buf()),
        )
        .with_expected("numbers (floats, integers), text, factors or logicals")
        .with_hint("convert dates and times to numbers (e.g. days since a start) before writing"));
    }
    Ok((columns, declared))
}

/// One column's cells over all batches.
enum Cells<'a> {
    Numbers(Vec<f64>),
    /// Each row's text, `None` when missing.
    Text(Vec<Option<&'a str>>),
}

fn column_of<'a>(parts: &[&'a dyn Array], data_type: &DataType, nrows: usize) -> Option<Cells<'a>> {
    macro_rules! numbers {
        ($t:ty) => {{
            let mut out = Vec::with_capacity(nrows);
            for part in parts {
                out.extend(
                    part.as_primitive::<$t>()
                        .iter()
                        .map(|v| v.map_or(f64::NAN, |v| v as f64)),
                );
            }
            Some(Cells::Numbers(out))
        }};
    }
    match data_type {
        DataType::Float64 => numbers!(Float64Type),
        DataType::Float32 => numbers!(Float32Type),
        DataType::Int8 => numbers!(Int8Type),
        DataType::Int16 => numbers!(Int16Type),
        DataType::Int32 => numbers!(Int32Type),
        DataType::Int64 => numbers!(Int64Type),
        DataType::UInt8 => numbers!(UInt8Type),
        DataType::UInt16 => numbers!(UInt16Type),
        DataType::UInt32 => numbers!(UInt32Type),
        DataType::UInt64 => numbers!(UInt64Type),
        DataType::Null => Some(Cells::Numbers(vec![f64::NAN; nrows])),
        DataType::Boolean => {
            let mut out = Vec::with_capacity(nrows);
            for part in parts {
                out.extend(
                    part.as_boolean()
                        .iter()
                        .map(|v| v.map(|b| if b { "TRUE" } else { "FALSE" })),
                );
            }
            Some(Cells::Text(out))
        }
        DataType::Utf8 | DataType::LargeUtf8 | DataType::Utf8View => {
            let mut out = Vec::with_capacity(nrows);
            for part in parts {
                strings(*part, &mut out)?;
            }
            Some(Cells::Text(out))
        }
        DataType::Dictionary(_, value) if is_string(value) => {
            let mut out = Vec::with_capacity(nrows);
            for part in parts {
                let dictionary = part.as_any_dictionary_opt()?;
                let mut values = Vec::with_capacity(dictionary.values().len());
                strings(dictionary.values().as_ref(), &mut values)?;
                for (i, key) in dictionary.normalized_keys().into_iter().enumerate() {
                    out.push(if part.is_null(i) {
                        None
                    } else {
                        values.get(key).copied().flatten()
                    });
                }
            }
            Some(Cells::Text(out))
        }
        _ => None,
    }
}

fn is_string(data_type: &DataType) -> bool {
    matches!(
        data_type,
        DataType::Utf8 | DataType::LargeUtf8 | DataType::Utf8View
    )
}

/// Appends a string array's cells.
fn strings<'a>(array: &'a dyn Array, out: &mut Vec<Option<&'a str>>) -> Option<()> {
    match array.data_type() {
        DataType::Utf8 => out.extend(array.as_string::<i32>().iter()),
        DataType::LargeUtf8 => out.extend(array.as_string::<i64>().iter()),
        DataType::Utf8View => out.extend(array.as_string_view().iter()),
        _ => return None,
    }
    Some(())
}

/// Text cells as a factor (levels in byte order, as the CSV reader's); empty, `NA` and the
/// declared codes are missing. Returns the column and how many cells the codes made missing.
fn text_column(cells: Vec<Option<&str>>, codes: &[&str]) -> (Column, usize) {
    let mut declared = 0usize;
    let mut lookup: HashMap<&str, u32> = HashMap::new();
    let mut levels: Vec<&str> = Vec::new();
    let mut codes_out: Vec<u32> = Vec::with_capacity(cells.len());
    for cell in cells {
        // Trimmed as the CSV reader trims its cells (ASCII whitespace).
        let cell = cell.map(|c| c.trim_matches(|ch: char| ch.is_ascii_whitespace()));
        let code = match cell {
            None | Some("") | Some("NA") => MISSING_CODE,
            Some(text) if codes.contains(&text) => {
                declared += 1;
                MISSING_CODE
            }
            Some(text) => *lookup.entry(text).or_insert_with(|| {
                levels.push(text);
                levels.len() as u32 - 1
            }),
        };
        codes_out.push(code);
    }
    let mut order: Vec<u32> = (0..levels.len() as u32).collect();
    order.sort_by(|&a, &b| {
        levels[a as usize]
            .as_bytes()
            .cmp(levels[b as usize].as_bytes())
    });
    let mut rank = vec![0u32; levels.len()];
    for (new, &old) in order.iter().enumerate() {
        rank[old as usize] = new as u32;
    }
    for code in codes_out.iter_mut().filter(|c| **c != MISSING_CODE) {
        *code = rank[*code as usize];
    }
    let levels = order
        .iter()
        .map(|&old| levels[old as usize].to_string())
        .collect();
    (
        Column::Text {
            codes: codes_out,
            levels,
        },
        declared,
    )
}
