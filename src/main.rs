//! The `tandem` command line: a thin shell over the library.
//!
//! Owns argument parsing, printing and exit codes. It must not contain statistics or model
//! logic: everything it does is a call into `tandem::cli`, which renders what
//! `tandem::pipeline` returns.

use std::io::{IsTerminal, Write};
use std::path::PathBuf;
use std::process::ExitCode;

use clap::{Parser, Subcommand, ValueEnum};

use tandem::cli::{self, Outcome};
use tandem::pipeline::{self, FitOptions};

#[derive(Parser)]
#[command(
    name = "tandem",
    version,
    about = "Multilevel, dyadic and within-person mediation models"
)]
struct Cli {
    #[command(subcommand)]
    command: Command,
}

#[derive(Subcommand)]
enum Command {
    /// Parse and check model files against their data (exit 0 when every file is clean).
    Check {
        /// Model files (`*.tandem`) or folders of them.
        #[arg(required = true)]
        files: Vec<PathBuf>,
        /// Use this CSV instead of the file's `data` statement.
        #[arg(long)]
        data: Option<PathBuf>,
        /// Read the data file out of core (in pieces, two passes) even if it fits in memory.
        #[arg(long)]
        out_of_core: bool,
    },
    /// Compare models fitted to the same rows by likelihood-ratio tests (lme4's `anova(m1, m2)`):
    /// REML fits are refitted by ML first, as lme4 does.
    Compare {
        /// Two or more model files (`*.tandem`) reading the same data.
        #[arg(required = true, num_args = 2..)]
        files: Vec<PathBuf>,
        /// Keep REML fits as they are (lme4's `refit = FALSE`): their REML criteria are compared.
        #[arg(long)]
        no_refit: bool,
        /// Output format.
        #[arg(long, value_enum, default_value = "text")]
        format: FormatArg,
        /// Print the comparison even when a fit did not converge (exit 0).
        #[arg(long)]
        report_anyway: bool,
    },
    /// Fit a model file, or every model file in a folder.
    Fit {
        /// A model file (`*.tandem`) or a folder of them.
        path: PathBuf,
        /// Use this CSV instead of the file's `data` statement.
        #[arg(long)]
        data: Option<PathBuf>,
        /// Override the file's `estimate` statement.
        #[arg(long, value_enum)]
        method: Option<MethodArg>,
        /// Output format.
        #[arg(long, value_enum, default_value = "text")]
        format: FormatArg,
        /// Override the number of Monte Carlo or bootstrap draws (2 to 10⁹; bootstrap at most
        /// 10⁶).
        #[arg(long, value_parser = clap::value_parser!(u64).range(2..=1_000_000_000))]
        draws: Option<u64>,
        /// Override the seed of Monte Carlo or bootstrap draws.
        #[arg(long)]
        seed: Option<u64>,
        /// Restrict a `vary` statement to one value, e.g. `--vary span=1`.
        #[arg(long, value_name = "NAME=VALUE")]
        vary: Vec<String>,
        /// Write figures (SVG) into this folder.
        #[arg(long, value_name = "DIR")]
        plot: Option<PathBuf>,
        /// Add the random effects' conditional modes (lme4's `ranef`) and conditional SDs to the
        /// report: a table per grouping factor (text, Markdown, LaTeX), `ranef` in JSON.
        #[arg(long)]
        ranef: bool,
        /// Standard errors of fixed effects: model-based, or cluster-robust CR2.
        #[arg(long, value_enum, default_value = "model")]
        se: SeArg,
        /// Print the report even when the optimizer did not converge (exit 0).
        #[arg(long)]
        report_anyway: bool,
        /// Add R's significance stars after the text report's fixed-effect p-values.
        #[arg(long)]
        stars: bool,
        /// Print the wall time of each stage (read, check, prepare, design, fit, ...) on stderr.
        #[arg(long)]
        timings: bool,
        /// Read the data file out of core (in pieces, two passes, memory for a few pieces and
        /// the groups) even if it fits in memory; a CSV too large for memory is read so anyway.
        #[arg(long)]
        out_of_core: bool,
    },
}

#[derive(Clone, Copy, ValueEnum)]
enum MethodArg {
    Ml,
    Reml,
}

#[derive(Clone, Copy, ValueEnum)]
enum FormatArg {
    Text,
    Json,
    Markdown,
    Latex,
}

