//! Reading a CSV file into a `DataTable` in one pass.
//!
//! Owns the file-level rules: the dialect (the delimiter the header line uses most outside
//! quotes, or a tab for `.tsv`/`.tab`; decimal commas with semicolons, as R's `read.csv2`), the
//! first record is the header, a cell that is empty, `NA` or a declared missing code (after
//! trimming ASCII whitespace) is missing, a column is numeric when every non-missing cell parses
//! as a finite number (or NaN, which is missing) and text (a factor with levels in byte order)
//! otherwise. It must not give meaning to columns (which is a group, an outcome): that is for
//! later stages.

// The signature `Result<_, Diagnostic>` is the project's interface; errors are rare and cold.
#![allow(clippy::result_large_err)]

use std::collections::HashMap;
use std::path::Path;

use ::csv::{ByteRecord, ReaderBuilder};

use super::{Column, DataTable, RowLines, StrayText, MISSING_CODE};
use crate::diagnostics::{Diagnostic, Location};

/// Read a CSV file with a header line into typed columns.
///
/// Errors (the file cannot be read, a row has a different number of fields than the header, a
/// header name is empty or repeated, there are no data rows) are diagnostics pointing at the
/// file or at the offending row.
pub fn read_csv(path: &Path) -> Result<DataTable, Diagnostic> {
    parse_csv(path, &read_bytes(path)?, &[])
}

/// `read_csv` with further cells read as missing (the `data` statement's `missing` codes,
/// compared with each cell after trimming spaces), and the SHA-256 of the bytes it parsed (hex)
/// for the report's provenance: the file is read once and hashed while it is parsed. The table's
/// notes say how many cells the codes turned missing.
pub fn read_csv_with_sha256(
    path: &Path,
    missing: &[String],
) -> Result<(DataTable, String), Diagnostic> {
    let bytes = read_bytes(path)?;
    let codes = missing_codes(missing);
    let (table, digest) = rayon::join(|| parse_csv(path, &bytes, &codes), || sha256_hex(&bytes));
    Ok((table?, digest))
}

/// The `data` statement's missing codes as the parser compares them: trimmed bytes.
pub(crate) fn missing_codes(missing: &[String]) -> Vec<Vec<u8>> {
    missing
        .iter()
        .map(|c| c.trim().as_bytes().to_vec())
        .collect()
}

/// `read_csv_with_sha256` for a gzip-compressed file (`x.csv.gz`): the digest is the
/// compressed file's, the dialect the inner name's.
pub fn read_csv_gz_with_sha256(
    path: &Path,
    missing: &[String],
) -> Result<(DataTable, String), Diagnostic> {
    use std::io::Read;
    let compressed = read_bytes(path)?;
    let codes = missing_codes(missing);
    let (bytes, digest) = rayon::join(
        || {
            let mut bytes = Vec::with_capacity(compressed.len() * 4);
            flate2::read::MultiGzDecoder::new(&compressed[..])
                .read_to_end(&mut bytes)
                .map(|_| bytes)
        },
        || sha256_hex(&compressed),
    );
    let bytes = bytes.map_err(|e| {
        Diagnostic::error(
            format!("cannot decompress `{}`: {e}", path.display()),
            Location::File(path.to_path_buf()),
        )
        .with_hint("a `.gz` data file must be gzip-compressed CSV (or TSV)")
    })?;
    let mut table = parse_csv(path, &bytes, &codes)?;
    table
        .notes
        .insert(0, "read from gzip-compressed text".into());
    Ok((table, digest))
}

/// The SHA-256 of `bytes` in lower-case hex.
pub fn sha256_hex(bytes: &[u8]) -> String {
    use sha2::{Digest, Sha256};
    use std::fmt::Write;
    let digest = Sha256::digest(bytes);
    let mut hex = String::with_capacity(64);
    for byte in digest {
        let _ = write!(hex, "{byte:02x}");
    }
    hex
}

fn read_bytes(path: &Path) -> Result<Vec<u8>, Diagnostic> {
    read_file(path).map_err(|e| {
        Diagnostic::error(
            format!("cannot read data file `{}`: {e}", path.display()),
            Location::File(path.to_path_buf()),
        )
    })
}

/// The file's bytes. A large file is read as two halves at once: the copy out of the page cache
/// and the first touch of fresh memory are a fifth of reading a 140 MB CSV. A file that grows
/// meanwhile is read to its end; one that shrinks is an error, as it would be halfway through.
fn read_file(path: &Path) -> std::io::Result<Vec<u8>> {
    #[cfg(unix)]
    {
        use std::io::{Read, Seek, SeekFrom};
        use std::os::unix::fs::FileExt;
        let file = std::fs::File::open(path)?;
        let len = usize::try_from(file.metadata()?.len()).unwrap_or(usize::MAX);
        if (PARALLEL_BYTES..usize::MAX).contains(&len) {
            let mut bytes = vec![0u8; len];
            let half = len / 2;
            let (first, second) = bytes.split_at_mut(half);
            let (a, b) = rayon::join(
                || file.read_exact_at(first, 0),
                || file.read_exact_at(second, half as u64),
            );
            a?;
            b?;
            let mut rest = &file;
            rest.seek(SeekFrom::Start(len as u64))?;
            rest.read_to_end(&mut bytes)?;
            return Ok(bytes);
        }
    }
    std::fs::read(path)
}

