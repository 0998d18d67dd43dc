//! Fitting a data file too large for memory ("out of core"), in two passes over pieces of the
//! file, with memory proportional to a few pieces, the groups and the parameters:
//!
//! 1. **collect**: each piece of whole records is parsed and prepared (`prepare_with`, in
//!    parallel with other pieces), with `center`/`scale`/`within`/`between` recording their sums
//!    instead of their final values; rows of one `group` are joined into one piece when a shift
//!    needs them (the file must keep each group's rows together; checked); the sums, drop counts,
//!    warnings and text levels are merged in file order, and the columns the design needs are
//!    spilled to a temporary folder (`spill`).
//! 2. **design**: each spilled piece is read back, the `let`s that waited for summaries are
//!    computed with the merged sums, text columns are recoded to the whole file's levels, and
//!    its rows are summed into the design's sufficient statistics (`design::PieceDesign`),
//!    merged in file order.
//!
//! Piece boundaries depend on the file's bytes only, and every merge runs in file order, so the
//! result does not depend on the number of threads. Owns the passes and their bookkeeping; it
//! must not fit anything, and the decisions of what two passes can do are `plan`'s.

mod plan;
mod spill;

use std::cell::RefCell;
use std::collections::{BTreeSet, HashMap, HashSet};
use std::path::{Path, PathBuf};

use rayon::prelude::*;

pub use plan::{plan, Plan};

use crate::check::{CheckOptions, Schema};
use crate::data::{missing_codes, Column, CsvPieces, DataTable, MISSING_CODE};
use crate::design::{self, Design, LevelsSeen, PieceDesign};
use crate::diagnostics::{Diagnostic, Location};
use crate::model::preparation::Preparation;
use crate::model::ModelSpec;
use crate::prepare::{self, AnalysisFrame, DropReport, GroupKey, PieceOptions, SampleSummaries};
use crate::syntax::ast::ModelFile;
use spill::{Spill, SpilledPiece};

/// Sets the size of the pieces a file is read in out of core (bytes; for tests and
/// experiments).
pub const PIECE_BYTES_VARIABLE: &str = "TANDEM_PIECE_BYTES";
const PIECE_BYTES: usize = 32 << 20;

/// The size of the pieces: `TANDEM_PIECE_BYTES`, else 32 MB.
pub fn piece_bytes() -> usize {
    std::env::var(PIECE_BYTES_VARIABLE)
        .ok()
        .and_then(|v| v.trim().parse::<usize>().ok())
        .filter(|&b| b > 0)
        .unwrap_or(PIECE_BYTES)
}

/// Where the rows come from.
pub struct Source<'a> {
    pub path: &'a Path,
    /// The `data` statement's missing codes.
    pub missing: &'a [String],
    /// The first piece's columns, which the model was checked against.
    pub schema: &'a Schema,
    pub check: CheckOptions,
    /// About how many bytes of the file each piece holds (`piece_bytes()`).
    pub piece_bytes: usize,
}

/// The file's first piece, parsed: what the model is checked against before the passes.
pub fn first_piece(path: &Path, missing: &[String]) -> Result<DataTable, Diagnostic> {
    // Every piece is checked against it again; a megabyte tells the kinds of most files.
    let mut pieces = CsvPieces::open(path, piece_bytes().min(1 << 20))?;
    match pieces.next_raw()? {
        Some(raw) => raw.parse(path, &missing_codes(missing)).map(|(t, _)| t),
        None => Err(Diagnostic::error(
            format!("data file `{}` has a header but no rows", path.display()),
            Location::File(path.to_path_buf()),
        )),
    }
}

/// Warnings from many pieces: one per place in the model file, with the number of pieces that
/// raised it.
#[derive(Default)]
struct Warnings(Vec<(Diagnostic, usize)>);

impl Warnings {
    fn add(&mut self, d: Diagnostic) {
        // The same warning from another piece differs at most in its counts and rows.
        let key = |w: &Diagnostic| -> String {
            w.message.chars().filter(|c| !c.is_ascii_digit()).collect()
        };
        let same = |w: &Diagnostic| {
            w.location == d.location && w.severity == d.severity && key(w) == key(&d)
        };
        match self.0.iter_mut().find(|(w, _)| same(w)) {
            Some((_, count)) => *count += 1,
            None => self.0.push((d, 1)),
        }
    }

