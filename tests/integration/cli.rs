//! The `tandem` binary on broken input: mutations of a real model file (a misspelled column, an
//! unbalanced parenthesis, trailing garbage, an empty file, binary junk), a missing data file, a
//! non-numeric or infinite cell, a grouping with one row per group. Each must exit non-zero with a located message — never a panic — and the
//! messages are snapshotted as the user sees them.

use std::process::Command;

/// The binary run with `args` from the repository root: exit code, stdout, stderr.
pub(crate) fn run(args: &[&str]) -> (i32, String, String) {
    let output = Command::new(env!("CARGO_BIN_EXE_tandem"))
        .args(args)
        .current_dir(env!("CARGO_MANIFEST_DIR"))
        .output()
        .expect("the tandem binary runs");
    (
        output.status.code().unwrap_or(-1),
        String::from_utf8_lossy(&output.stdout).into_owned(),
        String::from_utf8_lossy(&output.stderr).into_owned(),
    )
}

#[test]
fn broken_model_files_get_located_messages() {
    insta::glob!("../fixtures/cli", "*.tandem", |path| {
        let name = path.file_name().unwrap().to_str().unwrap();
        if name == "base.tandem" {
            return;
        }
        let relative = std::path::Path::new("tests/fixtures/cli").join(name);
        let relative = relative.to_str().unwrap();
        for command in ["check", "fit"] {
            let (code, stdout, stderr) = run(&[command, relative]);
            assert_eq!(
                code, 1,
                "`tandem {command} {name}` must fail:\n{stdout}{stderr}"
            );
            assert!(!stderr.contains("panicked"), "{stderr}");
            assert!(stdout.is_empty(), "nothing is fitted: {stdout}");
            assert!(stderr.starts_with("error"), "{stderr}");
            // Control bytes from the files are escaped, never echoed raw (issue 14 item 9).
            assert!(
                !stderr
                    .chars()
                    .any(|c| c.is_control() && c != '\n' && c != '\t'),
                "{stderr:?}"
            );
        }
        let (_, _, stderr) = run(&["check", relative]);
        insta::assert_snapshot!(stderr);
    });
}

/// A data file where the model file goes (by extension, or by content: a first line of
/// delimited fields) is named as such, with the `--data` hint, for `fit` and `check`.
#[test]
fn a_data_file_in_place_of_a_model_file_is_named() {
    let renamed = std::env::temp_dir().join(format!("tandem_cli_{}.txt", std::process::id()));
    std::fs::copy("tests/fixtures/formats/missing_outcome.csv", &renamed).unwrap();
    for path in [
        "tests/fixtures/formats/missing_outcome.csv",
        renamed.to_str().unwrap(),
    ] {
        for command in ["check", "fit"] {
            let (code, stdout, stderr) = run(&[command, path]);
            assert_eq!(code, 1, "{stdout}{stderr}");
            assert!(
                stderr.contains("looks like a data file, not a model file")
                    && stderr.contains(&format!("--data {path}")),
                "{stderr}"
            );
        }
    }
    let _ = std::fs::remove_file(&renamed);
    let (_, _, stderr) = run(&["fit", "tests/fixtures/formats/missing_outcome.csv"]);
    insta::assert_snapshot!(stderr);
}

/// A parameter the data do not identify (the same grouping entered twice under two names) is
/// named, and located at the random terms it belongs to, in the text report and in JSON (whose
/// warnings are also said on stderr); the fit itself is at lme4's optimum (their variances sum
/// to sleepstudy's intercept variance).
#[test]
fn flat_directions_are_named_and_located() {
    let model = "tests/fixtures/flat/subject_twice.tandem";
    let (code, stdout, stderr) = run(&["fit", model]);
    assert_eq!(code, 0, "{stderr}");
    let warnings: String = stdout
        .lines()
        .filter(|l| l.starts_with("warning:"))
        .collect::<Vec<_>>()
        .join("\n");
    insta::assert_snapshot!(warnings);
    let (code, stdout, stderr) = run(&["fit", model, "--format", "json"]);
    assert_eq!(code, 0, "{stderr}");
    assert!(stderr.contains("subject_twice.tandem:5:39"), "{stderr}");
    let json: serde_json::Value = serde_json::from_str(&stdout).unwrap();
    let variance = |k: usize| json["random"][k]["variance"].as_f64().unwrap();
    // lme4: VarCorr(lmer(Reaction ~ Days + (1 | Subject), sleepstudy)) gives 1378.18.
    assert!(
        (variance(0) + variance(1) - 1378.18).abs() < 0.01,
        "{stdout}"
    );
}

