//! End-to-end fits at scale, through the built `tandem` binary exactly as a user runs it
//! (`tandem fit FILE --timings --format json`, one subprocess per case):
//!
//! - `insteval`: `models/lme4/insteval.tandem` (73,421 rows; 2,972 students crossed with 1,128
//!   lecturers, and 28 department × service groups);
//! - `facial_default`: `models/seeds/facial_dynamics.tandem --vary span=1` on the full-size facial
//!   design from `examples/generate_facial` with its default truth (3.34 M rows);
//! - `facial_ar1`: `facial_default` with `residual ar1 within session` (benches/facial_ar1.tandem;
//!   issue 16: it converges within 2× of the independent-residual fit's time);
//! - `facial_boundary`: the same design with `--truth boundary` (patient intercept variances near
//!   zero, lag slopes correlated ±0.97) and another seed;
//! - `facial_default_parquet`: `facial_default` read from Parquet (the CSV converted once, by
//!   the `parquet` crate's writer); its read stage is printed next to the CSV's;
//! - `monte_carlo_1e8`: lavaan's mediation model with `--draws 100000000` (10⁸ Monte Carlo draws
//!   of `ab := a*b`, summarised as a stream: its peak memory is the point);
//! - `facial_ml`, `facial_x9_out_of_core`, `facial_x9_in_memory`: the default facial design by
//!   ML in memory, then the same design written 9 times with relabelled patients and sessions
//!   (30 M rows, 1.43 GB; `generate_facial --copies 9`) by ML out of core (`--out-of-core`) and
//!   in memory. The run ends with their comparison: time per row, peak memory, and the 9×
//!   fits' log-likelihood over 9 times the 1× one's and largest relative difference of an
//!   estimate (the optimum is the same).
//!
//! The facial CSVs (about 140 MB each, 1.43 GB for the 9× copy) are generated once into
//! `target/bench-data/`.
//! Per case it prints the wall time end to end, tandem's stage times, the peak resident memory
//! (`VmHWM` of the subprocess, polled from /proc every 10 ms, so growth in the last few ms can be
//! missed), and the fit's `converged`, log-likelihood and number of deviance evaluations.
//!
//! ```sh
//! cargo bench --bench scale                      # all cases
//! cargo bench --bench scale -- facial            # the cases whose name contains `facial`
//! TANDEM_BENCH_TIMEOUT=120 cargo bench --bench scale   # kill a case after 120 s
//! TANDEM_BENCH_SKIP=insteval cargo bench --bench scale # skip cases (comma-separated names)
//! TANDEM_BENCH_LME4=1 cargo bench --bench scale -- insteval   # also time lme4 (needs Rscript)
//! ```

#[path = "../examples/generate_facial.rs"]
#[allow(dead_code)]
mod generate_facial;

use std::io::Read;
use std::path::{Path, PathBuf};
use std::process::{Command, Stdio};
use std::thread;
use std::time::{Duration, Instant};

use generate_facial::Truth;
use serde_json::Value;

struct Case {
    name: &'static str,
    model: &'static str,
    /// The facial design to generate and pass with `--data`.
    facial: Option<Truth>,
    /// Pass the facial design as Parquet instead of CSV.
    parquet: bool,
    vary: Option<&'static str>,
    /// `--draws`, for a case about Monte Carlo draws.
    draws: Option<&'static str>,
    /// Copies of the facial design in the file (relabelled): 1 is the design itself.
    copies: usize,
    /// More arguments (`--method ml`, `--out-of-core`).
    extra: &'static [&'static str],
}