    fn into_vec(self) -> Vec<Diagnostic> {
        self.0
            .into_iter()
            .map(|(mut d, count)| {
                if count > 1 {
                    d.message.push_str(&format!(
                        " (said of the first of {count} pieces of the file that raise it; it is \
                         read out of core)"
                    ));
                }
                d
            })
            .collect()
    }
}

/// What the first pass found.
pub struct Collected {
    spill: Spill,
    summaries: SampleSummaries,
    drops: DropReport,
    warnings: Warnings,
    /// Per kept text column: every level of every piece.
    levels: HashMap<String, BTreeSet<String>>,
    notes: Vec<String>,
    sha256: String,
}

/// The design of the whole file and what the report says about its rows.
pub struct OutOfCore {
    pub design: Design,
    pub drops: DropReport,
    pub warnings: Vec<Diagnostic>,
    /// Rows after preparation.
    pub rows: usize,
    pub notes: Vec<String>,
    pub sha256: String,
    /// Per numeric prepared column: its smallest and largest finite value.
    pub ranges: HashMap<String, (f64, f64)>,
}

/// A value of the `group` column, to tell groups apart across pieces.
fn group_key(column: &Column, row: usize) -> Option<GroupKey> {
    match column {
        Column::Numeric(v) => {
            (!v[row].is_nan()).then(|| GroupKey::Number((v[row] + 0.0).to_bits()))
        }
        Column::Text { codes, levels } => (codes[row] != MISSING_CODE)
            .then(|| GroupKey::Text(levels[codes[row] as usize].clone())),
    }
}

fn same_group(column: &Column, a: usize, b: usize) -> bool {
    match column {
        Column::Numeric(v) => {
            (v[a] + 0.0).to_bits() == (v[b] + 0.0).to_bits() || (v[a].is_nan() && v[b].is_nan())
        }
        Column::Text { codes, .. } => codes[a] == codes[b],
    }
}

/// The first row of the table's last run of one group.
fn last_run_start(column: &Column, nrows: usize) -> usize {
    let mut start = nrows.saturating_sub(1);
    while start > 0 && same_group(column, start - 1, nrows - 1) {
        start -= 1;
    }
    start
}

/// Refuses a group whose rows were already finished in an earlier piece.
fn check_together(
    table: &DataTable,
    group: &str,
    finished: &mut HashSet<GroupKey>,
) -> Result<(), Diagnostic> {
    let Some(column) = table.column(group) else {
        return Ok(());
    };
    let mut here: Vec<(GroupKey, usize)> = Vec::new();
    for row in 0..table.nrows {
        if row > 0 && same_group(column, row - 1, row) {
            continue;
        }
        if let Some(key) = group_key(column, row) {
            if finished.contains(&key) {
                let data_row = table.first_row + row + 1;
                let line = table.lines.as_ref().map(|l| l.line(data_row));
                let name = match &key {
                    GroupKey::Text(t) => t.clone(),
                    GroupKey::Number(bits) => f64::from_bits(*bits).to_string(),
                };
                return Err(Diagnostic::error(
                    format!(
                        "out of core, the rows of each `{group}` must be together in the data \
                         file (a shift works within a group, and the file is read in pieces): \
                         `{}` appears again at {}, after rows of other groups",
                        crate::diagnostics::visible(&name),
                        crate::data::row_place(table.lines.as_ref(), data_row)
                    ),
                    Location::Data {
                        path: table.path.clone(),
                        row: Some(data_row),
                        line,
                        column: Some(group.to_string()),
                    },
                )
                .with_hint(format!(
                    "sort the file by `{group}` (keeping the row order within each group), or \
                     fit it in memory"
                )));
            }
            here.push((key, row));
        }
    }
    finished.extend(here.into_iter().map(|(k, _)| k));
    Ok(())
}