/// A main effect whose moderator never reaches 0 in the data is named, located, with the
/// observed range and a centring hint, once however many `vary` values; the library's facial
/// file, which centres alliance, gets no such warning.
#[test]
fn main_effects_at_an_impossible_moderator_value_are_flagged() {
    let (code, _, stderr) = run(&["check", "tests/fixtures/uncentred/facial_dynamics.tandem"]);
    assert_eq!(code, 0, "{stderr}");
    assert_eq!(
        stderr.matches("where `alliance` = 0").count(),
        2,
        "{stderr}"
    );
    insta::assert_snapshot!(stderr);
    let (code, _, stderr) = run(&["check", "models/seeds/facial_dynamics.tandem"]);
    assert_eq!(code, 0, "{stderr}");
    assert!(!stderr.contains("= 0, a value"), "{stderr}");
    let (_, stdout, _) = run(&[
        "fit",
        "tests/fixtures/uncentred/facial_dynamics.tandem",
        "--vary",
        "span=1",
        "--format",
        "json",
    ]);
    assert!(
        stdout.contains("a value `alliance` never takes"),
        "{stdout}"
    );
}

/// Numerically degenerate models (tests/fixtures/degenerate) check clean, since the problem is in
/// the values, but `fit` refuses them before optimizing, naming the column or outcome at fault,
/// instead of printing a rank-deficient error without a location or a fit with a zero residual.
#[test]
fn degenerate_fits_are_refused_with_located_messages() {
    insta::glob!("../fixtures/degenerate", "*.tandem", |path| {
        let name = path.file_name().unwrap().to_str().unwrap();
        let relative = std::path::Path::new("tests/fixtures/degenerate").join(name);
        let relative = relative.to_str().unwrap();
        let (code, _, stderr) = run(&["check", relative]);
        assert_eq!(code, 0, "`tandem check {name}`:\n{stderr}");
        let (code, stdout, stderr) = run(&["fit", relative]);
        assert_eq!(code, 1, "`tandem fit {name}` must fail:\n{stdout}{stderr}");
        assert!(!stderr.contains("panicked"), "{stderr}");
        assert!(stdout.is_empty(), "nothing is fitted: {stdout}");
        assert!(
            stderr.starts_with("error") && stderr.contains(" --> "),
            "{stderr}"
        );
        insta::assert_snapshot!(stderr);
    });
}

/// A definition that has no value at the estimates (`a/0`, the log of a negative number) is
/// flagged with its line; the other definitions are reported as usual.
#[test]
fn definitions_without_a_value_are_flagged() {
    let (code, stdout, stderr) =
        run(&["fit", "tests/fixtures/warnings/nonfinite_definition.tandem"]);
    assert_eq!(code, 0, "{stderr}");
    // c = 0.036 in lavaan's mediation example, so c - 1 < 0.
    for expected in [
        "warning: `ratio` (line 9) is not a finite number at the estimates (",
        "warning: `log_c` (line 10) is not a finite number at the estimates (NaN)",
    ] {
        assert!(stdout.contains(expected), "{expected}\n{stdout}");
    }
    assert!(!stdout.contains("`ab` (line"), "{stdout}");
}