const CASES: [Case; 9] = [
    Case {
        name: "insteval",
        model: "models/lme4/insteval.tandem",
        facial: None,
        parquet: false,
        vary: None,
        draws: None,
        copies: 1,
        extra: &[],
    },
    Case {
        name: "facial_default",
        model: "models/seeds/facial_dynamics.tandem",
        facial: Some(Truth::Default),
        parquet: false,
        vary: Some("span=1"),
        draws: None,
        copies: 1,
        extra: &[],
    },
    Case {
        name: "facial_ar1",
        model: "benches/facial_ar1.tandem",
        facial: Some(Truth::Default),
        parquet: false,
        vary: Some("span=1"),
        draws: None,
        copies: 1,
        extra: &[],
    },
    Case {
        name: "facial_boundary",
        model: "models/seeds/facial_dynamics.tandem",
        facial: Some(Truth::Boundary),
        parquet: false,
        vary: Some("span=1"),
        draws: None,
        copies: 1,
        extra: &[],
    },
    Case {
        name: "facial_default_parquet",
        model: "models/seeds/facial_dynamics.tandem",
        facial: Some(Truth::Default),
        parquet: true,
        vary: Some("span=1"),
        draws: None,
        copies: 1,
        extra: &[],
    },
    Case {
        name: "monte_carlo_1e8",
        model: "tests/fixtures/formats/mediation_mc.tandem",
        facial: None,
        parquet: false,
        vary: None,
        draws: Some("100000000"),
        copies: 1,
        extra: &[],
    },
    Case {
        name: "facial_ml",
        model: "models/seeds/facial_dynamics.tandem",
        facial: Some(Truth::Default),
        parquet: false,
        vary: Some("span=1"),
        draws: None,
        copies: 1,
        extra: &["--method", "ml"],
    },
    Case {
        name: "facial_x9_out_of_core",
        model: "models/seeds/facial_dynamics.tandem",
        facial: Some(Truth::Default),
        parquet: false,
        vary: Some("span=1"),
        draws: None,
        copies: 9,
        extra: &["--method", "ml", "--out-of-core"],
    },
    Case {
        name: "facial_x9_in_memory",
        model: "models/seeds/facial_dynamics.tandem",
        facial: Some(Truth::Default),
        parquet: false,
        vary: Some("span=1"),
        draws: None,
        copies: 9,
        extra: &["--method", "ml"],
    },
];

/// What a finished (or killed) subprocess left behind.
struct Run {
    wall: f64,
    /// Peak resident set size in KiB (`VmHWM`), as last read.
    peak_kib: Option<u64>,
    timed_out: bool,
    success: bool,
    stdout: String,
    stderr: String,
}

fn vm_hwm_kib(pid: u32) -> Option<u64> {
    let status = std::fs::read_to_string(format!("/proc/{pid}/status")).ok()?;
    let line = status.lines().find(|l| l.starts_with("VmHWM:"))?;
    line.split_whitespace().nth(1)?.parse().ok()
}

/// Run `command` to the end (or until `timeout`), polling its peak memory.
fn run(mut command: Command, timeout: Option<Duration>) -> Run {
    let start = Instant::now();
    let mut child = command
        .stdout(Stdio::piped())
        .stderr(Stdio::piped())
        .spawn()
        .unwrap_or_else(|e| panic!("cannot start {command:?}: {e}"));
    let pid = child.id();
    let drain = |mut pipe: Box<dyn Read + Send>| {
        thread::spawn(move || {
            let mut text = String::new();
            let _ = pipe.read_to_string(&mut text);
            text
        })
    };
    let stdout = drain(Box::new(child.stdout.take().unwrap()));
    let stderr = drain(Box::new(child.stderr.take().unwrap()));
    let (mut peak_kib, mut timed_out) = (None, false);
    let status = loop {
        if let Some(kib) = vm_hwm_kib(pid) {
            peak_kib = Some(peak_kib.unwrap_or(0).max(kib));
        }
        if let Some(status) = child.try_wait().expect("wait for the subprocess") {
            break status;
        }
        if timeout.is_some_and(|t| start.elapsed() > t) {
            timed_out = true;
            let _ = child.kill();
            break child.wait().expect("wait for the killed subprocess");
        }
        thread::sleep(Duration::from_millis(10));
    };
    let wall = start.elapsed().as_secs_f64();
    Run {
        wall,
        peak_kib,
        timed_out,
        success: status.success() && !timed_out,
        stdout: stdout.join().unwrap(),
        stderr: stderr.join().unwrap(),
    }
}

/// The generated facial design for `truth`, written once into `target/bench-data/`.
fn facial_csv(root: &Path, truth: Truth) -> PathBuf {
    let target = std::env::var_os("CARGO_TARGET_DIR")
        .map(PathBuf::from)
        .unwrap_or_else(|| root.join("target"));
    let dir = target.join("bench-data");
    let name = match truth {
        Truth::Default => "facial_default",
        Truth::Boundary => "facial_boundary",
    };
    let seed = truth.default_seed();
    let path = dir.join(format!("{name}_seed{seed}.csv"));
    std::fs::create_dir_all(&dir).expect("create target/bench-data");
    made_once(&path, |partial| {
        let (sessions, rows) = generate_facial::generate(
            partial,
            generate_facial::PATIENTS,
            generate_facial::SECONDS,
            seed,
            truth,
        )
        .expect("generate the facial design");
        format!("{sessions} sessions, {rows} rows")
    })
}