/// The piece's columns against the columns the model was checked with.
fn check_piece_columns(
    file: &ModelFile,
    table: &DataTable,
    source: &Source,
    plan: &Plan,
) -> Result<(), Vec<Diagnostic>> {
    let piece = Schema::from_table(table);
    if !piece.stray.is_empty() || !piece.damaged.is_empty() {
        if let Err(found) = crate::check::check_with(file, &piece, source.check) {
            let errors: Vec<Diagnostic> = found.into_iter().filter(Diagnostic::is_error).collect();
            if !errors.is_empty() {
                return Err(errors);
            }
        }
    }
    for ((name, kind), (_, first)) in piece.columns.iter().zip(&source.schema.columns) {
        if kind == first || !plan.used.contains(name) {
            continue;
        }
        let spelled = |k: &crate::check::ColumnKind| match k {
            crate::check::ColumnKind::Numeric => "numbers",
            crate::check::ColumnKind::Text => "text",
        };
        let data_row = table.first_row + 1;
        return Err(vec![Diagnostic::error(
            format!(
                "out of core, the column `{name}` is {} in the file's first rows but {} in the \
                 rows from {} on: a column read in pieces must be numbers throughout or text \
                 throughout",
                spelled(first),
                spelled(kind),
                crate::data::row_place(table.lines.as_ref(), data_row)
            ),
            Location::Data {
                path: table.path.clone(),
                row: Some(data_row),
                line: table.lines.as_ref().map(|l| l.line(data_row)),
                column: Some(name.clone()),
            },
        )
        .with_hint(
            "fit the file in memory (a sample, or a part split by group), or fix the column",
        )]);
    }
    Ok(())
}

fn merge_drops(into: &mut DropReport, piece: &DropReport) {
    into.rows_read += piece.rows_read;
    for (k, step) in piece.steps.iter().enumerate() {
        match into.steps.get_mut(k) {
            Some(mine) if mine.reason == step.reason => mine.rows += step.rows,
            _ => into.steps.push(step.clone()),
        }
    }
}

/// Pass 1: parse and prepare every piece, collect the summaries and spill what the design needs.
pub fn collect(
    file: &ModelFile,
    source: &Source,
    plan: &Plan,
    vary: &[(String, f64)],
) -> Result<Collected, Vec<Diagnostic>> {
    let reader = CsvPieces::open(source.path, source.piece_bytes).map_err(|d| vec![d])?;
    let batch = rayon::current_num_threads().max(2);
    // The file is read (and hashed) by a thread of its own, a few pieces ahead of the parsing.
    let (sender, receiver) = std::sync::mpsc::sync_channel(batch);
    std::thread::scope(|scope| {
        let reading = scope.spawn(move || {
            let mut reader = reader;
            loop {
                let next = reader.next_raw();
                let last = !matches!(next, Ok(Some(_)));
                if sender.send(next).is_err() || last {
                    break;
                }
            }
            reader.sha256()
        });
        let result = collect_pieces(
            file,
            source,
            plan,
            vary,
            &mut || receiver.recv().unwrap_or(Ok(None)),
            batch,
        );
        // A reader blocked on a full channel stops when the receiver is gone.
        drop(receiver);
        let sha256 = reading.join().unwrap_or_default();
        result.map(|collected| Collected {
            sha256,
            ..collected
        })
    })
}

fn collect_pieces(
    file: &ModelFile,
    source: &Source,
    plan: &Plan,
    vary: &[(String, f64)],
    next: &mut dyn FnMut() -> Result<Option<crate::data::RawPiece>, Diagnostic>,
    batch: usize,
) -> Result<Collected, Vec<Diagnostic>> {
    let mut pass = FirstPass {
        spill: Spill::new().map_err(|d| vec![d])?,
        summaries: SampleSummaries::collecting(),
        drops: DropReport::default(),
        warnings: Warnings::default(),
        levels: HashMap::new(),
        notes: None,
        declared_total: 0,
        carry: None,
        finished: HashSet::new(),
    };
    let codes = missing_codes(source.missing);
    loop {
        let mut raws = Vec::with_capacity(batch);
        while raws.len() < batch {
            match next().map_err(|d| vec![d])? {
                Some(raw) => raws.push(raw),
                None => break,
            }
        }
        let done = raws.len() < batch;
        let parsed: Vec<Result<(DataTable, usize), Diagnostic>> = raws
            .par_iter()
            .map(|raw| raw.parse(source.path, &codes))
            .collect();
        drop(raws);
        let tables = pass.whole_group_tables(parsed, done, file, source, plan)?;
        let prepared: Vec<Result<(AnalysisFrame, SampleSummaries), Vec<Diagnostic>>> = tables
            .par_iter()
            .map(|table| prepare_collecting(&plan.preparation, table, vary))
            .collect();
        drop(tables);
        let mut to_spill = Vec::new();
        for result in prepared {
            let (frame, sums) = result?;
            let piece = pass.add_prepared(frame, &sums, plan)?;
            to_spill.push((pass.spill.next_path(), piece));
        }
        to_spill
            .par_iter()
            .map(|(path, piece)| spill::write(path, piece))
            .collect::<Result<Vec<()>, Diagnostic>>()
            .map_err(|d| vec![d])?;
        if done {
            break;
        }
    }
    pass.finish(source)
}