/// At a boundary fit whose information matrix cannot be formed, a definition of fixed effects
/// gets its interval from Cov(β), with a warning, and the report is printed; one involving a
/// variance parameter is refused at its line.
#[test]
fn definitions_at_a_boundary_fit() {
    let (code, stdout, stderr) = run(&[
        "fit",
        "tests/fixtures/warnings/boundary_variance_definition.tandem",
    ]);
    assert_eq!(code, 0, "{stderr}");
    assert!(
        stdout.contains(" react_high ") && stdout.contains(" spread "),
        "{stdout}"
    );
    assert!(
        stdout.contains("the covariance of all parameters comes from the information in the random terms' Cholesky factors"),
        "{stdout}"
    );
    // Without a joint covariance (residuals correlated within couples), a definition of fixed
    // effects alone uses their Cov(β), and says so.
    let (code, stdout, stderr) = run(&["fit", "tests/fixtures/warnings/within_definition.tandem"]);
    assert_eq!(code, 0, "{stderr}");
    assert!(
        stdout.contains(" both ")
            && stdout.contains(
                "the defined quantities involve fixed effects only and use their covariance Cov(β)"
            ),
        "{stdout}"
    );
}

/// `--vary` values are checked as the file's own are: a `lag` distance of 0 is refused at the
/// `lag`, and a value given twice is refused (issue 14 item 7).
#[test]
fn vary_values_from_the_command_line_pass_the_files_checks() {
    let model = "models/seeds/facial_dynamics.tandem";
    let (code, stdout, stderr) = run(&["fit", model, "--vary", "span=0"]);
    assert_eq!(code, 1, "{stdout}{stderr}");
    assert!(stdout.is_empty(), "nothing is fitted: {stdout}");
    assert!(
        stderr.contains("the values given with `--vary` (0) do not pass the model's checks")
            && stderr.contains("`lag` distance `span` takes the value 0")
            && stderr.contains("facial_dynamics.tandem:11:33"),
        "{stderr}"
    );
    let (code, _, stderr) = run(&["fit", model, "--vary", "span=5", "--vary", "span=5"]);
    assert_eq!(code, 1, "{stderr}");
    assert!(stderr.contains("`vary` value 5 is repeated"), "{stderr}");
}

/// Too few draws for a percentile interval's tails are said in every format; fewer than 2 are
/// refused at the command line as in the file (issue 14 item 7).
#[test]
fn too_few_draws_are_flagged_or_refused() {
    let model = "tests/fixtures/formats/mediation_mc.tandem";
    let wanted = "100 Monte Carlo draws leave 2.5 in each tail of the 95";
    for format in ["text", "json", "markdown", "latex"] {
        let (code, stdout, stderr) = run(&["fit", model, "--draws", "100", "--format", format]);
        assert_eq!(code, 0, "{stderr}");
        assert!(stdout.contains(wanted), "{format}: {stdout}");
    }
    let (code, stdout, _) = run(&["fit", model]);
    assert_eq!(code, 0);
    assert!(!stdout.contains("in each tail"), "{stdout}");
    let (code, _, stderr) = run(&["fit", model, "--draws", "1"]);
    assert_eq!(code, 2, "{stderr}");
    assert!(stderr.contains("--draws"), "{stderr}");
}

/// A folder's JSON is one document with an entry for every model file, failing ones included,
/// in name order (issue 14 item 6).
#[test]
fn folder_json_is_one_document_with_every_file() {
    let folder = "tests/fixtures/cli";
    let (code, stdout, stderr) = run(&["fit", folder, "--format", "json"]);
    assert_eq!(code, 1, "{stderr}");
    let document: serde_json::Value = serde_json::from_str(&stdout).expect("one JSON document");
    let models = document["models"].as_array().expect("models");
    let mut files: Vec<String> = std::fs::read_dir(folder)
        .unwrap()
        .map(|e| e.unwrap().path())
        .filter(|p| p.extension().is_some_and(|e| e == "tandem"))
        .map(|p| p.display().to_string())
        .collect();
    files.sort();
    let listed: Vec<&str> = models.iter().map(|m| m["file"].as_str().unwrap()).collect();
    assert_eq!(listed, files);
    for m in models {
        let ok = m["file"].as_str().unwrap().ends_with("/base.tandem");
        assert_eq!(m["status"], if ok { "ok" } else { "failed" }, "{m}");
        assert_eq!(m["report"].is_object(), ok, "{m}");
        if !ok {
            assert!(m["messages"].as_str().unwrap().contains("error"), "{m}");
        }
    }
}