fn reader(bytes: &[u8], delimiter: u8) -> ::csv::Reader<&[u8]> {
    ReaderBuilder::new()
        .has_headers(true)
        .flexible(true)
        .delimiter(delimiter)
        .from_reader(bytes)
}

/// How the cells of one file are read: its delimiter, whether a comma is its decimal mark, and
/// the declared missing codes.
#[derive(Debug, Clone, Copy)]
struct Cells<'a> {
    delimiter: u8,
    /// R's `read.csv2` convention for semicolon-separated files: `249,56` is 249.56.
    decimal_comma: bool,
    codes: &'a [Vec<u8>],
    /// For a piece of a larger file (`parse_csv_piece`): the data rows and lines before the
    /// piece's first data line, so that rows and lines in the table and in messages are the
    /// file's. Zero for a whole file.
    rows_before: usize,
    lines_before: u64,
}

impl<'a> Cells<'a> {
    /// The dialect of `bytes`: tab-separated for `.tsv`/`.tab` files; otherwise the separator that
    /// occurs most often outside quotes in the header line (`,` when none does), with decimal
    /// commas when it is `;`, as R's `read.csv2` writes them.
    fn sniff(path: &Path, bytes: &[u8], codes: &'a [Vec<u8>]) -> Self {
        // `x.tsv.gz` is a TSV file, compressed.
        let inner = match path.extension() {
            Some(e) if e.eq_ignore_ascii_case("gz") => path.with_extension(""),
            _ => path.to_path_buf(),
        };
        let extension = inner.extension().and_then(|e| e.to_str()).unwrap_or("");
        let delimiter =
            if extension.eq_ignore_ascii_case("tsv") || extension.eq_ignore_ascii_case("tab") {
                b'\t'
            } else {
                let header = bytes.split(|&b| b == b'\n').next().unwrap_or(&[]);
                let (mut quoted, mut counts) = (false, [0usize; 3]);
                for &b in header {
                    match b {
                        b'"' => quoted = !quoted,
                        b',' if !quoted => counts[0] += 1,
                        b';' if !quoted => counts[1] += 1,
                        b'\t' if !quoted => counts[2] += 1,
                        _ => {}
                    }
                }
                let best = (0..3)
                    .max_by_key(|&i| (counts[i], std::cmp::Reverse(i)))
                    .unwrap_or(0);
                if counts[best] == 0 {
                    b','
                } else {
                    [b',', b';', b'\t'][best]
                }
            };
        Cells {
            delimiter,
            decimal_comma: delimiter == b';',
            codes,
            rows_before: 0,
            lines_before: 0,
        }
    }

    /// What the report says about a dialect other than plain CSV.
    fn note(&self) -> Option<&'static str> {
        match (self.delimiter, self.decimal_comma) {
            (b';', true) => {
                Some("read as semicolon-separated with decimal commas (R's `read.csv2` convention)")
            }
            (b'\t', _) => Some("read as tab-separated"),
            _ => None,
        }
    }

    fn number(&self, cell: &[u8]) -> Option<f64> {
        if self.decimal_comma && cell.contains(&b',') {
            let dotted: Vec<u8> = cell
                .iter()
                .map(|&b| if b == b',' { b'.' } else { b })
                .collect();
            return parse_number(&dotted);
        }
        parse_number(cell)
    }
}

fn csv_error(path: &Path, error: ::csv::Error, cells: &Cells) -> Diagnostic {
    let location = match error.position() {
        Some(p) if p.record() > 0 => Location::Data {
            path: path.to_path_buf(),
            row: Some(p.record() as usize + cells.rows_before),
            line: Some(p.line() + cells.lines_before),
            column: None,
        },
        _ => Location::File(path.to_path_buf()),
    };
    Diagnostic::error(
        format!("cannot read `{}`: {error}", path.display()),
        location,
    )
}

fn parse_csv(path: &Path, bytes: &[u8], codes: &[Vec<u8>]) -> Result<DataTable, Diagnostic> {
    parse_with(path, bytes, Cells::sniff(path, bytes, codes))
}

/// A piece of a large file, read out of core: `bytes` is the file's header line followed by
/// whole data records, the first of them data row `rows_before + 1` on file line
/// `lines_before + 2`. Rows and lines in the table (`first_row`, `lines`) and in messages are
/// the file's. Read by one thread: pieces are read in parallel with each other.
pub(crate) fn parse_csv_piece(
    path: &Path,
    bytes: &[u8],
    codes: &[Vec<u8>],
    rows_before: usize,
    lines_before: u64,
) -> Result<(DataTable, usize), Diagnostic> {
    let cells = Cells {
        rows_before,
        lines_before,
        ..Cells::sniff(path, bytes, codes)
    };
    let (mut table, declared) = parse_sequential(path, bytes, &cells)?;
    finish_table(bytes, &cells, &mut table);
    table.notes.extend(cells.note().map(String::from));
    table.first_row = rows_before;
    Ok((without_row_names(table), declared))
}