/// The first pass's running state, merged in file order.
struct FirstPass {
    spill: Spill,
    summaries: SampleSummaries,
    drops: DropReport,
    warnings: Warnings,
    levels: HashMap<String, BTreeSet<String>>,
    /// The first piece's notes.
    notes: Option<Vec<String>>,
    /// Cells equal to a declared missing code.
    declared_total: usize,
    /// The rows of a group that may go on in the next piece.
    carry: Option<DataTable>,
    /// The groups whose rows are complete.
    finished: HashSet<GroupKey>,
}

impl FirstPass {
    /// A batch of parsed pieces as tables of whole groups: each checked against the model's
    /// columns, and when a shift needs a group's rows together, its last group carried to the
    /// next piece (the last batch, `done`, keeps it).
    fn whole_group_tables(
        &mut self,
        parsed: Vec<Result<(DataTable, usize), Diagnostic>>,
        done: bool,
        file: &ModelFile,
        source: &Source,
        plan: &Plan,
    ) -> Result<Vec<DataTable>, Vec<Diagnostic>> {
        let mut tables = Vec::new();
        for result in parsed {
            let (table, declared) = result.map_err(|d| vec![d])?;
            self.declared_total += declared;
            check_piece_columns(file, &table, source, plan)?;
            self.notes.get_or_insert_with(|| table.notes.clone());
            let mut table = match self.carry.take() {
                Some(before) => before.joined(table),
                None => table,
            };
            if let Some(group) = &plan.whole_groups {
                let Some(column) = table.column(group) else {
                    tables.push(table);
                    continue;
                };
                let start = last_run_start(column, table.nrows);
                if start == 0 {
                    // One group so far: it may go on in the next piece.
                    self.carry = Some(table);
                    continue;
                }
                self.carry = Some(table.split_tail(start));
                check_together(&table, group, &mut self.finished).map_err(|d| vec![d])?;
            }
            tables.push(table);
        }
        if done {
            if let Some(last) = self.carry.take() {
                if let Some(group) = &plan.whole_groups {
                    check_together(&last, group, &mut self.finished).map_err(|d| vec![d])?;
                }
                tables.push(last);
            }
        }
        Ok(tables)
    }

    /// Merge a prepared piece's sums, drops, warnings and text levels; the columns to spill.
    fn add_prepared(
        &mut self,
        frame: AnalysisFrame,
        sums: &SampleSummaries,
        plan: &Plan,
    ) -> Result<SpilledPiece, Vec<Diagnostic>> {
        self.summaries.merge(sums);
        merge_drops(&mut self.drops, &frame.drops);
        for w in &frame.warnings {
            let provisional = matches!(w.location, Location::Source(at)
                if plan.deferred_spans.iter().any(|s| s.start <= at.start && at.end <= s.end));
            if !provisional {
                self.warnings.add(w.clone());
            }
        }
        let piece = project(frame, plan);
        for (name, column) in piece.names.iter().zip(&piece.columns) {
            if let Column::Text { levels: l, .. } = column {
                // Numbers made levels are in numeric order, not byte order.
                if !plan.numeric_factors.contains(name) && l.windows(2).any(|w| w[0] >= w[1]) {
                    return Err(vec![Diagnostic::error(
                        format!(
                            "out of core, the text column `{name}` must have its levels in \
                             the data file's order (a `let` made its own order)"
                        ),
                        Location::None,
                    )
                    .with_hint(
                        "fit the file in memory, or compute the column in the data file",
                    )]);
                }
                self.levels
                    .entry(name.clone())
                    .or_default()
                    .extend(l.iter().cloned());
            }
        }
        Ok(piece)
    }