/// A data file that cannot fit in the memory available is read out of core instead of ending
/// in an allocation failure (issue 14 item 3): the report says why, and the numbers are the
/// in-memory ones. `TANDEM_AVAILABLE_MEMORY` stands for a machine with 5 kB free (sleepstudy's
/// CSV is 3.1 kB).
#[test]
fn a_data_file_larger_than_memory_is_read_out_of_core() {
    let output = Command::new(env!("CARGO_BIN_EXE_tandem"))
        .args(["fit", "models/lme4/sleepstudy.tandem", "--format", "json"])
        .env(tandem::data::AVAILABLE_MEMORY_VARIABLE, "5000")
        .current_dir(env!("CARGO_MANIFEST_DIR"))
        .output()
        .unwrap();
    let stderr = String::from_utf8_lossy(&output.stderr);
    assert_eq!(output.status.code(), Some(0), "{stderr}");
    let report: serde_json::Value = serde_json::from_slice(&output.stdout).unwrap();
    let notes = report["data"]["notes"].to_string();
    assert!(
        notes.contains("the data file is 3.1 kB: reading it whole needs at least 9.2 kB")
            && notes.contains("about 5.0 kB are available: it is read out of core"),
        "{notes}"
    );
    let (_, in_memory, _) = run(&["fit", "models/lme4/sleepstudy.tandem", "--format", "json"]);
    let in_memory: serde_json::Value = serde_json::from_str(&in_memory).unwrap();
    assert_same_fit("sleepstudy", &in_memory, &report);
}

/// Relative closeness of two JSON numbers (null matches null).
fn close(a: &serde_json::Value, b: &serde_json::Value, tolerance: f64) -> bool {
    match (a.as_f64(), b.as_f64()) {
        (Some(x), Some(y)) => (x - y).abs() <= tolerance * x.abs().max(y.abs()).max(1e-300),
        _ => a == b,
    }
}

/// The same fit from the same rows: log-likelihood (to 1e-11), every estimate, SE and df,
/// variance component and row count. Summed in another order, the sums differ in the last
/// bits.
fn assert_same_fit(name: &str, a: &serde_json::Value, b: &serde_json::Value) {
    let fits = |v: &serde_json::Value| match v.get("vary") {
        Some(list) => list.as_array().unwrap().clone(),
        None => vec![v.clone()],
    };
    let (fa, fb) = (fits(a), fits(b));
    assert_eq!(fa.len(), fb.len(), "{name}");
    for (a, b) in fa.iter().zip(&fb) {
        assert!(
            close(&a["fit"]["loglik"], &b["fit"]["loglik"], 1e-11),
            "{name}: {} vs {}",
            a["fit"],
            b["fit"]
        );
        for key in ["nobs", "ngroups", "converged", "singular"] {
            assert_eq!(a["fit"][key], b["fit"][key], "{name}: {key}");
        }
        for section in ["fixed", "random", "residual"] {
            let (ra, rb) = (
                a[section].as_array().unwrap(),
                b[section].as_array().unwrap(),
            );
            assert_eq!(ra.len(), rb.len(), "{name}: {section}");
            for (x, y) in ra.iter().zip(rb) {
                for (key, value) in x.as_object().unwrap() {
                    // Sums in another order move the optimum within the optimizer's
                    // tolerance (in deviance units): a flat direction such as a correlation
                    // by 1e-7, Satterthwaite's df (a ratio of small differences) and a small
                    // p (which moves by t times t's relative change) by more.
                    let tolerance = match (section, key.as_str()) {
                        (_, "p") => 1e-4,
                        (_, "df") => 1e-5,
                        ("fixed", _) => 1e-6,
                        _ => 1e-5,
                    };
                    assert!(
                        close(value, &y[key], tolerance),
                        "{name}: {section} {key}: {value} vs {}",
                        y[key]
                    );
                }
            }
        }
        assert_eq!(
            a["tandem"]["data_sha256"], b["tandem"]["data_sha256"],
            "{name}"
        );
        for key in [
            "rows_read",
            "rows_used",
            "rows_dropped",
            "drops",
            "rows_by_equation",
            "file",
        ] {
            assert_eq!(a["data"][key], b["data"][key], "{name}: data {key}");
        }
    }
}