/// `path`, written by `make` (into a partial file, renamed when done) unless it exists.
fn made_once(path: &Path, make: impl FnOnce(&Path) -> String) -> PathBuf {
    if !path.exists() {
        let partial = path.with_extension("partial");
        let start = Instant::now();
        let what = make(&partial);
        std::fs::rename(&partial, path).expect("rename the generated file");
        println!(
            "generated {} ({what}) in {:.1} s",
            path.display(),
            start.elapsed().as_secs_f64()
        );
    }
    path.to_path_buf()
}

/// The facial design for `truth` written `copies` times (relabelled), generated once.
fn facial_copies_csv(root: &Path, truth: Truth, copies: usize) -> PathBuf {
    let single = facial_csv(root, truth);
    if copies == 1 {
        return single;
    }
    let path = single.with_extension(format!("x{copies}.csv"));
    made_once(&path, |partial| {
        generate_facial::replicate(&single, partial, copies).expect("replicate the design");
        format!("{copies} copies")
    })
}

/// The facial design for `truth` as Parquet (snappy), converted once from its CSV with the
/// `parquet` crate's writer: numbers as float64, text as dictionaries (R's factors).
fn facial_parquet(root: &Path, truth: Truth) -> PathBuf {
    use std::sync::Arc;

    use arrow_array::types::UInt32Type;
    use arrow_array::{ArrayRef, DictionaryArray, Float64Array, RecordBatch, StringArray};
    use parquet::arrow::ArrowWriter;
    use parquet::basic::Compression;
    use parquet::file::properties::WriterProperties;
    use tandem::data::Column;

    let csv = facial_csv(root, truth);
    let path = csv.with_extension("parquet");
    if path.exists() {
        return path;
    }
    let start = Instant::now();
    let table = tandem::data::read_csv(&csv).expect("read the generated design");
    let arrays: Vec<(String, ArrayRef)> = table
        .names
        .iter()
        .zip(&table.columns)
        .map(|(name, column)| {
            let array: ArrayRef = match column {
                Column::Numeric(values) => Arc::new(Float64Array::from(
                    values
                        .iter()
                        .map(|v| (!v.is_nan()).then_some(*v))
                        .collect::<Vec<_>>(),
                )),
                Column::Text { codes, levels } => {
                    let keys = arrow_array::UInt32Array::from(
                        codes
                            .iter()
                            .map(|&c| (c != tandem::data::MISSING_CODE).then_some(c))
                            .collect::<Vec<_>>(),
                    );
                    let values = Arc::new(StringArray::from(levels.clone()));
                    Arc::new(
                        DictionaryArray::<UInt32Type>::try_new(keys, values)
                            .expect("a dictionary column"),
                    )
                }
            };
            (name.clone(), array)
        })
        .collect();
    let batch = RecordBatch::try_from_iter(arrays).expect("a record batch");
    let partial = path.with_extension("parquet.partial");
    let file = std::fs::File::create(&partial).expect("create the Parquet file");
    let properties = WriterProperties::builder()
        .set_compression(Compression::SNAPPY)
        .build();
    let mut writer =
        ArrowWriter::try_new(file, batch.schema(), Some(properties)).expect("a Parquet writer");
    writer.write(&batch).expect("write the Parquet file");
    writer.close().expect("close the Parquet file");
    std::fs::rename(&partial, &path).expect("rename the Parquet file");
    println!(
        "converted {} to Parquet in {:.1} s",
        csv.display(),
        start.elapsed().as_secs_f64()
    );
    path
}

/// `timings (wall clock):` lines from tandem's stderr: (stage, seconds).
fn stage_times(stderr: &str) -> Vec<(String, f64)> {
    stderr
        .lines()
        .skip_while(|l| !l.starts_with("timings (wall clock):"))
        .skip(1)
        .filter_map(|l| {
            let l = l.trim();
            let (stage, secs) = l.strip_suffix(" s")?.rsplit_once(' ')?;
            Some((stage.trim().to_string(), secs.trim().parse().ok()?))
        })
        .collect()
}

fn megabytes(kib: Option<u64>) -> String {
    kib.map_or("?".into(), |k| format!("{:.0} MB", k as f64 / 1024.0))
}

/// What a case measured: the wall time end to end and the stage times (when it ran through).
struct Measured {
    wall: Option<f64>,
    stages: Vec<(String, f64)>,
    peak_kib: Option<u64>,
    rows_read: Option<f64>,
    loglik: Option<f64>,
    /// Fixed estimates, then variance-component SDs.
    estimates: Vec<f64>,
}