    /// What the first pass found, refused when the file or its preparation left no rows.
    fn finish(self, source: &Source) -> Result<Collected, Vec<Diagnostic>> {
        let path = source.path;
        if self.spill.len() == 0 {
            return Err(vec![Diagnostic::error(
                format!("data file `{}` has a header but no rows", path.display()),
                Location::File(path.to_path_buf()),
            )]);
        }
        let drops = self.drops;
        if drops.rows_read == drops.rows_dropped() {
            return Err(vec![Diagnostic::error(
                format!(
                    "preparation leaves no rows: the `keep` statements drop all {} rows of `{}`",
                    drops.rows_read,
                    path.display()
                ),
                Location::File(path.to_path_buf()),
            )]);
        }
        let notes = collected_notes(
            self.notes.unwrap_or_default(),
            source,
            self.declared_total,
            self.spill.len(),
        );
        Ok(Collected {
            spill: self.spill,
            summaries: self.summaries.applied(),
            drops,
            warnings: self.warnings,
            levels: self.levels,
            notes,
            sha256: String::new(),
        })
    }
}

/// A piece prepared with `center`/`scale`/`within`/`between` recording their sums.
fn prepare_collecting(
    preparation: &Preparation,
    table: &DataTable,
    vary: &[(String, f64)],
) -> Result<(AnalysisFrame, SampleSummaries), Vec<Diagnostic>> {
    let sums = RefCell::new(SampleSummaries::collecting());
    let options = PieceOptions {
        summaries: Some(&sums),
        allow_empty: true,
        skip_factors: true,
        ..PieceOptions::default()
    };
    let frame = prepare::prepare_with(preparation, table, vary, &options)?;
    Ok((frame, sums.into_inner()))
}

/// The report's notes on reading the file: the first piece's, the missing codes counted over
/// every piece, and how the file was read.
fn collected_notes(
    mut notes: Vec<String>,
    source: &Source,
    declared_total: usize,
    pieces: usize,
) -> Vec<String> {
    if source
        .path
        .extension()
        .is_some_and(|e| e.eq_ignore_ascii_case("gz"))
    {
        notes.insert(0, "read from gzip-compressed text".into());
    }
    if !source.missing.is_empty() {
        notes.retain(|n| !n.contains("read as missing"));
        notes.push(format!(
            "{declared_total} cell{} equal to the missing code{} read as missing",
            if declared_total == 1 { "" } else { "s" },
            if source.missing.len() == 1 { "" } else { "s" },
        ));
    }
    notes.push(format!(
        "read out of core, in {pieces} pieces and two passes; the checks that need all of a \
         group's rows at once (a random slope constant within its groups, groups of one row, \
         classes of one row) were not run"
    ));
    notes
}

/// The columns the second pass needs, moved out of the frame.
fn project(frame: AnalysisFrame, plan: &Plan) -> SpilledPiece {
    let AnalysisFrame {
        names: frame_names,
        columns: frame_columns,
        source_rows,
        ..
    } = frame;
    let mut slots: Vec<Option<Column>> = frame_columns.into_iter().map(Some).collect();
    let (mut names, mut columns) = (Vec::new(), Vec::new());
    for name in &plan.kept {
        if let Some(i) = frame_names.iter().position(|n| n == name) {
            if let Some(column) = slots[i].take() {
                names.push(name.clone());
                columns.push(column);
            }
        }
    }
    SpilledPiece {
        names,
        columns,
        source_rows,
    }
}

/// Each kept text column's levels in the order the whole file in memory would give them: byte
/// order (numeric order for numbers a `factor` made text), then the `factor` statements.
fn whole_file_levels(
    levels: HashMap<String, BTreeSet<String>>,
    plan: &Plan,
) -> Result<HashMap<String, Vec<String>>, Vec<Diagnostic>> {
    let mut out = HashMap::new();
    for (name, set) in levels {
        let mut list: Vec<String> = set.into_iter().collect();
        if plan.numeric_factors.contains(&name) {
            list.sort_by(|a, b| {
                let (x, y) = (a.parse::<f64>(), b.parse::<f64>());
                match (x, y) {
                    (Ok(x), Ok(y)) => x.total_cmp(&y),
                    _ => a.cmp(b),
                }
            });
        }
        for factor in plan.preparation.factors().filter(|f| f.column == name) {
            list = prepare::factor_levels(list, factor)?;
        }
        out.insert(name, list);
    }
    Ok(out)
}

