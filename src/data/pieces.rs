//! A CSV file too large for memory, read as a sequence of pieces of whole records (out of core).
//!
//! Owns cutting the byte stream at record boundaries (a line break inside a quoted field is not
//! one), numbering each piece's rows and lines as the file's, hashing the file's bytes as they
//! stream by (the compressed bytes of a `.gz`, as `read_data_with_sha256` does), and joining or
//! splitting parsed pieces (`DataTable::split_tail`, `DataTable::joined`) so that a caller can
//! keep a group's rows together. It must not know what the columns mean.

use std::io::Read;
use std::path::{Path, PathBuf};

use sha2::{Digest, Sha256};

use super::{Column, DataTable, MISSING_CODE};
use crate::diagnostics::{Diagnostic, Location};

/// A reader that hashes what passes through it.
struct Hashing<R> {
    inner: R,
    hasher: std::sync::Arc<std::sync::Mutex<Sha256>>,
}

impl<R: Read> Read for Hashing<R> {
    fn read(&mut self, buf: &mut [u8]) -> std::io::Result<usize> {
        let n = self.inner.read(buf)?;
        if let Ok(mut h) = self.hasher.lock() {
            h.update(&buf[..n]);
        }
        Ok(n)
    }
}

/// The raw bytes of one piece: the file's header line, then whole data records.
pub struct RawPiece {
    pub bytes: Vec<u8>,
    /// Data rows of the file before the piece's first record.
    pub rows_before: usize,
    /// Lines of the file before the piece's first record, the header not counted: each piece
    /// repeats the header as its own line 1.
    pub lines_before: u64,
    /// Data records in the piece (blank lines are not records).
    pub records: usize,
}

impl RawPiece {
    /// The piece as typed columns, and the number of cells read as declared missing codes.
    pub fn parse(&self, path: &Path, codes: &[Vec<u8>]) -> Result<(DataTable, usize), Diagnostic> {
        super::csv::parse_csv_piece(
            path,
            &self.bytes,
            codes,
            self.rows_before,
            self.lines_before,
        )
    }
}

pub struct CsvPieces {
    path: PathBuf,
    source: Box<dyn Read + Send>,
    hasher: std::sync::Arc<std::sync::Mutex<Sha256>>,
    header: Vec<u8>,
    pending: Vec<u8>,
    rows_before: usize,
    lines_before: u64,
    eof: bool,
    piece_bytes: usize,
}

fn read_error(path: &Path, e: std::io::Error) -> Diagnostic {
    Diagnostic::error(
        format!("cannot read data file `{}`: {e}", path.display()),
        Location::File(path.to_path_buf()),
    )
}

impl CsvPieces {
    /// Open `path` (plain or `.gz`) to be read in pieces of about `piece_bytes` bytes.
    pub fn open(path: &Path, piece_bytes: usize) -> Result<Self, Diagnostic> {
        let file = std::fs::File::open(path).map_err(|e| read_error(path, e))?;
        let hasher = std::sync::Arc::new(std::sync::Mutex::new(Sha256::new()));
        let hashing = Hashing {
            inner: file,
            hasher: hasher.clone(),
        };
        let gz = path
            .extension()
            .is_some_and(|e| e.eq_ignore_ascii_case("gz"));
        let source: Box<dyn Read + Send> = if gz {
            Box::new(flate2::read::MultiGzDecoder::new(std::io::BufReader::new(
                hashing,
            )))
        } else {
            Box::new(hashing)
        };
        let mut pieces = CsvPieces {
            path: path.to_path_buf(),
            source,
            hasher,
            header: Vec::new(),
            pending: Vec::new(),
            rows_before: 0,
            lines_before: 0,
            eof: false,
            piece_bytes: piece_bytes.max(1),
        };
        // The header is the first record.
        loop {
            if let Some(end) = piece_end(&pieces.pending, 0) {
                pieces.header = pieces.pending.drain(..end).collect();
                // Each piece repeats the header as its line 1: count the lines after it.
                pieces.lines_before =
                    (memchr::memchr_iter(b'\n', &pieces.header).count() as u64).saturating_sub(1);
                break;
            }
            if pieces.eof {
                pieces.header = std::mem::take(&mut pieces.pending);
                pieces.header.push(b'\n');
                break;
            }
            pieces.fill(64 << 10)?;
        }
        Ok(pieces)
    }