fn finish_table(bytes: &[u8], cells: &Cells, table: &mut DataTable) {
    table.text_after_quote = text_after_closing_quote(bytes, cells.delimiter)
        .map(|(column, line, cell)| (column, line + cells.lines_before, cell));
    for stray in table.stray_text.iter_mut().flatten() {
        stray.row += cells.rows_before;
    }
    if let Some(lines) = &table.lines {
        for stray in table.stray_text.iter_mut().flatten() {
            stray.line = Some(lines.line(stray.row));
        }
    }
}

fn parse_with(path: &Path, bytes: &[u8], cells: Cells) -> Result<DataTable, Diagnostic> {
    let threads = rayon::current_num_threads();
    let codes = cells.codes;
    let (mut table, declared) = match (bytes.len() >= PARALLEL_BYTES && threads > 1)
        .then(|| parse_in_chunks(path, bytes, threads, &cells))
        .flatten()
    {
        Some(read) => read,
        None => parse_sequential(path, bytes, &cells)?,
    };
    finish_table(bytes, &cells, &mut table);
    table.notes.extend(cells.note().map(String::from));
    if !codes.is_empty() {
        let spelled: Vec<String> = codes
            .iter()
            .map(|c| format!("`{}`", String::from_utf8_lossy(c)))
            .collect();
        table.notes.push(format!(
            "{declared} cell{} equal to the missing code{} {} read as missing",
            if declared == 1 { "" } else { "s" },
            if codes.len() == 1 { "" } else { "s" },
            spelled.join(", ")
        ));
    }
    Ok(without_row_names(table))
}

/// The first cell with text after its closing quote, `"P01"x`: the CSV rules read it as `P01x`,
/// a level of its own, so `check` refuses a model that uses its column. Only quotes are
/// visited (a file without any costs one `memchr`); a quote opens a field only at its start, as
/// the CSV reader reads it. Returns (column index, file line, the cell as written).
fn text_after_closing_quote(bytes: &[u8], delimiter: u8) -> Option<(usize, u64, String)> {
    let at_field_start =
        |i: usize| i == 0 || matches!(bytes[i - 1], b'\n' | b'\r') || bytes[i - 1] == delimiter;
    let mut quotes = memchr::memchr_iter(b'"', bytes);
    let mut open = false;
    while let Some(i) = quotes.next() {
        if !open {
            open = at_field_start(i);
            continue;
        }
        // Spaces after the closing quote are trimmed with the cell, as everywhere.
        let after = bytes[i + 1..]
            .iter()
            .position(|&b| !(b == b' ' || (b == b'\t' && delimiter != b'\t')))
            .map(|p| bytes[i + 1 + p]);
        match after {
            Some(b'"') if bytes.get(i + 1) == Some(&b'"') => {
                quotes.next();
            }
            None | Some(b'\n' | b'\r') => open = false,
            Some(next) if next == delimiter => open = false,
            Some(_) => {
                let line_start = memchr::memrchr(b'\n', &bytes[..i]).map_or(0, |p| p + 1);
                let line = memchr::memchr_iter(b'\n', &bytes[..i]).count() as u64 + 1;
                // The field's index: delimiters before it on its line, outside quotes.
                let (mut column, mut quoted, mut start) = (0, false, line_start);
                for (k, &b) in bytes[line_start..i].iter().enumerate() {
                    if b == b'"' {
                        quoted = !quoted;
                    } else if b == delimiter && !quoted {
                        column += 1;
                        start = line_start + k + 1;
                    }
                }
                let end = bytes[i..]
                    .iter()
                    .position(|&b| b == delimiter || b == b'\n' || b == b'\r')
                    .map_or(bytes.len(), |p| i + p);
                let cell = String::from_utf8_lossy(&bytes[start..end]).into_owned();
                return Some((column, line, cell));
            }
        }
    }
    None
}

/// How many cells of `record` are one of the declared missing codes.
fn declared_missing(record: &ByteRecord, codes: &[Vec<u8>]) -> usize {
    if codes.is_empty() {
        return 0;
    }
    record
        .iter()
        .filter(|cell| codes.iter().any(|c| c == cell.trim_ascii()))
        .count()
}

/// R's `write.csv` writes the row names as a first column with an empty name (`"",...`):
/// that column is not data, so it is left out, and the report says so.
fn without_row_names(mut table: DataTable) -> DataTable {
    if table.names.first().is_some_and(|n| n.is_empty()) {
        table.names.remove(0);
        table.columns.remove(0);
        table.stray_text.remove(0);
        table.notes.push(
            "the first column has no name: it was taken for R's row names (`write.csv` without \
             `row.names = FALSE`) and ignored"
                .into(),
        );
    }
    table
}