/// Each numeric column's smallest and largest finite value.
fn numeric_ranges(frame: &AnalysisFrame) -> Vec<(String, (f64, f64))> {
    frame
        .names
        .iter()
        .zip(&frame.columns)
        .filter_map(|(name, column)| match column {
            Column::Numeric(v) => Some((
                name.clone(),
                v.iter()
                    .filter(|x| x.is_finite())
                    .fold((f64::INFINITY, f64::NEG_INFINITY), |(lo, hi), &x| {
                        (lo.min(x), hi.max(x))
                    }),
            )),
            Column::Text { .. } => None,
        })
        .collect()
}

/// Pass 2: the deferred `let`s and the design's sums, piece by piece.
pub fn design(
    spec: &ModelSpec,
    path: &Path,
    plan: &Plan,
    collected: Collected,
    vary: &[(String, f64)],
) -> Result<OutOfCore, Vec<Diagnostic>> {
    let Collected {
        spill,
        summaries,
        drops,
        mut warnings,
        levels,
        notes,
        sha256,
    } = collected;
    let reload = Reload {
        path: path.to_path_buf(),
        plan,
        spill: &spill,
        summaries: &summaries,
        levels: whole_file_levels(levels, plan)?,
        vary,
    };
    let batch = rayon::current_num_threads().max(2);
    let batches: Vec<std::ops::Range<usize>> = (0..spill.len())
        .step_by(batch)
        .map(|s| s..(s + batch).min(spill.len()))
        .collect();

    let template = reload.load(0)?;
    let seen = levels_seen(spec, &template, &reload, &batches)?;
    let mut pieces = PieceDesign::new(spec, &template, &seen)?;
    drop(template);
    let mut rows = 0usize;
    let mut ranges: HashMap<String, (f64, f64)> = HashMap::new();
    for range in batches {
        let frames = reload.load_batch(range)?;
        sum_batch(&mut pieces, &frames, &mut rows, &mut ranges, &mut warnings)?;
    }
    ranges.retain(|_, (lo, hi)| lo <= hi);
    let design = pieces.finish()?;
    Ok(OutOfCore {
        design,
        drops,
        warnings: warnings.into_vec(),
        rows,
        notes,
        sha256,
        ranges,
    })
}

/// Sum a batch of pieces into the design in file order, counting their rows, widening the
/// ranges of their numeric columns and collecting their warnings.
fn sum_batch(
    pieces: &mut PieceDesign<'_>,
    frames: &[AnalysisFrame],
    rows: &mut usize,
    ranges: &mut HashMap<String, (f64, f64)>,
    warnings: &mut Warnings,
) -> Result<(), Vec<Diagnostic>> {
    // The per-row work in parallel; numbering the groups across pieces costs per level.
    let shared: &PieceDesign<'_> = pieces;
    let local: Vec<_> = frames
        .par_iter()
        .map(|frame| {
            shared
                .local_groups(frame)
                .map(|g| (g, numeric_ranges(frame)))
        })
        .collect();
    let mut groupings = Vec::with_capacity(frames.len());
    for (frame, local) in frames.iter().zip(local) {
        let (local, piece_ranges) = local?;
        groupings.push(pieces.number_groups(local));
        *rows += frame.nrows;
        frame.warnings.iter().for_each(|w| warnings.add(w.clone()));
        widen_ranges(ranges, piece_ranges);
    }
    let shared: &PieceDesign<'_> = pieces;
    let sums: Vec<_> = frames
        .par_iter()
        .zip(&groupings)
        .map(|(frame, g)| shared.sum_piece(frame, g))
        .collect();
    for (s, frame) in sums.into_iter().zip(frames) {
        pieces.add(s, frame.nrows);
    }
    Ok(())
}