/// Out of core (the file read in pieces of about an eighth of it, in two passes) every model
/// that can be fitted so gives the in-memory fit: lags within groups, every kind of summary
/// over all rows, `factor`, text predictors, residual classes and within-unit correlation,
/// joint equations, missing codes, gzip, TSV, decimal commas and row names.
#[test]
fn out_of_core_fits_are_the_in_memory_fits() {
    let files = [
        "models/lme4/sleepstudy.tandem",
        "models/lme4/insteval.tandem",
        "models/lme4/orthodont.tandem",
        "models/lme4/pastes_nested.tandem",
        "models/lme4/penicillin_crossed.tandem",
        "models/nlme/orthodont_varident.tandem",
        "models/dyadic/apim_distinguishable.tandem",
        "models/dyadic/apim_indistinguishable.tandem",
        "models/lavaan/mediation.tandem",
        "models/seeds/crying_welch.tandem",
        "models/seeds/therapist_ot_mediation.tandem",
        "models/seeds/ot_synchrony_a_path.tandem",
        "tests/fixtures/out_of_core/summaries.tandem",
        "tests/fixtures/formats/gzip.tandem",
        "tests/fixtures/formats/tsv.tandem",
        "tests/fixtures/formats/csv2.tandem",
        "tests/fixtures/formats/missing_codes.tandem",
        "tests/fixtures/formats/row_names.tandem",
    ];
    for file in files {
        let (code, in_memory, stderr) = run(&["fit", file, "--format", "json"]);
        assert_eq!(code, 0, "{file}: {stderr}");
        let data = serde_json::from_str::<serde_json::Value>(&in_memory).unwrap();
        let first = data.get("vary").map_or(&data, |v| &v[0]);
        let size = std::fs::metadata(first["data"]["file"].as_str().unwrap())
            .unwrap()
            .len();
        let output = Command::new(env!("CARGO_BIN_EXE_tandem"))
            .args(["fit", file, "--format", "json", "--out-of-core"])
            .env(
                tandem::out_of_core::PIECE_BYTES_VARIABLE,
                (size / 8).max(400).to_string(),
            )
            .current_dir(env!("CARGO_MANIFEST_DIR"))
            .output()
            .unwrap();
        let stderr = String::from_utf8_lossy(&output.stderr);
        assert_eq!(output.status.code(), Some(0), "{file}: {stderr}");
        let streamed: serde_json::Value = serde_json::from_slice(&output.stdout).unwrap();
        let first = streamed.get("vary").map_or(&streamed, |v| &v[0]);
        assert!(
            first["data"]["notes"]
                .to_string()
                .contains("read out of core, in "),
            "{file}: {}",
            first["data"]
        );
        assert_same_fit(file, &data, &streamed);
    }
}

/// Out of core, the pieces' sums are merged in file order: the same digits for any number of
/// threads.
#[test]
fn out_of_core_digits_do_not_depend_on_threads() {
    let fit = |threads: &str| {
        Command::new(env!("CARGO_BIN_EXE_tandem"))
            .args([
                "fit",
                "tests/fixtures/out_of_core/summaries.tandem",
                "--format",
                "json",
                "--out-of-core",
            ])
            .env(tandem::out_of_core::PIECE_BYTES_VARIABLE, "300000")
            .env("RAYON_NUM_THREADS", threads)
            .current_dir(env!("CARGO_MANIFEST_DIR"))
            .output()
            .unwrap()
            .stdout
    };
    let one = fit("1");
    assert!(!one.is_empty());
    assert_eq!(one, fit("3"));
}