/// The table and the number of cells that were declared missing codes.
fn parse_sequential(
    path: &Path,
    bytes: &[u8],
    cells: &Cells,
) -> Result<(DataTable, usize), Diagnostic> {
    let mut rdr = reader(bytes, cells.delimiter);
    let names = read_header(path, &mut rdr, cells)?;
    let ncols = names.len();
    let mut builders: Vec<ColumnBuilder> = (0..ncols).map(|_| ColumnBuilder::new()).collect();

    let mut record = ByteRecord::new();
    let mut nrows = 0usize;
    let mut lines = RowLines::default();
    let mut ragged: Option<(usize, u64, usize)> = None;
    let mut ragged_count = 0usize;
    let mut declared = 0usize;
    loop {
        match rdr.read_byte_record(&mut record) {
            Ok(true) => {}
            Ok(false) => break,
            Err(e) => return Err(csv_error(path, e, cells)),
        }
        let row = nrows;
        nrows += 1;
        let line = record
            .position()
            .map_or(row as u64 + 1, |p| start_line(bytes, p))
            + cells.lines_before;
        lines.record(cells.rows_before + nrows, line);
        if record.len() != ncols {
            // Keep going so the message can say how many rows are affected.
            ragged_count += 1;
            ragged.get_or_insert((cells.rows_before + row + 1, line, record.len()));
            continue;
        }
        declared += declared_missing(&record, cells.codes);
        for (builder, cell) in builders.iter_mut().zip(record.iter()) {
            builder.push(row, cell, cells);
        }
    }

    if let Some(first) = ragged {
        return Err(ragged_rows(path, first, ragged_count, ncols));
    }
    if nrows == 0 {
        return Err(Diagnostic::error(
            format!("data file `{}` has a header but no rows", path.display()),
            Location::File(path.to_path_buf()),
        ));
    }
    intern_numeric_prefixes(path, bytes, cells, &mut builders)?;
    Ok((table_of(path, names, builders, nrows, lines), declared))
}

/// The sequential reader's table: each column finished, with its stray text cells.
fn table_of(
    path: &Path,
    names: Vec<String>,
    builders: Vec<ColumnBuilder>,
    nrows: usize,
    lines: RowLines,
) -> DataTable {
    let mut columns = Vec::with_capacity(names.len());
    let mut stray_text = Vec::with_capacity(names.len());
    for builder in builders {
        let (column, stray) = builder.finish();
        columns.push(column);
        stray_text.push(stray);
    }
    DataTable {
        path: path.to_path_buf(),
        names,
        columns,
        nrows,
        stray_text,
        notes: Vec::new(),
        lines: Some(lines),
        text_after_quote: None,
        first_row: 0,
    }
}

/// The error for rows whose number of fields is not the header's, at the first of them.
fn ragged_rows(
    path: &Path,
    (row, line, fields): (usize, u64, usize),
    ragged_count: usize,
    ncols: usize,
) -> Diagnostic {
    let others = if ragged_count > 1 {
        format!(" ({} rows like this in all)", ragged_count)
    } else {
        String::new()
    };
    Diagnostic::error(
        format!(
            "line {line} (data row {row}) has {fields} field{}, but the header has \
             {ncols}{others}",
            if fields == 1 { "" } else { "s" }
        ),
        Location::Data {
            path: path.to_path_buf(),
            row: Some(row),
            line: Some(line),
            column: None,
        },
    )
}

/// Text columns that began as numbers have not interned their early cells; one more pass over
/// the (in-memory) file fills them in. Columns that are text from the first cell never need it.
fn intern_numeric_prefixes(
    path: &Path,
    bytes: &[u8],
    cells: &Cells,
    builders: &mut [ColumnBuilder],
) -> Result<(), Diagnostic> {
    let reread: Vec<usize> = builders
        .iter()
        .enumerate()
        .filter(|(_, b)| b.numeric_prefix() > 0)
        .map(|(j, _)| j)
        .collect();
    if reread.is_empty() {
        return Ok(());
    }
    let mut record = ByteRecord::new();
    let mut rdr = reader(bytes, cells.delimiter);
    let mut row = 0usize;
    while rdr
        .read_byte_record(&mut record)
        .map_err(|e| csv_error(path, e, cells))?
    {
        let mut done = true;
        for &j in &reread {
            if row < builders[j].numeric_prefix() {
                builders[j].intern_at(row, &record[j], cells);
                done = false;
            }
        }
        if done {
            break;
        }
        row += 1;
    }
    Ok(())
}

/// Below this size one thread parses fast enough.
const PARALLEL_BYTES: usize = 8 << 20;