fn run_case(root: &Path, tandem: &Path, case: &Case, timeout: Option<Duration>) -> Measured {
    println!("\n== {} ==", case.name);
    let mut command = Command::new(tandem);
    command
        .current_dir(root)
        .args(["fit", case.model, "--timings", "--format", "json"]);
    if let Some(truth) = case.facial {
        let data = if case.parquet {
            facial_parquet(root, truth)
        } else {
            facial_copies_csv(root, truth, case.copies)
        };
        command.arg("--data").arg(data);
    }
    if let Some(vary) = case.vary {
        command.args(["--vary", vary]);
    }
    if let Some(draws) = case.draws {
        command.args(["--draws", draws]);
    }
    command.args(case.extra);
    println!(
        "command: tandem {}",
        command
            .get_args()
            .map(|a| a.to_string_lossy())
            .collect::<Vec<_>>()
            .join(" ")
    );
    let r = run(command, timeout);
    println!("wall time end to end   {:>9.3} s", r.wall);
    println!("peak memory (VmHWM)    {:>9}", megabytes(r.peak_kib));
    if r.timed_out {
        println!(
            "TIMED OUT after {:.0} s (killed; TANDEM_BENCH_TIMEOUT)",
            timeout.unwrap().as_secs_f64()
        );
    }
    let stages = stage_times(&r.stderr);
    for (stage, secs) in &stages {
        println!("  {stage:<32} {secs:>9.3} s");
    }
    let failed = Measured {
        wall: None,
        stages: Vec::new(),
        peak_kib: r.peak_kib,
        rows_read: None,
        loglik: None,
        estimates: Vec::new(),
    };
    if !r.success {
        if !r.timed_out {
            println!("FAILED; stderr:");
            for line in r.stderr.lines().take(40) {
                println!("  | {line}");
            }
        }
        return failed;
    }
    let json: Value = match serde_json::from_str(&r.stdout) {
        Ok(v) => v,
        Err(e) => {
            println!("the report is not JSON ({e})");
            return failed;
        }
    };
    let report = match json.get("vary") {
        Some(fits) => &fits[0],
        None => &json,
    };
    let fit = &report["fit"];
    println!(
        "converged {}, singular {}, logLik {}, deviance {}, {} deviance evaluations",
        fit["converged"], fit["singular"], fit["loglik"], fit["deviance"], fit["iterations"]
    );
    if let Some(warnings) = fit["warnings"].as_array().filter(|w| !w.is_empty()) {
        for w in warnings {
            println!("  warning: {}", w.as_str().unwrap_or_default());
        }
    }
    for d in report["defined"].as_array().into_iter().flatten() {
        println!(
            "defined {}: estimate {}, {} interval [{}, {}] from {} draws, SD of draws {}",
            d["name"],
            d["estimate"],
            d["method"],
            d["ci_lower"],
            d["ci_upper"],
            d["draws"],
            d["se_draws"]
        );
    }
    let numbers = |section: &str, key: &str| -> Vec<f64> {
        report[section]
            .as_array()
            .into_iter()
            .flatten()
            .filter_map(|row| row[key].as_f64())
            .collect()
    };
    let mut estimates = numbers("fixed", "estimate");
    estimates.extend(numbers("random", "sd"));
    estimates.extend(numbers("residual", "sd"));
    Measured {
        wall: Some(r.wall),
        stages,
        peak_kib: r.peak_kib,
        rows_read: report["data"]["rows_read"].as_f64(),
        loglik: fit["loglik"].as_f64(),
        estimates,
    }
}

/// lme4 on InstEval in the same run (`TANDEM_BENCH_LME4=1` and `Rscript` on PATH).
fn lme4_insteval(root: &Path, tandem_wall: Option<f64>) {
    let script = r#"
suppressPackageStartupMessages(library(lme4))
t_read <- system.time({
  d <- read.csv("models/data/lme4/insteval.csv")
  for (v in c("s", "d", "dept", "service")) d[[v]] <- factor(d[[v]])
})[["elapsed"]]
t_fit <- system.time(m <- lmer(y ~ 1 + service + (1 | s) + (1 | d) + (1 | dept:service), d,
                               REML = TRUE))[["elapsed"]]
cat(sprintf("%.17g %.17g %.17g %d\n", t_read, t_fit, REMLcrit(m), m@optinfo$feval))
"#;
    let mut command = Command::new("Rscript");
    command.current_dir(root).args(["-e", script]);
    println!("\n== insteval with lme4 (default optimizer, REML) ==");
    let r = run(command, None);
    let fields: Vec<f64> = r
        .stdout
        .split_whitespace()
        .filter_map(|s| s.parse().ok())
        .collect();
    if !r.success || fields.len() != 4 {
        println!("Rscript failed:\n{}", r.stderr);
        return;
    }
    let (read, fit) = (fields[0], fields[1]);
    println!("Rscript wall time       {:>9.3} s", r.wall);
    println!("peak memory (VmHWM)     {:>9}", megabytes(r.peak_kib));
    println!("  read.csv + factors     {read:>9.3} s");
    println!("  lmer                   {fit:>9.3} s");
    println!(
        "REML criterion {}, {} deviance evaluations",
        fields[2], fields[3]
    );
    if let Some(t) = tandem_wall {
        println!(
            "tandem end to end / lme4 (read + lmer): {:.2}",
            t / (read + fit)
        );
    }
}