/// What two passes over pieces cannot do is refused before reading, located; a group whose rows
/// are not together (with a lag) is refused at the row, and a text cell in a later piece of a
/// numeric column at its file line; the bootstrap and columnar files say why.
#[test]
fn out_of_core_refusals_are_located() {
    let mut out = String::new();
    for (file, extra) in [
        ("tests/fixtures/out_of_core/refused.tandem", None),
        ("tests/fixtures/out_of_core/unsorted.tandem", None),
        ("tests/fixtures/out_of_core/late_text.tandem", None),
        ("tests/fixtures/robust/sleepstudy_bootstrap.tandem", None),
        ("tests/fixtures/formats/parquet.tandem", None),
        ("tests/fixtures/synchrony/uncorrelated.tandem", None),
        ("models/lme4/sleepstudy.tandem", Some("--se=cr2")),
    ] {
        let mut args = vec!["fit", file, "--out-of-core"];
        args.extend(extra);
        let output = Command::new(env!("CARGO_BIN_EXE_tandem"))
            .args(&args)
            .env(tandem::out_of_core::PIECE_BYTES_VARIABLE, "1000")
            .current_dir(env!("CARGO_MANIFEST_DIR"))
            .output()
            .unwrap();
        let stderr = String::from_utf8_lossy(&output.stderr);
        assert!(!stderr.contains("panicked"), "{stderr}");
        if extra.is_some() {
            // CR2 needs the rows: the fit stands, with model-based standard errors, and says so.
            assert_eq!(output.status.code(), Some(0), "{stderr}");
            let stdout = String::from_utf8_lossy(&output.stdout);
            let line = stdout
                .lines()
                .find(|l| l.contains("--se cr2"))
                .unwrap_or_default();
            out.push_str(&format!("$ tandem {}\n{line}\n\n", args.join(" ")));
            continue;
        }
        assert_eq!(output.status.code(), Some(1), "{file}: {stderr}");
        out.push_str(&format!("$ tandem {}\n{stderr}\n", args.join(" ")));
    }
    insta::assert_snapshot!(out);
}

#[test]
fn the_unbroken_model_checks_clean() {
    let (code, stdout, stderr) = run(&["check", "tests/fixtures/cli/base.tandem"]);
    assert_eq!(code, 0, "{stderr}");
    assert!(stdout.contains("434 rows after preparation"), "{stdout}");
}

#[test]
fn every_library_model_checks_clean() {
    let (code, stdout, stderr) = run(&["check", "models"]);
    assert_eq!(code, 0, "{stdout}{stderr}");
    fn count(dir: &std::path::Path) -> usize {
        std::fs::read_dir(dir)
            .unwrap()
            .map(|e| e.unwrap().path())
            .map(|p| {
                if p.is_dir() {
                    count(&p)
                } else {
                    usize::from(p.extension().is_some_and(|x| x == "tandem"))
                }
            })
            .sum()
    }
    let files = count(&std::path::Path::new(env!("CARGO_MANIFEST_DIR")).join("models"));
    assert!(files >= 20, "{files} model files");
    let ok = stdout.lines().filter(|l| l.starts_with("ok: ")).count();
    assert_eq!(ok, files, "{stdout}");
}

#[test]
fn fit_prints_a_report_and_json() {
    let (code, stdout, stderr) = run(&["fit", "models/lme4/dyestuff.tandem"]);
    assert_eq!(code, 0, "{stderr}");
    assert!(
        stdout.contains("Random effects:") && stdout.contains("Fixed effects:"),
        "{stdout}"
    );
    let (code, stdout, _) = run(&[
        "fit",
        "models/lme4/dyestuff.tandem",
        "--format",
        "json",
        "--method",
        "ml",
    ]);
    assert_eq!(code, 0);
    let json: serde_json::Value = serde_json::from_str(&stdout).unwrap();
    assert_eq!(json["fit"]["method"], "ML");
    for key in ["fit", "fixed", "random", "residual", "defined", "data"] {
        assert!(json.get(key).is_some(), "JSON contract: `{key}` missing");
    }
}