/// The common case of a large, clean file, parsed in one chunk of lines per thread: `None`
/// whenever the result could differ from the sequential reader's or a message is due (a quoted
/// field spanning lines, a ragged row, a column numeric in one chunk and text in another, text
/// columns with numeric cells), and the sequential reader then does it all, messages included.
/// Chunks merge in file order, so the table is the same for any number of threads.
fn parse_in_chunks(
    path: &Path,
    bytes: &[u8],
    chunks: usize,
    cells: &Cells,
) -> Option<(DataTable, usize)> {
    use rayon::prelude::*;

    let threads = chunks.max(1);
    let mut rdr = reader(bytes, cells.delimiter);
    let names = read_header(path, &mut rdr, cells).ok()?;
    let ncols = names.len();
    let start = usize::try_from(rdr.position().byte()).ok()?;
    let body = bytes.get(start..)?;
    let bounds = chunk_bounds(body, threads)?;
    let chunks: Vec<&[u8]> = bounds.windows(2).map(|w| &body[w[0]..w[1]]).collect();

    let parsed: Vec<Option<ParsedChunk>> = chunks
        .par_iter()
        .map(|chunk| parse_chunk(chunk, ncols, cells))
        .collect();
    let parsed: Vec<ParsedChunk> = parsed.into_iter().collect::<Option<_>>()?;
    let nrows: usize = parsed.iter().map(|c| c.rows).sum();
    let declared: usize = parsed.iter().map(|c| c.declared).sum();
    if nrows == 0 {
        return None;
    }
    let mut lines = RowLines::default();
    let (mut rows_before, mut lines_before) = (
        cells.rows_before,
        cells.lines_before + memchr::memchr_iter(b'\n', &bytes[..start]).count() as u64,
    );
    for chunk in &parsed {
        for &(row, line) in &chunk.lines.shifts {
            lines.record(rows_before + row, lines_before + line);
        }
        rows_before += chunk.rows;
        lines_before += chunk.lines.total;
    }

    let mut per_column: Vec<Vec<ColumnBuilder>> = (0..ncols).map(|_| Vec::new()).collect();
    for chunk in parsed {
        for (j, b) in chunk.builders.into_iter().enumerate() {
            per_column[j].push(b);
        }
    }
    let mut columns = Vec::with_capacity(ncols);
    for pieces in per_column {
        columns.push(merge_pieces(pieces)?.finish().0);
    }
    Some((
        DataTable {
            path: path.to_path_buf(),
            names,
            columns,
            nrows,
            stray_text: vec![None; ncols],
            notes: Vec::new(),
            lines: Some(lines),
            text_after_quote: None,
            first_row: 0,
        },
        declared,
    ))
}

/// Chunk boundaries in the body, each just after a newline, one chunk per thread at most.
fn chunk_bounds(body: &[u8], threads: usize) -> Option<Vec<usize>> {
    let mut bounds = vec![0];
    for k in 1..threads {
        let guess = (body.len() * k / threads).max(*bounds.last()?);
        match body[guess..].iter().position(|&b| b == b'\n') {
            Some(i) => bounds.push(guess + i + 1),
            None => break,
        }
    }
    bounds.push(body.len());
    bounds.dedup();
    Some(bounds)
}

/// One chunk of whole lines parsed on its own; `None` when it is for the sequential reader.
/// Each chunk also keeps where its records start (`ChunkLines`), so that every data row's file
/// line is known without a second pass.
fn parse_chunk(chunk: &[u8], ncols: usize, cells: &Cells) -> Option<ParsedChunk> {
    let mut rdr = ReaderBuilder::new()
        .has_headers(false)
        .flexible(true)
        .delimiter(cells.delimiter)
        .from_reader(chunk);
    let mut builders: Vec<ColumnBuilder> = (0..ncols).map(|_| ColumnBuilder::new()).collect();
    let mut record = ByteRecord::new();
    let (mut rows, mut declared) = (0usize, 0usize);
    let mut lines = ChunkLines::default();
    while rdr.read_byte_record(&mut record).ok()? {
        lines.record(
            rows + 1,
            record.position().map_or(0, |p| start_line(chunk, p)),
        );
        // A quoted field spanning lines (or a chunk boundary inside one, which leaves the
        // earlier chunk's last field open over its final newline) is for the sequential
        // reader: it shows as a line break inside a field.
        if record.len() != ncols || memchr::memchr2(b'\n', b'\r', record.as_slice()).is_some() {
            return None;
        }
        declared += declared_missing(&record, cells.codes);
        for (builder, cell) in builders.iter_mut().zip(record.iter()) {
            builder.push(rows, cell, cells);
        }
        rows += 1;
    }
    lines.total = memchr::memchr_iter(b'\n', chunk).count() as u64;
    Some(ParsedChunk {
        builders,
        rows,
        declared,
        lines,
    })
}

/// The line a record's first field is on. The csv reader's position of a record that follows
/// blank lines is the first blank line (it skips them as part of the record).
fn start_line(bytes: &[u8], position: &::csv::Position) -> u64 {
    let start = usize::try_from(position.byte()).unwrap_or(usize::MAX);
    let skipped = bytes
        .get(start..)
        .unwrap_or_default()
        .iter()
        .take_while(|&&b| b == b'\n' || b == b'\r')
        .filter(|&&b| b == b'\n')
        .count();
    position.line() + skipped as u64
}

/// One chunk of lines, parsed: its columns so far, rows, declared missing cells and lines.
struct ParsedChunk {
    builders: Vec<ColumnBuilder>,
    rows: usize,
    declared: usize,
    lines: ChunkLines,
}

/// Where a chunk's records start, in its own numbering (row and line 1 at the chunk's start):
/// the records whose line is not the previous record's plus one (a blank line or a header
/// before them), and the chunk's number of lines.
#[derive(Default)]
struct ChunkLines {
    shifts: Vec<(usize, u64)>,
    last: u64,
    total: u64,
}

impl ChunkLines {
    fn record(&mut self, row: usize, line: u64) {
        if line != self.last + 1 {
            self.shifts.push((row, line));
        }
        self.last = line;
    }
}

