//! `fit` over a file or a folder: a folder's files scheduled (small ones concurrently, big-data
//! and bootstrap files alone), their outputs joined in name order as one document. Owns the
//! scheduling policy; must not change what a single file's fit prints.

use std::path::{Path, PathBuf};

use super::figures::figure_stem;
use super::files::{data_path, load, model_files, render_plain};
use super::{fit_file_reports, FitOptions, Format, Outcome, VaryReports};
use crate::report::{self, FitReport};
use crate::syntax::ast::Statement;

/// Fit one model file, or every model file in a folder.
pub fn fit_path(path: &Path, options: &FitOptions) -> Outcome {
    let files = match model_files(path) {
        Ok(files) => files,
        Err(d) => return Outcome::failure(render_plain(&[d])),
    };
    let mut total = Outcome {
        success: true,
        ..Outcome::default()
    };
    // A figure folder that cannot be made is said per fit, as a warning (`write_figures`).
    if let Some(dir) = &options.plot {
        let _ = std::fs::create_dir_all(dir);
    }
    let folder_options;
    let options = if path.is_dir() {
        folder_options = FitOptions {
            folder: Some(path.to_path_buf()),
            ..options.clone()
        };
        &folder_options
    } else {
        options
    };
    let mut all_reports = Vec::new();
    let folder_json = path.is_dir() && options.format == Format::Json;
    let mut documents = Vec::new();
    for (k, (outcome, reports)) in fit_files(&files, options).into_iter().enumerate() {
        if k > 0 && options.format != Format::Json {
            total.stdout.push('\n');
        }
        total.success &= outcome.success;
        if folder_json {
            documents.push(folder_entry(&files[k], &outcome));
        } else {
            total.stdout.push_str(&outcome.stdout);
        }
        total.stderr.push_str(&outcome.stderr);
        all_reports.extend(reports.into_iter().map(|(_, r)| r));
    }
    if folder_json {
        let document = serde_json::json!({ "models": documents });
        total.stdout = serde_json::to_string_pretty(&document).unwrap_or_default();
        total.stdout.push('\n');
    }
    // A folder ends with its files' headline numbers in one table.
    if path.is_dir() {
        let reports: Vec<&FitReport> = all_reports.iter().collect();
        let summary = match options.format {
            Format::Text => report::summary_text(&reports),
            Format::Markdown => report::summary_markdown(&reports),
            Format::Json | Format::Latex => String::new(),
        };
        if !summary.is_empty() {
            total.stdout.push('\n');
            total.stdout.push_str(&summary);
        }
    }
    total
}

/// One model file of a folder in the folder's JSON document: its path, whether it ran through,
/// its report (the single-file document, `null` when there is none) and what it wrote to stderr
/// (errors and warnings, as rendered there).
fn folder_entry(file: &Path, outcome: &Outcome) -> serde_json::Value {
    let report: serde_json::Value = if outcome.stdout.trim().is_empty() {
        serde_json::Value::Null
    } else {
        serde_json::from_str(&outcome.stdout).unwrap_or(serde_json::Value::Null)
    };
    serde_json::json!({
        "file": file.display().to_string(),
        "status": if outcome.success { "ok" } else { "failed" },
        "report": report,
        "messages": outcome.stderr,
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
fn fit_files(files: &[PathBuf], options: &FitOptions) -> Vec<(Outcome, VaryReports)> {
    use rayon::prelude::*;
    if files.len() < 2 || options.timings || plot_names_collide(files, options) {
        return files.iter().map(|f| fit_file_reports(f, options)).collect();
    }
    let schedule: Vec<Schedule> = files.iter().map(|f| schedule(f, options)).collect();
    let mut results: Vec<Option<(Outcome, VaryReports)>> = (0..files.len())
        .into_par_iter()
        .map(|k| {
            // `par_iter` over indices keeps each result in its file's slot.
            (schedule[k] == Schedule::Concurrent).then(|| fit_file_reports(&files[k], options))
        })
        .collect();
    for (k, slot) in results.iter_mut().enumerate() {
        if slot.is_none() {
            *slot = Some(fit_file_reports(&files[k], options));
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
    let draws = model.ast.statements.iter().find_map(|s| match s {
        Statement::Interval(spec) => Some(spec.method.name.as_str()),
        _ => None,
    });
    let alone = large
        || matches!(draws, Some("bootstrap" | "parametric_bootstrap"))
        || (options.progress && draws == Some("monte_carlo"));
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