    fn fill(&mut self, at_least: usize) -> Result<(), Diagnostic> {
        let target = self.pending.len() + at_least;
        let mut buffer = vec![0u8; 1 << 20];
        while self.pending.len() < target && !self.eof {
            match self.source.read(&mut buffer) {
                Ok(0) => self.eof = true,
                Ok(n) => self.pending.extend_from_slice(&buffer[..n]),
                Err(e) if e.kind() == std::io::ErrorKind::Interrupted => {}
                Err(e) => return Err(read_error(&self.path, e)),
            }
        }
        Ok(())
    }

    /// The next piece, or `None` at the end of the file.
    pub fn next_raw(&mut self) -> Result<Option<RawPiece>, Diagnostic> {
        let mut want = self.piece_bytes;
        loop {
            if self.pending.len() < want && !self.eof {
                let more = want - self.pending.len();
                self.fill(more)?;
            }
            let end = match piece_end(&self.pending, self.piece_bytes) {
                Some(end) => end,
                None if self.eof => self.pending.len(),
                // One record longer than a piece: read on.
                None => {
                    want = want.saturating_mul(2).max(self.pending.len() + 1);
                    continue;
                }
            };
            let body: Vec<u8> = self.pending.drain(..end).collect();
            let records = count_records(&body);
            if records == 0 {
                // Blank lines only: nothing to parse, but they count as lines.
                self.lines_before += memchr::memchr_iter(b'\n', &body).count() as u64;
                if self.eof && self.pending.is_empty() {
                    return Ok(None);
                }
                continue;
            }
            let mut bytes = Vec::with_capacity(self.header.len() + body.len());
            bytes.extend_from_slice(&self.header);
            bytes.extend_from_slice(&body);
            let piece = RawPiece {
                bytes,
                rows_before: self.rows_before,
                lines_before: self.lines_before,
                records,
            };
            self.rows_before += records;
            self.lines_before += memchr::memchr_iter(b'\n', &body).count() as u64;
            return Ok(Some(piece));
        }
    }

    /// The SHA-256 of the file's bytes, once every piece has been read.
    pub fn sha256(&self) -> String {
        use std::fmt::Write;
        let digest = self
            .hasher
            .lock()
            .map(|h| h.clone().finalize())
            .unwrap_or_default();
        let mut hex = String::with_capacity(64);
        for byte in digest {
            let _ = write!(hex, "{byte:02x}");
        }
        hex
    }
}

/// Where a piece of about `want` bytes ends: the last record boundary within `want` bytes, or
/// the first after them when a record is longer (`want` 0: the end of the first record).
/// `bytes` start at a record boundary, and a line break ends a record outside quotes only (a
/// doubled quote inside a quoted field toggles twice, so parity says whether it is inside one).
fn piece_end(bytes: &[u8], want: usize) -> Option<usize> {
    let mut quoted = false;
    let mut last = None;
    for i in memchr::memchr2_iter(b'"', b'\n', bytes) {
        if bytes[i] == b'"' {
            quoted = !quoted;
        } else if !quoted {
            if i + 1 > want && last.is_some() {
                break;
            }
            last = Some(i + 1);
            if i + 1 >= want {
                break;
            }
        }
    }
    last
}

/// Records in whole records' bytes: line breaks outside quotes that end a non-blank line, plus
/// a last line without a break.
fn count_records(bytes: &[u8]) -> usize {
    let (mut quoted, mut start, mut count) = (false, 0usize, 0usize);
    for i in memchr::memchr2_iter(b'"', b'\n', bytes) {
        if bytes[i] == b'"' {
            quoted = !quoted;
        } else if !quoted {
            if !is_blank(&bytes[start..i]) {
                count += 1;
            }
            start = i + 1;
        }
    }
    if !is_blank(&bytes[start..]) {
        count += 1;
    }
    count
}