/// One column's chunks joined in order: all numeric, or all text without a single numeric cell
/// (so no stray-text message is due); `None` otherwise.
fn merge_pieces(pieces: Vec<ColumnBuilder>) -> Option<ColumnBuilder> {
    if pieces
        .iter()
        .all(|p| matches!(p, ColumnBuilder::Numeric(_)))
    {
        let mut all = Vec::new();
        for p in pieces {
            if let ColumnBuilder::Numeric(v) = p {
                all.extend_from_slice(&v);
            }
        }
        return Some(ColumnBuilder::Numeric(all));
    }
    let mut merged: Option<TextBuilder> = None;
    for p in pieces {
        let ColumnBuilder::Text(text) = p else {
            return None;
        };
        if text.numeric_prefix > 0 || text.numeric_cells > 0 {
            return None;
        }
        match &mut merged {
            None => merged = Some(text),
            Some(m) => {
                let remap: Vec<u32> = text.levels.iter().map(|l| m.intern(l)).collect();
                m.codes.extend(text.codes.iter().map(|&c| {
                    if c == MISSING_CODE {
                        c
                    } else {
                        remap[c as usize]
                    }
                }));
                m.text_cells += text.text_cells;
            }
        }
    }
    merged.map(ColumnBuilder::Text)
}