/// Widen the file's ranges of numeric columns by a piece's.
fn widen_ranges(ranges: &mut HashMap<String, (f64, f64)>, piece: Vec<(String, (f64, f64))>) {
    for (name, (lo, hi)) in piece {
        let entry = ranges
            .entry(name)
            .or_insert((f64::INFINITY, f64::NEG_INFINITY));
        entry.0 = entry.0.min(lo);
        entry.1 = entry.1.max(hi);
    }
}

/// The levels each equation's observations have over all pieces, when a fixed term has a text
/// column (otherwise nothing to drop: empty).
fn levels_seen(
    spec: &ModelSpec,
    template: &AnalysisFrame,
    reload: &Reload,
    batches: &[std::ops::Range<usize>],
) -> Result<LevelsSeen, Vec<Diagnostic>> {
    let has_text_indicators = spec.equations.iter().any(|eq| {
        eq.terms.iter().any(|t| {
            t.variables
                .iter()
                .any(|v| matches!(template.column(v), Some(Column::Text { .. })))
        })
    });
    let mut seen: LevelsSeen = Vec::new();
    if has_text_indicators {
        for range in batches {
            let frames = reload.load_batch(range.clone())?;
            let pieces: Vec<Result<LevelsSeen, Vec<Diagnostic>>> = frames
                .par_iter()
                .map(|f| design::levels_seen(spec, f))
                .collect();
            for piece in pieces {
                design::merge_levels_seen(&mut seen, piece?);
            }
        }
    }
    Ok(seen)
}

/// Reading the spilled pieces back as frames of the second pass.
struct Reload<'a> {
    path: PathBuf,
    plan: &'a Plan,
    spill: &'a Spill,
    summaries: &'a SampleSummaries,
    /// Per kept text column: the whole file's levels.
    levels: HashMap<String, Vec<String>>,
    vary: &'a [(String, f64)],
}

impl Reload<'_> {
    /// Spilled piece `k` with the deferred `let`s computed from the merged summaries and its
    /// text columns recoded to the whole file's levels.
    fn load(&self, k: usize) -> Result<AnalysisFrame, Vec<Diagnostic>> {
        let piece = self.spill.read(k).map_err(|d| vec![d])?;
        let ncols = piece.names.len();
        let nrows = piece.source_rows.len();
        let table = DataTable {
            path: self.path.clone(),
            names: piece.names,
            columns: piece.columns,
            nrows,
            stray_text: vec![None; ncols],
            notes: Vec::new(),
            lines: None,
            text_after_quote: None,
            first_row: 0,
        };
        let sums = RefCell::new(self.summaries.clone());
        let options = PieceOptions {
            summaries: Some(&sums),
            allow_empty: true,
            only_lets: Some(&self.plan.deferred),
            skip_factors: true,
            source_rows: Some(&piece.source_rows),
        };
        let mut frame = prepare::prepare_with(&self.plan.preparation, &table, self.vary, &options)?;
        for (name, column) in frame.names.iter().zip(frame.columns.iter_mut()) {
            if let Column::Text { codes, levels: own } = column {
                let Some(all) = self.levels.get(name) else {
                    return Err(vec![Diagnostic::error(
                        format!(
                            "out of core, `{name}` is text computed from a summary of all rows; \
                             such a `let` must give numbers"
                        ),
                        Location::None,
                    )]);
                };
                recode(codes, own, all);
            }
        }
        Ok(frame)
    }

    /// The pieces of `range`, loaded in parallel.
    fn load_batch(
        &self,
        range: std::ops::Range<usize>,
    ) -> Result<Vec<AnalysisFrame>, Vec<Diagnostic>> {
        range
            .into_par_iter()
            .map(|k| self.load(k))
            .collect::<Vec<_>>()
            .into_iter()
            .collect()
    }
}

/// Recode a text column from its piece's levels (`own`) to the whole file's (`all`).
fn recode(codes: &mut [u32], own: &mut Vec<String>, all: &[String]) {
    let position: HashMap<&str, u32> = all
        .iter()
        .enumerate()
        .map(|(i, l)| (l.as_str(), i as u32))
        .collect();
    let remap: Vec<u32> = own
        .iter()
        .map(|l| position.get(l.as_str()).copied().unwrap_or(MISSING_CODE))
        .collect();
    for c in codes.iter_mut().filter(|c| **c != MISSING_CODE) {
        *c = remap[*c as usize];
    }
    *own = all.to_vec();
}