fn rscript_on_path() -> bool {
    std::env::var_os("PATH")
        .is_some_and(|paths| std::env::split_paths(&paths).any(|dir| dir.join("Rscript").is_file()))
}

fn main() {
    let root = Path::new(env!("CARGO_MANIFEST_DIR"));
    let tandem = Path::new(env!("CARGO_BIN_EXE_tandem"));
    // `cargo bench` passes `--bench`; any other argument filters the cases by name.
    let filters: Vec<String> = std::env::args()
        .skip(1)
        .filter(|a| !a.starts_with("--"))
        .collect();
    let skip: Vec<String> = std::env::var("TANDEM_BENCH_SKIP")
        .unwrap_or_default()
        .split(',')
        .map(|s| s.trim().to_string())
        .filter(|s| !s.is_empty())
        .collect();
    let timeout = std::env::var("TANDEM_BENCH_TIMEOUT")
        .ok()
        .and_then(|s| s.parse::<f64>().ok())
        .map(Duration::from_secs_f64);
    let mut measured: Vec<(&str, Measured)> = Vec::new();
    for case in &CASES {
        let wanted = filters.is_empty() || filters.iter().any(|f| case.name.contains(f.as_str()));
        if !wanted || skip.iter().any(|s| s == case.name) {
            continue;
        }
        let m = run_case(root, tandem, case, timeout);
        if case.name == "insteval"
            && std::env::var("TANDEM_BENCH_LME4").is_ok_and(|v| v == "1")
            && rscript_on_path()
        {
            lme4_insteval(root, m.wall);
        }
        measured.push((case.name, m));
    }
    // The same design read from CSV and from Parquet, in the same run.
    let read = |name: &str| {
        measured
            .iter()
            .find(|(n, _)| *n == name)
            .and_then(|(_, m)| m.stages.iter().find(|(s, _)| s == "read data"))
            .map(|(_, secs)| *secs)
    };
    if let (Some(csv), Some(parquet)) = (read("facial_default"), read("facial_default_parquet")) {
        println!(
            "\n== reading the 3.34 M-row facial design ==\nCSV {csv:.3} s, Parquet {parquet:.3} s \
             (Parquet / CSV {:.2})",
            parquet / csv
        );
    }
    compare_copies(&measured);
}

/// The 9× design out of core (and in memory) against the 1× design in memory, by ML.
fn compare_copies(measured: &[(&str, Measured)]) {
    let find = |name: &str| measured.iter().find(|(n, _)| *n == name).map(|(_, m)| m);
    let Some(single) = find("facial_ml").filter(|m| m.wall.is_some()) else {
        return;
    };
    println!("\n== the facial design 9 times, by ML ==");
    let per_row = |m: &Measured| m.wall.zip(m.rows_read).map(|(w, rows)| w / rows * 1e6);
    let base = per_row(single);
    for name in ["facial_ml", "facial_x9_out_of_core", "facial_x9_in_memory"] {
        let Some(m) = find(name).filter(|m| m.wall.is_some()) else {
            continue;
        };
        let ratio = per_row(m)
            .zip(base)
            .map_or("?".into(), |(a, b)| format!("{:.2}", a / b));
        println!(
            "{name:<24} {:>9.3} s, {:>6.3} µs per row ({ratio} of facial_ml's), peak {}",
            m.wall.unwrap_or(f64::NAN),
            per_row(m).unwrap_or(f64::NAN),
            megabytes(m.peak_kib)
        );
        if name != "facial_ml" {
            if let (Some(l9), Some(l1)) = (m.loglik, single.loglik) {
                let worst = m
                    .estimates
                    .iter()
                    .zip(&single.estimates)
                    .map(|(a, b)| (a - b).abs() / b.abs().max(1e-12))
                    .fold(0.0, f64::max);
                println!(
                    "{:<24} logLik / (9 × facial_ml's) − 1 = {:.2e}; largest relative \
                     difference of an estimate {worst:.2e} ({} compared)",
                    "",
                    l9 / (9.0 * l1) - 1.0,
                    m.estimates.len().min(single.estimates.len())
                );
            }
        }
    }
}
