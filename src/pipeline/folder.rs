//! `fit` over a file or a folder: a folder's files scheduled (small ones concurrently, big-data
//! and bootstrap files alone), their fits handed back in name order. Owns the scheduling
//! policy; must not change what a single file's fit gives, or render.

use std::path::{Path, PathBuf};

use super::figures::figure_stem;
use super::files::{data_path, load, model_files};
use super::{fit_file, FileFit, FitOptions};
use crate::check::{interval_work, IntervalWork};
use crate::diagnostics::Diagnostic;
use crate::report::{self};

/// A path fitted: its model files' fits in name order, and whether it was a folder (whose
/// report is one document ending with a summary of its files).
#[derive(Debug)]
pub struct PathFit {
    pub folder: bool,
    pub files: Vec<FileFit>,
}

/// Fit one model file, or every model file in a folder. An error when the path names no model
/// file.
pub fn fit_path(path: &Path, options: &FitOptions) -> Result<PathFit, Diagnostic> {
    let files = model_files(path)?;
    // A figure folder that cannot be made is said per fit, as a warning (`write_figures`).
    if let Some(dir) = &options.plot {
        let _ = std::fs::create_dir_all(dir);
    }
    let folder = path.is_dir();
    let folder_options;
    let options = if folder {
        folder_options = FitOptions {
            folder: Some(path.to_path_buf()),
            ..options.clone()
        };
        &folder_options
    } else {
        options
    };
    Ok(PathFit {
        folder,
        files: fit_files(&files, options),
    })
}

/// A data file at least this large is read by one model file at a time, so that a folder never
/// holds several copies of a big table at once (the CSV reader already uses every thread on it).
const LARGE_DATA_BYTES: u64 = 64 << 20;

/// How a folder's file is scheduled: with the other small files at once, or alone with the whole
/// thread pool.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
enum Schedule {
    Concurrent,
    Alone,
}

/// Fit a folder's files, in parallel where it pays, handing the outcomes back in the files'
/// order so that the printed output is byte-for-byte the sequential one.
///
/// Policy (what "where it pays" means):
/// - Small files (most of a model library: milliseconds to a second each, mostly sequential
///   optimizer work) run concurrently, one per pool thread; their inner parallel work (design
///   chunks, CSV chunks) shares the same pool, and every parallel stage is seeded per chunk, so
///   the digits do not depend on which thread runs what.
/// - A file runs alone, with the whole pool, when its data file is large (≥ 64 MiB: reading it
///   once per concurrent file would multiply the memory, and its own reading and design passes
///   already use every thread), when it bootstraps (its replicates already fill the pool, and its
///   progress bar needs the terminal to itself), or when it draws Monte Carlo with a progress bar.
///   The alone files run one after another, after the concurrent batch.
/// - The whole folder runs in sequence with `--timings` (stage wall times measured under
///   contention would mislead) and when `--plot` would write two files' figures under the same
///   name (the later file's figures win, as in a sequential run).
fn fit_files(files: &[PathBuf], options: &FitOptions) -> Vec<FileFit> {
    use rayon::prelude::*;
    if files.len() < 2 || options.timings || plot_names_collide(files, options) {
        return files.iter().map(|f| fit_file(f, options)).collect();
    }
    let schedule: Vec<Schedule> = files.iter().map(|f| schedule(f, options)).collect();
    let mut results: Vec<Option<FileFit>> = (0..files.len())
        .into_par_iter()
        .map(|k| {
            // `par_iter` over indices keeps each result in its file's slot.
            (schedule[k] == Schedule::Concurrent).then(|| fit_file(&files[k], options))
        })
        .collect();
    for (k, slot) in results.iter_mut().enumerate() {
        if slot.is_none() {
            *slot = Some(fit_file(&files[k], options));
        }
    }
    results.into_iter().flatten().collect()
}

/// Whether a folder's file runs concurrently with others or alone (see `fit_files`). A file that
/// cannot be read or parsed fails at once, so it runs concurrently; its message is the same.
fn schedule(file: &Path, options: &FitOptions) -> Schedule {
    let Ok(model) = load(file) else {
        return Schedule::Concurrent;
    };
    let large = data_path(&model, options.data.as_deref())
        .and_then(|p| std::fs::metadata(p).ok())
        .is_some_and(|m| m.len() >= LARGE_DATA_BYTES);
    let work = interval_work(&model.ast);
    let alone = large
        || work == Some(IntervalWork::Refits)
        || (options.progress && work == Some(IntervalWork::Draws));
    if alone {
        Schedule::Alone
    } else {
        Schedule::Concurrent
    }
}

/// Whether two files would write figures under the same names (`--plot`): figures are named by
/// the model file's stem.
fn plot_names_collide(files: &[PathBuf], options: &FitOptions) -> bool {
    if options.plot.is_none() {
        return false;
    }
    // Compared as the figures' file names will have them, after unsafe characters are replaced.
    let mut stems: Vec<String> = files
        .iter()
        .map(|f| report::figures::file_safe(&figure_stem(f, options.folder.as_deref())))
        .collect();
    stems.sort();
    stems.windows(2).any(|w| w[0] == w[1])
}