fn is_blank(line: &[u8]) -> bool {
    line.iter().all(|&b| b == b'\r')
}

impl DataTable {
    /// Splits off the rows from `at` on (`self` keeps the rows before).
    pub fn split_tail(&mut self, at: usize) -> DataTable {
        let columns = self
            .columns
            .iter_mut()
            .map(|c| match c {
                Column::Numeric(v) => Column::Numeric(v.split_off(at)),
                Column::Text { codes, levels } => Column::Text {
                    codes: codes.split_off(at),
                    levels: levels.clone(),
                },
            })
            .collect();
        let tail = DataTable {
            path: self.path.clone(),
            names: self.names.clone(),
            columns,
            nrows: self.nrows - at,
            stray_text: self.stray_text.clone(),
            notes: Vec::new(),
            lines: self.lines.clone(),
            text_after_quote: None,
            first_row: self.first_row + at,
        };
        self.nrows = at;
        tail
    }

    /// `self`'s rows followed by `next`'s (the next rows of the same file, same columns): text
    /// levels are joined in byte order, as the reader orders them.
    pub fn joined(self, next: DataTable) -> DataTable {
        let lines = match (self.lines, next.lines) {
            (Some(mut a), Some(b)) => {
                let first = next.first_row + 1;
                a.record(first, b.line(first));
                for &(row, line) in &b.breaks {
                    a.record(row, line);
                }
                Some(a)
            }
            _ => None,
        };
        let columns = self
            .columns
            .into_iter()
            .zip(next.columns)
            .map(|pair| match pair {
                (Column::Numeric(mut a), Column::Numeric(b)) => {
                    a.extend_from_slice(&b);
                    Column::Numeric(a)
                }
                (a, b) => join_text(a, b),
            })
            .collect();
        let stray_text = self
            .stray_text
            .into_iter()
            .zip(next.stray_text)
            .map(|(a, b)| a.or(b))
            .collect();
        DataTable {
            path: self.path,
            names: self.names,
            columns,
            nrows: self.nrows + next.nrows,
            stray_text,
            notes: self.notes,
            lines,
            text_after_quote: self.text_after_quote.or(next.text_after_quote),
            first_row: self.first_row,
        }
    }
}

/// Two pieces of one column of which at least one is text: as text, levels in byte order
/// (numbers spelled as the reader would have kept them is beyond this; the caller refuses
/// columns whose kind differs between pieces before joining matters).
fn join_text(a: Column, b: Column) -> Column {
    let parts = [a, b];
    let mut levels: Vec<String> = Vec::new();
    for part in &parts {
        if let Column::Text { levels: l, .. } = part {
            levels.extend(l.iter().cloned());
        }
    }
    levels.sort();
    levels.dedup();
    let mut codes = Vec::new();
    for part in parts {
        match part {
            Column::Text {
                codes: c,
                levels: l,
            } => {
                let remap: Vec<u32> = l
                    .iter()
                    .map(|x| levels.binary_search(x).unwrap_or(0) as u32)
                    .collect();
                codes.extend(c.iter().map(|&c| {
                    if c == MISSING_CODE {
                        c
                    } else {
                        remap[c as usize]
                    }
                }));
            }
            Column::Numeric(v) => {
                // Only missing cells can meet a text column here (see above).
                codes.extend(v.iter().map(|_| MISSING_CODE));
            }
        }
    }
    Column::Text { codes, levels }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn records_are_cut_outside_quotes() {
        let bytes = b"a,\"x\ny\"\nb,c\n\n";
        assert_eq!(piece_end(bytes, 0), Some(8));
        assert_eq!(piece_end(bytes, 100), Some(13));
        assert_eq!(count_records(bytes), 2);
        assert_eq!(piece_end(bytes, 9), Some(8));
        assert_eq!(piece_end(bytes, 3), Some(8));
    }
}
