//! The prepared pieces of a file read out of core, kept on disk between the two passes: the
//! columns the second pass needs, each piece in a file of its own in a private temporary
//! folder that is removed when the `Spill` is dropped.
//!
//! Owns the piece format (the machine's own byte order, since only this process reads it: row
//! count, then per column its name, kind and values; text as its levels and a code per row; the
//! rows' data-file rows). It must not interpret the columns.

use std::io::{BufReader, BufWriter, Read, Write};
use std::path::{Path, PathBuf};

use crate::data::Column;
use crate::diagnostics::{Diagnostic, Location};

/// One prepared piece: named columns over its rows, and each row's 1-based data-file row.
pub struct SpilledPiece {
    pub names: Vec<String>,
    pub columns: Vec<Column>,
    pub source_rows: Vec<usize>,
}

pub struct Spill {
    dir: PathBuf,
    pieces: usize,
}

fn io_error(what: &str, path: &Path, e: std::io::Error) -> Diagnostic {
    Diagnostic::error(
        format!(
            "cannot {what} `{}` (prepared rows kept on disk between the two passes over a file \
             read out of core): {e}",
            path.display()
        ),
        Location::File(path.to_path_buf()),
    )
    .with_hint("set TMPDIR to a folder with room for about the size of the data file")
}

impl Spill {
    pub fn new() -> Result<Self, Diagnostic> {
        let base = std::env::temp_dir();
        let stamp = std::time::SystemTime::now()
            .duration_since(std::time::UNIX_EPOCH)
            .map_or(0, |d| d.as_nanos());
        let dir = base.join(format!("tandem-{}-{stamp}", std::process::id()));
        std::fs::create_dir_all(&dir).map_err(|e| io_error("create", &dir, e))?;
        Ok(Spill { dir, pieces: 0 })
    }

    pub fn len(&self) -> usize {
        self.pieces
    }

    fn path(&self, piece: usize) -> PathBuf {
        self.dir.join(format!("piece-{piece:06}.bin"))
    }

    /// A path for the next piece (pieces are numbered in file order; write them with `write`).
    pub fn next_path(&mut self) -> PathBuf {
        self.pieces += 1;
        self.path(self.pieces - 1)
    }

    pub fn read(&self, piece: usize) -> Result<SpilledPiece, Diagnostic> {
        let path = self.path(piece);
        let file = std::fs::File::open(&path).map_err(|e| io_error("read", &path, e))?;
        read_piece(&mut BufReader::with_capacity(1 << 20, file))
            .map_err(|e| io_error("read", &path, e))
    }
}

impl Drop for Spill {
    fn drop(&mut self) {
        let _ = std::fs::remove_dir_all(&self.dir);
    }
}

pub fn write(path: &Path, piece: &SpilledPiece) -> Result<(), Diagnostic> {
    let file = std::fs::File::create(path).map_err(|e| io_error("write", path, e))?;
    let mut out = BufWriter::with_capacity(1 << 20, file);
    write_piece(&mut out, piece)
        .and_then(|_| out.flush())
        .map_err(|e| io_error("write", path, e))
}

fn put_u64(out: &mut impl Write, x: u64) -> std::io::Result<()> {
    out.write_all(&x.to_ne_bytes())
}

fn put_str(out: &mut impl Write, s: &str) -> std::io::Result<()> {
    put_u64(out, s.len() as u64)?;
    out.write_all(s.as_bytes())
}

fn write_piece(out: &mut impl Write, piece: &SpilledPiece) -> std::io::Result<()> {
    let n = piece.source_rows.len();
    put_u64(out, n as u64)?;
    put_u64(out, piece.columns.len() as u64)?;
    for (name, column) in piece.names.iter().zip(&piece.columns) {
        put_str(out, name)?;
        match column {
            Column::Numeric(v) => {
                out.write_all(&[0])?;
                out.write_all(bytemuck::cast_slice(v))?;
            }
            Column::Text { codes, levels } => {
                out.write_all(&[1])?;
                put_u64(out, levels.len() as u64)?;
                for level in levels {
                    put_str(out, level)?;
                }
                out.write_all(bytemuck::cast_slice(codes))?;
            }
        }
    }
    // Rows as offsets from the first (a piece has far fewer than 2³² rows).
    let first = piece.source_rows.first().copied().unwrap_or(0);
    put_u64(out, first as u64)?;
    let offsets: Vec<u32> = piece
        .source_rows
        .iter()
        .map(|&r| (r - first) as u32)
        .collect();
    out.write_all(bytemuck::cast_slice(&offsets))
}

fn get_u64(input: &mut impl Read) -> std::io::Result<u64> {
    let mut b = [0u8; 8];
    input.read_exact(&mut b)?;
    Ok(u64::from_ne_bytes(b))
}

fn get_str(input: &mut impl Read) -> std::io::Result<String> {
    let len = get_u64(input)? as usize;
    let mut b = vec![0u8; len];
    input.read_exact(&mut b)?;
    String::from_utf8(b).map_err(|e| std::io::Error::new(std::io::ErrorKind::InvalidData, e))
}

fn read_piece(input: &mut impl Read) -> std::io::Result<SpilledPiece> {
    let n = get_u64(input)? as usize;
    let ncols = get_u64(input)? as usize;
    let (mut names, mut columns) = (Vec::with_capacity(ncols), Vec::with_capacity(ncols));
    for _ in 0..ncols {
        names.push(get_str(input)?);
        let mut kind = [0u8; 1];
        input.read_exact(&mut kind)?;
        if kind[0] == 0 {
            let mut values = vec![0f64; n];
            input.read_exact(bytemuck::cast_slice_mut(&mut values))?;
            columns.push(Column::Numeric(values));
        } else {
            let nlevels = get_u64(input)? as usize;
            let levels = (0..nlevels)
                .map(|_| get_str(input))
                .collect::<std::io::Result<Vec<_>>>()?;
            let mut codes = vec![0u32; n];
            input.read_exact(bytemuck::cast_slice_mut(&mut codes))?;
            columns.push(Column::Text { codes, levels });
        }
    }
    let first = get_u64(input)? as usize;
    let mut offsets = vec![0u32; n];
    input.read_exact(bytemuck::cast_slice_mut(&mut offsets))?;
    let source_rows = offsets.iter().map(|&o| first + o as usize).collect();
    Ok(SpilledPiece {
        names,
        columns,
        source_rows,
    })
}