fn read_header(
    path: &Path,
    rdr: &mut ::csv::Reader<&[u8]>,
    cells: &Cells,
) -> Result<Vec<String>, Diagnostic> {
    let header = rdr
        .byte_headers()
        .map_err(|e| csv_error(path, e, cells))?
        .clone();
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
        // An unnamed first column is R's row names (`without_row_names`).
        if name.is_empty() && j > 0 {
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

/// An empty cell, R's `NA`, or one of the declared missing codes.
fn is_missing_cell(cell: &[u8], codes: &[Vec<u8>]) -> bool {
    cell.is_empty() || cell == b"NA" || codes.iter().any(|c| c == cell)
}

fn parse_number(cell: &[u8]) -> Option<f64> {
    if let Some(x) = plain_decimal(cell) {
        return Some(x);
    }
    // Rust's parser also takes "inf"/"nan" spellings; R's read.csv takes "Inf" and "NaN" too.
    // NaN is missing, as in R's model frames. An infinite value (`Inf`, or `1e999` overflowing)
    // fits nothing and would surface only as a misleading numerical failure, so it is not a
    // number here: the cell is reported as a stray one, with its row. A cell that starts with
    // any other letter (an id such as `P001`) cannot be a number.
    let first = *cell.first()?;
    if first.is_ascii_alphabetic() && !matches!(first, b'i' | b'I' | b'n' | b'N') {
        return None;
    }
    let x = std::str::from_utf8(cell).ok()?.parse::<f64>().ok()?;
    (!x.is_infinite()).then_some(x)
}

/// `[+-]digits[.digits]` whose digits, read as an integer m with d of them after the point, have
/// m ≤ 2⁵³ and d ≤ 22: then m and 10^d are exact doubles and m / 10^d is the correctly rounded
/// value (Clinger's fast path), the same double the standard parser returns, without its UTF-8
/// check and general algorithm. Anything else is `None` (left to the standard parser).
fn plain_decimal(cell: &[u8]) -> Option<f64> {
    const POW10: [f64; 23] = [
        1e0, 1e1, 1e2, 1e3, 1e4, 1e5, 1e6, 1e7, 1e8, 1e9, 1e10, 1e11, 1e12, 1e13, 1e14, 1e15, 1e16,
        1e17, 1e18, 1e19, 1e20, 1e21, 1e22,
    ];
    let (negative, digits) = match cell.first()? {
        b'-' => (true, &cell[1..]),
        b'+' => (false, &cell[1..]),
        _ => (false, cell),
    };
    let (mut mantissa, mut count, mut fraction, mut point) = (0u64, 0usize, 0usize, false);
    for &b in digits {
        match b {
            b'0'..=b'9' => {
                if count == 19 {
                    return None;
                }
                mantissa = mantissa * 10 + u64::from(b - b'0');
                count += 1;
                fraction += usize::from(point);
            }
            b'.' if !point => point = true,
            _ => return None,
        }
    }
    if count == 0 || mantissa > 1 << 53 || fraction > 22 {
        return None;
    }
    let x = mantissa as f64 / POW10[fraction];
    Some(if negative { -x } else { x })
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

    fn push(&mut self, row: usize, raw: &[u8], cells: &Cells) {
        let cell = raw.trim_ascii();
        match self {
            ColumnBuilder::Numeric(values) => {
                if is_missing_cell(cell, cells.codes) {
                    values.push(f64::NAN);
                } else if let Some(x) = cells.number(cell) {
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
                            line: None,
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
                if is_missing_cell(cell, cells.codes) {
                    text.codes.push(MISSING_CODE);
                    return;
                }
                if cells.number(cell).is_some() {
                    text.numeric_cells += 1;
                } else {
                    text.text_cells += 1;
                }
                let code = text.intern(cell);
                text.codes.push(code);
            }
        }
    }

    fn intern_at(&mut self, row: usize, raw: &[u8], cells: &Cells) {
        if let ColumnBuilder::Text(text) = self {
            let cell = raw.trim_ascii();
            if !is_missing_cell(cell, cells.codes) {
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
                let codes = super::remap_codes(text.codes, &remap);
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

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn text_after_a_closing_quote_is_found_and_nothing_else() {
        let found = |text: &str| text_after_closing_quote(text.as_bytes(), b',');
        for clean in [
            "a,b\n\"x\",1\n",
            "a,b\n\"x \"\"y\"\" z\",1\n",
            "a,b\n\"x\"  ,1\n\"y\"\n",
            "a,b\nx\"y,1\n",
            "a,b\n\"two\nlines\",1\n",
        ] {
            assert_eq!(found(clean), None, "{clean:?}");
        }
        assert_eq!(
            found("a,b\n1,\"x\"\n2,\"y\"z\n"),
            Some((1, 3, "\"y\"z".to_string()))
        );
        assert_eq!(
            found("a,b\n\"p,q\",\"r\"s\n"),
            Some((1, 2, "\"r\"s".to_string()))
        );
    }

    /// Equality with NaN equal to NaN (missing cells).
    fn assert_same(a: &DataTable, b: &DataTable, chunks: usize) {
        assert_eq!(a.names, b.names);
        assert_eq!(a.nrows, b.nrows);
        assert_eq!(a.stray_text, b.stray_text);
        for (x, y) in a.columns.iter().zip(&b.columns) {
            match (x, y) {
                (Column::Numeric(u), Column::Numeric(v)) => {
                    let bits = |w: &[f64]| w.iter().map(|f| f.to_bits()).collect::<Vec<_>>();
                    assert_eq!(bits(u), bits(v), "{chunks} chunks");
                }
                _ => assert_eq!(x, y, "{chunks} chunks"),
            }
        }
    }

    fn clean_file() -> Vec<u8> {
        let mut text = String::from("id,\"group\",x,y,note\n");
        for i in 0..500 {
            let x = if i % 37 == 0 {
                "NA".to_string()
            } else {
                format!("{}", (i as f64) * 0.25 - 3.0)
            };
            let note = if i % 11 == 0 { "" } else { "\"a, b\"" };
            text.push_str(&format!(
                "\"s{:03}\",g{},{x},{},{note}\n",
                i / 7,
                (i * 7919) % 13,
                i % 5
            ));
        }
        text.into_bytes()
    }

    #[test]
    fn chunked_parse_equals_sequential_parse() {
        let bytes = clean_file();
        let path = Path::new("t.csv");
        // Also with missing codes, one numeric (`-3`, in column x) and one text (`g1`).
        for codes in [Vec::new(), vec![b"-3".to_vec(), b"g1".to_vec()]] {
            let cells = Cells::sniff(path, &bytes, &codes);
            let (expected, declared) = parse_sequential(path, &bytes, &cells).unwrap();
            assert_eq!(declared > 0, !codes.is_empty());
            for chunks in [1, 2, 3, 7] {
                let (table, n) = parse_in_chunks(path, &bytes, chunks, &cells)
                    .unwrap_or_else(|| panic!("{chunks} chunks fell back"));
                assert_same(&table, &expected, chunks);
                assert_eq!(n, declared);
            }
        }
    }

    /// Declared codes are missing wherever they occur (after trimming), counted in a note; a
    /// code never seen is said too; `-999` is a number without the declaration.
    #[test]
    fn missing_codes_are_missing_and_counted() {
        let bytes = b"x,g\n1,a\n-999,b\n . ,c\n4,.\n".to_vec();
        let path = Path::new("t.csv");
        let plain = parse_csv(path, &bytes, &[]).unwrap();
        assert!(
            matches!(&plain.columns[0], Column::Text { .. }),
            "`.` spoils x"
        );
        let codes = vec![b"-999".to_vec(), b".".to_vec()];
        let table = parse_csv(path, &bytes, &codes).unwrap();
        let Column::Numeric(x) = &table.columns[0] else {
            panic!("x is numeric once `.` is missing");
        };
        assert_eq!(x[0], 1.0);
        assert!(x[1].is_nan() && x[2].is_nan());
        assert_eq!(x[3], 4.0);
        let Column::Text { codes: g, .. } = &table.columns[1] else {
            panic!("g is text");
        };
        assert_eq!(g[3], MISSING_CODE);
        assert_eq!(
            table.notes,
            ["3 cells equal to the missing codes `-999`, `.` read as missing"]
        );
        let none = parse_csv(path, &bytes, &[b"-1".to_vec()]).unwrap();
        assert_eq!(
            none.notes,
            ["0 cells equal to the missing code `-1` read as missing"]
        );
    }

    #[test]
    fn chunked_parse_declines_what_needs_the_sequential_reader() {
        let path = Path::new("t.csv");
        let mut bytes = clean_file();
        // A numeric column that turns text in a later chunk (a stray text cell to report).
        bytes.extend_from_slice(b"\"s999\",g1,oops,1,x\n");
        assert!(parse_in_chunks(path, &bytes, 3, &Cells::sniff(path, &bytes, &[])).is_none());
        // A quoted field spanning lines.
        let mut bytes = clean_file();
        bytes.extend_from_slice(b"\"s999\",g1,1,1,\"two\nlines\"\n");
        assert!(parse_in_chunks(path, &bytes, 3, &Cells::sniff(path, &bytes, &[])).is_none());
        // A ragged row.
        let mut bytes = clean_file();
        bytes.extend_from_slice(b"\"s999\",g1,1\n");
        assert!(parse_in_chunks(path, &bytes, 3, &Cells::sniff(path, &bytes, &[])).is_none());
        // Fields spanning lines throughout, so that chunk boundaries fall inside them.
        let mut bytes = b"id,note\n".to_vec();
        for i in 0..500 {
            bytes.extend_from_slice(format!("{i},\"line one\nline two\nthree\"\n").as_bytes());
        }
        for chunks in 2..9 {
            assert!(
                parse_in_chunks(path, &bytes, chunks, &Cells::sniff(path, &bytes, &[])).is_none(),
                "{chunks}"
            );
        }
    }

    /// Semicolons with decimal commas (R's `write.csv2`), tabs (by extension or by the header),
    /// and commas by default; the chunked reader reads each dialect as the sequential one does.
    #[test]
    fn delimiters_are_sniffed() {
        let csv2 = b"\"x\";\"y\";\"g\"\n249,56;0;\"a, b\"\n1;-2,5;\"c\"\n".to_vec();
        let table = parse_csv(Path::new("t.csv"), &csv2, &[]).unwrap();
        assert_eq!(table.names, ["x", "y", "g"]);
        assert_eq!(table.columns[0], Column::Numeric(vec![249.56, 1.0]));
        assert_eq!(table.columns[1], Column::Numeric(vec![0.0, -2.5]));
        assert!(table.notes[0].contains("semicolon-separated with decimal commas"));
        let tsv = b"x\ty\n1.5\t2\n3\t4\n".to_vec();
        for name in ["t.tsv", "t.txt"] {
            let table = parse_csv(Path::new(name), &tsv, &[]).unwrap();
            assert_eq!(table.columns[0], Column::Numeric(vec![1.5, 3.0]), "{name}");
            assert_eq!(table.notes, ["read as tab-separated"], "{name}");
        }
        // Commas in a quoted header name do not make a comma file of a semicolon one.
        let quoted = b"\"a,b,c\";\"d\"\n1;2\n".to_vec();
        assert_eq!(
            Cells::sniff(Path::new("t.csv"), &quoted, &[]).delimiter,
            b';'
        );
        let plain = clean_file();
        let cells = Cells::sniff(Path::new("t.csv"), &plain, &[]);
        assert_eq!((cells.delimiter, cells.decimal_comma), (b',', false));
        let mut big = b"x;y\n".to_vec();
        for i in 0..2000 {
            big.extend_from_slice(format!("{i},25;{}\n", i % 7).as_bytes());
        }
        let cells = Cells::sniff(Path::new("t.csv"), &big, &[]);
        let (sequential, _) = parse_sequential(Path::new("t.csv"), &big, &cells).unwrap();
        for chunks in [2, 3] {
            let (chunked, _) = parse_in_chunks(Path::new("t.csv"), &big, chunks, &cells).unwrap();
            assert_same(&chunked, &sequential, chunks);
        }
    }

    /// A large file read as two halves gives the bytes `fs::read` gives.
    #[test]
    fn large_files_read_in_halves_are_read_whole() {
        let path = std::env::temp_dir().join(format!("tandem-halves-{}.bin", std::process::id()));
        let bytes: Vec<u8> = (0..PARALLEL_BYTES + 12_345)
            .map(|i| (i * 31 % 251) as u8)
            .collect();
        std::fs::write(&path, &bytes).unwrap();
        let read = read_file(&path).unwrap();
        std::fs::remove_file(&path).unwrap();
        assert!(read == bytes);
    }

    /// The fast path for plain decimals returns the standard parser's double, bit for bit, and
    /// leaves everything else to it.
    #[test]
    fn plain_decimals_parse_as_the_standard_parser_does() {
        let mut cells: Vec<String> = [
            "0",
            "-0",
            "+0",
            "1.",
            ".5",
            "-.5",
            "+.5",
            ".",
            "-",
            "+",
            "",
            "1..2",
            "1.2.3",
            "0.1",
            "0.3",
            "-2.675",
            "9007199254740992",
            "9007199254740993",
            "18446744073709551615",
            "1234567890123456789",
            "12345678901234567890",
            "0.0000000000000000000001",
            "0.00000000000000000000001",
            "1e5",
            "1E-3",
            "inf",
            "-Infinity",
            "NaN",
            "P001",
            "1,5",
            " 1",
            "1 ",
            "0x10",
            "00012.50",
        ]
        .iter()
        .map(|s| s.to_string())
        .collect();
        let mut state = 42u64;
        let mut next = |n: u64| {
            state = state
                .wrapping_mul(6364136223846793005)
                .wrapping_add(1442695040888963407);
            (state >> 33) % n
        };
        for _ in 0..100_000 {
            let len = 1 + next(20) as usize;
            let point = next(len as u64 + 2) as usize;
            let mut cell = String::new();
            match next(3) {
                0 => cell.push('-'),
                1 => cell.push('+'),
                _ => {}
            }
            for i in 0..len {
                if i == point {
                    cell.push('.');
                }
                cell.push(char::from(b'0' + next(10) as u8));
            }
            cells.push(cell);
        }
        for cell in &cells {
            let standard = cell.parse::<f64>().ok().filter(|x| !x.is_infinite());
            let fast = parse_number(cell.as_bytes());
            assert_eq!(
                fast.map(f64::to_bits),
                standard.map(f64::to_bits),
                "{cell:?}: {fast:?} vs {standard:?}"
            );
        }
    }
}