/// A reviewer's run of a whole folder: every study's report, one per file, and the summary of
/// defined quantities at the end.
#[test]
fn the_seed_folder_reports_all_four_studies() {
    let (code, stdout, stderr) = run(&["fit", "models/seeds"]);
    assert_eq!(code, 0, "{stderr}");
    for file in [
        "facial_dynamics.tandem",
        "ot_synchrony.tandem",
        "ot_synchrony_bootstrap.tandem",
        "therapist_ot_mediation.tandem",
        "crying_improvement.tandem",
        "crying_welch.tandem",
        "crying_moderation.tandem",
        "crying_who_cried.tandem",
    ] {
        assert!(
            stdout.contains(&format!("models/seeds/{file}")),
            "no report of {file}"
        );
    }
    let summary = stdout
        .split("Defined quantities of every file:")
        .nth(1)
        .expect("the folder summary");
    assert!(
        summary.contains("ot_synchrony.tandem")
            && summary.contains("therapist_ot_mediation.tandem")
    );
}

/// `tandem fit` on `args` with the thread pool set to `threads` (`None`: rayon's default).
fn run_threads(args: &[&str], threads: Option<usize>) -> (i32, String, String) {
    let mut command = Command::new(env!("CARGO_BIN_EXE_tandem"));
    command.args(args).current_dir(env!("CARGO_MANIFEST_DIR"));
    match threads {
        Some(n) => command.env("RAYON_NUM_THREADS", n.to_string()),
        None => command.env_remove("RAYON_NUM_THREADS"),
    };
    let output = command.output().expect("the tandem binary runs");
    (
        output.status.code().unwrap_or(-1),
        String::from_utf8_lossy(&output.stdout).into_owned(),
        String::from_utf8_lossy(&output.stderr).into_owned(),
    )
}

/// Folders are fitted in parallel, but what a reader sees must not depend on it: one thread (so
/// every file in turn) and the default pool (and four threads, so files overlap even on a
/// two-core machine) give the same bytes on stdout and stderr and the same exit code. The
/// folders cover files that succeed, fail (tests/fixtures/cli: broken files report in their
/// place, exit 1), warn, bootstrap and draw Monte Carlo.
#[test]
fn folder_output_does_not_depend_on_the_thread_count() {
    for args in [
        // Few draws: the order of the output is under test, not the intervals.
        &["fit", "models", "--draws", "100"][..],
        &["fit", "tests/fixtures/cli"][..],
        &[
            "fit",
            "models/seeds",
            "--format",
            "markdown",
            "--draws",
            "100",
        ][..],
    ] {
        let sequential = run_threads(args, Some(1));
        assert!(!sequential.1.is_empty(), "{args:?}: no report");
        for threads in [None, Some(4)] {
            let parallel = run_threads(args, threads);
            assert_eq!(parallel.0, sequential.0, "{args:?}, {threads:?}: exit code");
            assert_eq!(parallel.1, sequential.1, "{args:?}, {threads:?}: stdout");
            assert_eq!(parallel.2, sequential.2, "{args:?}, {threads:?}: stderr");
        }
    }
    // The broken fixtures fail, and each still reports in name order.
    let (code, _, stderr) = run_threads(&["fit", "tests/fixtures/cli"], None);
    assert_eq!(code, 1);
    let junk = stderr
        .find("binary_junk.tandem")
        .expect("binary_junk reported");
    let garbage = stderr
        .find("trailing_garbage.tandem")
        .expect("trailing_garbage reported");
    assert!(junk < garbage, "reports out of name order");
}

/// A report that cannot be written is a failure, said on standard error (issue 14 item 4):
/// `tandem fit … > /dev/full` exited 0 with nothing said.
#[cfg(target_os = "linux")]
#[test]
fn a_report_that_cannot_be_written_fails() {
    let full = std::fs::File::create("/dev/full").expect("/dev/full opens");
    let output = Command::new(env!("CARGO_BIN_EXE_tandem"))
        .args(["fit", "models/lme4/dyestuff.tandem", "--format", "json"])
        .current_dir(env!("CARGO_MANIFEST_DIR"))
        .stdout(full)
        .output()
        .expect("the tandem binary runs");
    let stderr = String::from_utf8_lossy(&output.stderr);
    assert_eq!(output.status.code(), Some(1), "{stderr}");
    assert!(
        stderr.contains("error: the report could not be written to standard output"),
        "{stderr}"
    );
}