impl From<FormatArg> for pipeline::Format {
    fn from(format: FormatArg) -> Self {
        match format {
            FormatArg::Text => pipeline::Format::Text,
            FormatArg::Json => pipeline::Format::Json,
            FormatArg::Markdown => pipeline::Format::Markdown,
            FormatArg::Latex => pipeline::Format::Latex,
        }
    }
}

#[derive(Clone, Copy, ValueEnum)]
enum SeArg {
    Model,
    Cr2,
}

/// glibc serves an allocation above its mmap threshold (128 KiB, raised only when such a block
/// is freed) with a fresh mapping, page-faulted in and unmapped again on free. A crossed design
/// allocates dense blocks of ~10 MB per deviance evaluation (InstEval: 1,156²), so that cost a
/// third of a second of system time per fit, and whether it happened depended on which block
/// happened to be freed first. Fixed thresholds keep blocks below 24 MiB (a dense block of
/// 1,700²) in the heap, reused, while a data column of millions of rows stays a mapping of its
/// own: at 64 MiB the 3.35 M-row facial design's columns fragmented the heap (+80 MB peak).
#[cfg(all(target_os = "linux", target_env = "gnu"))]
fn keep_large_blocks_in_the_heap() {
    // SAFETY: mallopt only sets allocator parameters; called before any other thread exists.
    unsafe {
        libc::mallopt(libc::M_MMAP_THRESHOLD, 24 << 20);
        libc::mallopt(libc::M_TRIM_THRESHOLD, 64 << 20);
    }
}

#[cfg(not(all(target_os = "linux", target_env = "gnu")))]
fn keep_large_blocks_in_the_heap() {}

fn main() -> ExitCode {
    keep_large_blocks_in_the_heap();
    let cli = Cli::parse();
    match cli.command {
        Command::Check {
            files,
            data,
            out_of_core,
        } => run_check(&files, data, out_of_core),
        Command::Compare {
            files,
            no_refit,
            format,
            report_anyway,
        } => {
            let options = pipeline::CompareOptions { refit: !no_refit };
            emit(cli::compare_paths(
                &files,
                &options,
                format.into(),
                report_anyway,
            ))
        }
        Command::Fit {
            path,
            data,
            method,
            format,
            draws,
            seed,
            vary,
            plot,
            ranef,
            se,
            report_anyway,
            timings,
            stars,
            out_of_core,
        } => {
            let options = FitOptions {
                data,
                method: method.map(|m| match m {
                    MethodArg::Ml => tandem::syntax::ast::Method::Ml,
                    MethodArg::Reml => tandem::syntax::ast::Method::Reml,
                }),
                format: format.into(),
                draws,
                seed,
                vary,
                plot,
                folder: None,
                ranef,
                robust_se: matches!(se, SeArg::Cr2),
                report_anyway,
                progress: std::io::stderr().is_terminal(),
                timings,
                stars,
                out_of_core,
            };
            emit(cli::fit_path(&path, &options))
        }
    }
}

fn run_check(files: &[PathBuf], data: Option<PathBuf>, out_of_core: bool) -> ExitCode {
    let mut failed = false;
    for outcome in cli::check_paths(files, data.as_deref(), out_of_core) {
        failed |= !outcome.success;
        failed |= !print_outcome(&outcome);
    }
    if failed {
        ExitCode::FAILURE
    } else {
        ExitCode::SUCCESS
    }
}

fn emit(outcome: Outcome) -> ExitCode {
    if print_outcome(&outcome) && outcome.success {
        ExitCode::SUCCESS
    } else {
        ExitCode::FAILURE
    }
}

/// Prints the outcome; false when the report could not be written (a full disk, `/dev/full`),
/// which is said on standard error and makes the exit status 1: a truncated report must not
/// look like a finished one. A closed pipe (`tandem fit … | head`) fails quietly.
fn print_outcome(outcome: &Outcome) -> bool {
    let mut stdout = std::io::stdout().lock();
    let written = stdout
        .write_all(outcome.stdout.as_bytes())
        .and_then(|()| stdout.flush());
    let mut stderr = std::io::stderr().lock();
    if !outcome.stderr.is_empty() {
        let _ = stderr.write_all(outcome.stderr.as_bytes());
    }
    match written {
        Ok(()) => true,
        Err(e) if e.kind() == std::io::ErrorKind::BrokenPipe => false,
        Err(e) => {
            let _ = writeln!(
                stderr,
                "error: the report could not be written to standard output: {e}"
            );
            false
        }
    }
}
