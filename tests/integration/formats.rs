//! The report formats users read (text, JSON, Markdown, LaTeX) on lme4's sleepstudy and lavaan's
//! mediation model, snapshotted as printed (JSON numbers rounded to 6 significant digits so the
//! snapshots do not depend on the last bits of the optimizer), and the JSON's `tandem` object.

use std::path::Path;

use sha2::{Digest, Sha256};
use tandem::cli::fit_path;
use tandem::pipeline::{FitOptions, Format};

fn fit(model: &str, format: Format, seed: Option<u64>) -> String {
    let options = FitOptions {
        format,
        seed,
        ..FitOptions::default()
    };
    let outcome = fit_path(Path::new(model), &options);
    assert!(outcome.success, "{model}: {}", outcome.stderr);
    outcome.stdout
}

fn json(model: &str, seed: Option<u64>) -> serde_json::Value {
    serde_json::from_str(&fit(model, Format::Json, seed)).expect("the JSON report parses")
}

fn sha256_hex(path: &str) -> String {
    let bytes = std::fs::read(path).expect("the file is readable");
    Sha256::digest(&bytes)
        .iter()
        .map(|b| format!("{b:02x}"))
        .collect()
}

/// Every number rounded to `digits` significant digits (integers stay as they are).
fn round_numbers(value: &serde_json::Value, digits: i32) -> serde_json::Value {
    use serde_json::Value;
    match value {
        Value::Number(n) if n.is_f64() => {
            let x = n.as_f64().unwrap_or(f64::NAN);
            if x == 0.0 || !x.is_finite() {
                return value.clone();
            }
            let scale = 10f64.powi(digits - 1 - x.abs().log10().floor() as i32);
            let rounded = (x * scale).round() / scale;
            // Printing through `{:e}` with the digits asked drops the binary noise of the
            // division above.
            let text = format!("{:.*e}", (digits - 1) as usize, rounded);
            serde_json::json!(text.parse::<f64>().unwrap_or(rounded))
        }
        Value::Array(items) => {
            Value::Array(items.iter().map(|v| round_numbers(v, digits)).collect())
        }
        Value::Object(map) => Value::Object(
            map.iter()
                .map(|(k, v)| (k.clone(), round_numbers(v, digits)))
                .collect(),
        ),
        other => other.clone(),
    }
}

#[test]
fn json_names_version_file_digests_and_seed() {
    let report = json("models/lavaan/mediation.tandem", None);
    let tandem = &report["tandem"];
    assert_eq!(tandem["version"], env!("CARGO_PKG_VERSION"));
    assert_eq!(
        tandem["model_sha256"],
        sha256_hex("models/lavaan/mediation.tandem")
    );
    assert_eq!(
        tandem["data_sha256"],
        sha256_hex("models/data/lavaan/mediation.csv")
    );
    // A delta-method interval draws nothing.
    assert!(tandem["seed"].is_null(), "{tandem}");
    // DESIGN.md's keys are still there.
    for key in ["fit", "fixed", "random", "residual", "defined", "data"] {
        assert!(report.get(key).is_some(), "missing `{key}`");
    }

    // A Monte Carlo interval reports its seed, and `--seed` replaces the file's.
    let mc = "tests/fixtures/formats/mediation_mc.tandem";
    assert_eq!(json(mc, None)["tandem"]["seed"], 20231001);
    assert_eq!(json(mc, Some(7))["tandem"]["seed"], 7);
}

const SNAPSHOT_MODELS: [(&str, &str); 10] = [
    ("sleepstudy", "models/lme4/sleepstudy.tandem"),
    ("mediation", "models/lavaan/mediation.tandem"),
    // lme4's Dyestuff2: a singular fit, whose warning every format must carry.
    ("singular", "tests/fixtures/formats/singular.tandem"),
    // A Monte Carlo interval (seeded): the delta-method SE and the draws' SD side by side.
    ("mediation_mc", "tests/fixtures/formats/mediation_mc.tandem"),
    // A label used twice (an equality constraint): a row per term, and the note in every format.
    ("equality", "tests/fixtures/formats/equality.tandem"),
    // Joint equations that lose different rows: the row accounting of every format.
    (
        "missing_outcome",
        "tests/fixtures/formats/missing_outcome.tandem",
    ),
    // Declared missing codes (`-999`, `.`): the cells counted in a note of every format.
    (
        "missing_codes",
        "tests/fixtures/formats/missing_codes.tandem",
    ),
    // Column names with a space or a dot, written between backquotes: named as lme4 names them.
    (
        "backquoted_names",
        "tests/fixtures/formats/backquoted_names.tandem",
    ),
    // Parquet written by pyarrow: the format noted in every format.
    ("parquet", "tests/fixtures/formats/parquet.tandem"),
    // Definitions at a boundary fit: the covariance through the Cholesky factors, and its
    // warning in every format.
    (
        "boundary_definition",
        "tests/fixtures/warnings/boundary_variance_definition.tandem",
    ),
];

/// A singular fit's warning reaches every format, and stderr when the report is not text
/// (JSON, Markdown and LaTeX usually go to a file). The fit is lme4's (REML criterion
/// 161.828277812, `tests/reference/scripts/dyestuff2.R`).
#[test]
fn a_singular_fits_warning_is_in_every_format_and_on_stderr() {
    let model = "tests/fixtures/formats/singular.tandem";
    for format in [Format::Text, Format::Json, Format::Markdown, Format::Latex] {
        let options = FitOptions {
            format,
            ..FitOptions::default()
        };
        let outcome = fit_path(Path::new(model), &options);
        assert!(outcome.success, "{}", outcome.stderr);
        assert!(
            outcome.stdout.contains("boundary (singular) fit"),
            "{format:?}: {}",
            outcome.stdout
        );
        assert_eq!(
            outcome.stderr.contains("boundary (singular) fit"),
            format != Format::Text,
            "{format:?}: {}",
            outcome.stderr
        );
    }
    let report = json(model, None);
    let deviance = report["fit"]["deviance"].as_f64().unwrap();
    assert!((deviance - 161.828277812).abs() < 1e-6, "{deviance}");
    assert_eq!(report["fit"]["singular"], true);
}

/// R's `write.csv` default (row names as an unnamed first column) reads as the data it is: the
/// column is ignored, every format says so, and the fit is sleepstudy's.
#[test]
fn r_row_names_are_ignored_and_said() {
    let model = "tests/fixtures/formats/row_names.tandem";
    let text = fit(model, Format::Text, None);
    insta::assert_snapshot!("text_row_names", text);
    for format in [Format::Markdown, Format::Latex] {
        assert!(
            fit(model, format, None).contains("R's row names"),
            "{format:?}"
        );
    }
    let ours = json(model, None);
    let reference = json("models/lme4/sleepstudy.tandem", None);
    assert_eq!(ours["fixed"], reference["fixed"]);
    assert_eq!(ours["random"], reference["random"]);
    assert!(ours["data"]["notes"][0]
        .as_str()
        .is_some_and(|n| n.contains("row names")));
}

/// `data "..." missing "-999", "."`: the coded cells are missing, their rows dropped and counted,
/// and the fit is lme4's on the file read with `na.strings = c("NA", "-999", ".")`
/// (`tests/reference/scripts/missing_codes.R`).
#[test]
fn declared_missing_codes_fit_as_r_reads_them() {
    let reference: serde_json::Value = serde_json::from_str(
        &std::fs::read_to_string("tests/reference/missing_codes.json").unwrap(),
    )
    .unwrap();
    let report = json("tests/fixtures/formats/missing_codes.tandem", None);
    assert_eq!(report["data"]["rows_used"], 172);
    assert_eq!(report["data"]["rows_dropped"], 8);
    assert_eq!(report["fit"]["nobs"], reference["nobs"]);
    assert!(report["data"]["notes"][0]
        .as_str()
        .is_some_and(|n| n.starts_with("8 cells equal to the missing codes")));
    let close = |got: &serde_json::Value, want: &serde_json::Value, rel: f64| {
        let (g, w) = (got.as_f64().unwrap(), want.as_f64().unwrap());
        assert!((g - w).abs() <= rel * w.abs(), "{g} vs {w}");
    };
    close(
        &report["fit"]["deviance"],
        &reference["reml_criterion"],
        1e-9,
    );
    for (i, name) in ["(Intercept)", "Days"].iter().enumerate() {
        close(
            &report["fixed"][i]["estimate"],
            &reference["fixed"][name],
            1e-6,
        );
        close(&report["fixed"][i]["se"], &reference["se"][name], 1e-5);
    }
    // lme4's VarCorr order: intercept variance, slope variance, their covariance, residual.
    let want = reference["variances"].as_array().unwrap();
    close(&report["random"][0]["variance"], &want[0], 1e-4);
    close(&report["random"][1]["variance"], &want[1], 1e-4);
    close(&report["random"][2]["covariance"], &want[2], 1e-4);
    close(&report["residual"][0]["variance"], &want[3], 1e-4);
}

/// Files as R's `write.csv2` (semicolons, decimal commas) and `write.table(sep = "\t")` write
/// sleepstudy (`tests/reference/scripts/sleepstudy_dialects.R`): the dialect is recognised, said
/// in every format, and the fit is sleepstudy's.
#[test]
fn semicolon_and_tab_files_read_as_r_writes_them() {
    let reference = json("models/lme4/sleepstudy.tandem", None);
    for (model, note) in [
        ("tests/fixtures/formats/csv2.tandem", "semicolon-separated"),
        ("tests/fixtures/formats/tsv.tandem", "tab-separated"),
    ] {
        let ours = json(model, None);
        assert_eq!(ours["fixed"], reference["fixed"], "{model}");
        assert_eq!(ours["random"], reference["random"], "{model}");
        assert!(ours["data"]["notes"][0]
            .as_str()
            .is_some_and(|n| n.contains(note)));
        for format in [Format::Text, Format::Markdown, Format::Latex] {
            assert!(
                fit(model, format, None).contains(note),
                "{model} {format:?}"
            );
        }
    }
    insta::assert_snapshot!(
        "text_csv2",
        fit("tests/fixtures/formats/csv2.tandem", Format::Text, None)
    );
}

/// Backquoted names (`tests/reference/scripts/sleepstudy_names.R` writes sleepstudy with
/// `Reaction Time`, `Days Since`, `Subject.ID`): the fit is sleepstudy's, and the slope is named
/// as lme4 names it.
#[test]
fn backquoted_column_names_fit_as_r_names_them() {
    let reference = json("models/lme4/sleepstudy.tandem", None);
    let ours = json("tests/fixtures/formats/backquoted_names.tandem", None);
    assert_eq!(ours["fit"]["deviance"], reference["fit"]["deviance"]);
    for i in 0..2 {
        assert_eq!(
            ours["fixed"][i]["estimate"],
            reference["fixed"][i]["estimate"]
        );
        assert_eq!(ours["fixed"][i]["se"], reference["fixed"][i]["se"]);
    }
    assert_eq!(ours["fixed"][1]["term"], "`Days Since`");
    assert_eq!(ours["random"][1]["term1"], "`Days Since`");
    assert_eq!(ours["random"][0]["group"], "Subject.ID");
}

/// Parquet, Arrow IPC and gzip-compressed CSV, written by pyarrow and Python's gzip
/// (`tests/reference/scripts/columnar_fixtures.py`): the same typed columns as the CSV (a
/// dictionary is a factor, int64 a number), so the same fit to the last digit; the format is
/// noted in every format, and the digest is the file's.
#[test]
fn parquet_arrow_and_gzip_fit_as_their_csv() {
    let csv_twin = |model: &str, csv: &str| {
        let options = FitOptions {
            format: Format::Json,
            data: Some(csv.into()),
            ..FitOptions::default()
        };
        let outcome = fit_path(Path::new(model), &options);
        assert!(outcome.success, "{model}: {}", outcome.stderr);
        serde_json::from_str::<serde_json::Value>(&outcome.stdout).unwrap()
    };
    for (model, file, csv, note) in [
        (
            "tests/fixtures/formats/parquet.tandem",
            "tests/fixtures/formats/facial.parquet",
            "models/data/synthetic/facial.csv",
            "read from Parquet",
        ),
        (
            "tests/fixtures/formats/feather.tandem",
            "tests/fixtures/formats/sleepstudy.feather",
            "models/data/lme4/sleepstudy.csv",
            "read from Arrow IPC",
        ),
        (
            "tests/fixtures/formats/gzip.tandem",
            "tests/fixtures/formats/sleepstudy.csv.gz",
            "models/data/lme4/sleepstudy.csv",
            "read from gzip-compressed text",
        ),
    ] {
        let ours = json(model, None);
        let twin = csv_twin(model, csv);
        for key in ["fixed", "random", "residual"] {
            assert_eq!(ours[key], twin[key], "{model}: {key}");
        }
        assert_eq!(ours["fit"]["loglik"], twin["fit"]["loglik"], "{model}");
        assert_eq!(ours["tandem"]["data_sha256"], sha256_hex(file), "{model}");
        assert!(
            ours["data"]["notes"]
                .as_array()
                .unwrap()
                .iter()
                .any(|n| n == note),
            "{model}: {}",
            ours["data"]
        );
        for format in [Format::Text, Format::Markdown, Format::Latex] {
            assert!(
                fit(model, format, None).contains(note),
                "{model} {format:?}"
            );
        }
    }
}

/// A file with the wrong content for its extension, and a column type with no CSV counterpart,
/// are refused with the file named.
#[test]
fn unreadable_columnar_files_are_refused() {
    let dir = std::env::temp_dir().join(format!("tandem-columnar-{}", std::process::id()));
    std::fs::create_dir_all(&dir).unwrap();
    let fake = dir.join("fake.parquet");
    std::fs::copy("models/data/lme4/sleepstudy.csv", &fake).unwrap();
    let err = tandem::data::read_data_with_sha256(&fake, &[]).unwrap_err();
    assert!(
        err.message
            .starts_with(&format!("cannot read `{}` as Parquet", fake.display())),
        "{}",
        err.message
    );
    let fake = dir.join("fake.csv.gz");
    std::fs::copy("models/data/lme4/sleepstudy.csv", &fake).unwrap();
    let err = tandem::data::read_data_with_sha256(&fake, &[]).unwrap_err();
    assert!(
        err.message.starts_with("cannot decompress"),
        "{}",
        err.message
    );
    std::fs::remove_dir_all(&dir).ok();
    let err =
        tandem::data::read_data_with_sha256(Path::new("tests/fixtures/formats/dates.parquet"), &[])
            .unwrap_err();
    assert_eq!(
        err.message,
        "tests/fixtures/formats/dates.parquet has a column of a type tandem cannot use: `visit` \
         (Date32)"
    );
}

/// Rows used per equation and in all: no line contradicts another, in any format.
#[test]
fn joint_equations_count_rows_per_equation() {
    let report = json("tests/fixtures/formats/missing_outcome.tandem", None);
    let data = &report["data"];
    assert_eq!(data["rows_read"], 100);
    assert_eq!(data["rows_used"], 98);
    assert_eq!(data["rows_dropped"], 2);
    assert_eq!(data["rows_by_equation"]["M"], 98);
    assert_eq!(data["rows_by_equation"]["Y"], 78);
    assert_eq!(report["fit"]["nobs"], 98 + 78);
}

#[test]
fn text_reports() {
    for (name, model) in SNAPSHOT_MODELS {
        insta::assert_snapshot!(format!("text_{name}"), fit(model, Format::Text, None));
    }
}

/// `--stars`: R's significance column after the p-values and R's legend under the fixed
/// effects; nothing else changes (the rest of each report equals the snapshot without stars).
#[test]
fn text_reports_with_stars() {
    for (name, model) in SNAPSHOT_MODELS {
        let options = FitOptions {
            stars: true,
            ..FitOptions::default()
        };
        let outcome = fit_path(Path::new(model), &options);
        assert!(outcome.success, "{model}: {}", outcome.stderr);
        let starred = outcome.stdout;
        let plain = fit(model, Format::Text, None);
        let legend = "---\nSignif. codes:  0 '***' 0.001 '**' 0.01 '*' 0.05 '.' 0.1 ' ' 1\n";
        assert_eq!(starred.matches(legend).count(), 1, "{starred}");
        // Taking the stars and the legend away gives the plain report back, up to the padding
        // of the fixed-effects table.
        let squeeze = |text: &str| {
            text.lines()
                .map(|l| {
                    l.trim_end_matches(['*', '.', ' '])
                        .split_whitespace()
                        .collect::<Vec<_>>()
                        .join(" ")
                })
                .collect::<Vec<_>>()
        };
        assert_eq!(squeeze(&starred.replace(legend, "")), squeeze(&plain));
        insta::assert_snapshot!(format!("text_stars_{name}"), starred);
    }
}

fn fit_ranef(model: &str, format: Format) -> String {
    let options = FitOptions {
        format,
        ranef: true,
        ..FitOptions::default()
    };
    let outcome = fit_path(Path::new(model), &options);
    assert!(outcome.success, "{model}: {}", outcome.stderr);
    outcome.stdout
}

/// `--ranef` in text and Markdown: a table per grouping factor (sleepstudy: one, with a random
/// slope; Pastes: two nested factors), a row per level, each effect followed by its
/// conditional SD.
#[test]
fn ranef_reports() {
    for (name, model) in [
        ("sleepstudy", "models/lme4/sleepstudy.tandem"),
        ("pastes_nested", "models/lme4/pastes_nested.tandem"),
    ] {
        insta::assert_snapshot!(format!("text_ranef_{name}"), fit_ranef(model, Format::Text));
        insta::assert_snapshot!(
            format!("markdown_ranef_{name}"),
            fit_ranef(model, Format::Markdown)
        );
    }
}

/// The text report's conditional-mode table of sleepstudy, read back cell by cell, is lme4's
/// `ranef(fm1, condVar = TRUE)` (tests/reference/condvar.json) to the printed digits.
#[test]
fn text_ranef_table_is_lme4s() {
    let reference: serde_json::Value = serde_json::from_str(
        &std::fs::read_to_string("tests/reference/condvar.json").expect("reference"),
    )
    .expect("reference parses");
    let text = fit_ranef("models/lme4/sleepstudy.tandem", Format::Text);
    let table = text
        .split_once("Conditional modes of the random effects")
        .expect("a ranef section")
        .1;
    let mut lines = table.lines().skip(1);
    let header: Vec<&str> = lines
        .next()
        .expect("header")
        .split("  ")
        .filter(|c| !c.trim().is_empty())
        .map(str::trim)
        .collect();
    assert_eq!(
        header,
        ["Subject", "(Intercept)", "cond. SD", "Days", "cond. SD"]
    );
    let mut checked = 0;
    for line in lines.take_while(|l| !l.trim().is_empty()) {
        let cells: Vec<&str> = line.split_whitespace().collect();
        assert_eq!(cells.len(), 5, "{line}");
        for (column, term) in [(1, "(Intercept)"), (3, "Days")] {
            let row = reference["sleepstudy_reml"]
                .as_array()
                .unwrap()
                .iter()
                .find(|r| r["level"] == cells[0] && r["term"] == term)
                .unwrap_or_else(|| panic!("no reference for {} {term}", cells[0]));
            for (cell, key) in [(cells[column], "value"), (cells[column + 1], "sd")] {
                let printed: f64 = cell.parse().expect("a number");
                let decimals = cell.split_once('.').map_or(0, |(_, d)| d.len());
                let want = row[key].as_f64().unwrap();
                // Half a unit in the last printed place, plus the optimizer's tolerance.
                let tolerance = 0.5 * 10f64.powi(-(decimals as i32)) + 1e-4 * want.abs();
                assert!(
                    (printed - want).abs() <= tolerance,
                    "{} {term} {key}: printed {printed}, lme4 {want}",
                    cells[0]
                );
                checked += 1;
            }
        }
    }
    assert_eq!(checked, 18 * 4);
}

#[test]
fn json_reports() {
    for (name, model) in SNAPSHOT_MODELS {
        let rounded = round_numbers(&json(model, None), 6);
        insta::assert_snapshot!(
            format!("json_{name}"),
            serde_json::to_string_pretty(&rounded).unwrap()
        );
    }
}

#[test]
fn markdown_reports() {
    for (name, model) in SNAPSHOT_MODELS {
        insta::assert_snapshot!(
            format!("markdown_{name}"),
            fit(model, Format::Markdown, None)
        );
    }
}

#[test]
fn latex_reports() {
    for (name, model) in SNAPSHOT_MODELS {
        insta::assert_snapshot!(format!("latex_{name}"), fit(model, Format::Latex, None));
    }
}

/// A folder of seed models (copies, with their data paths made absolute, so the slow bootstrap
/// file is left out) ends with one table of every file's defined quantities.
#[test]
fn a_folder_ends_with_every_files_defined_quantities() {
    let folder = std::env::temp_dir().join(format!("tandem_formats_{}", std::process::id()));
    std::fs::create_dir_all(&folder).unwrap();
    let data = Path::new(env!("CARGO_MANIFEST_DIR")).join("models/data/");
    for name in [
        "crying_welch.tandem",
        "ot_synchrony.tandem",
        "therapist_ot_mediation.tandem",
    ] {
        let text = std::fs::read_to_string(Path::new("models/seeds").join(name)).unwrap();
        let text = text.replace("\"../data/", &format!("\"{}", data.display()));
        std::fs::write(folder.join(name), text).unwrap();
    }
    for format in [Format::Text, Format::Markdown] {
        let options = FitOptions {
            format,
            ..FitOptions::default()
        };
        let outcome = fit_path(&folder, &options);
        assert!(outcome.success, "{}", outcome.stderr);
        let out = &outcome.stdout;
        let summary = out
            .rfind("Defined quantities of every file")
            .map(|at| &out[at..])
            .unwrap_or_else(|| panic!("no summary table:\n{out}"));
        let lines: Vec<&str> = summary.lines().collect();
        let row = |file: &str, name: &str| {
            lines
                .iter()
                .any(|l| l.contains(file) && l.split([' ', '|']).any(|w| w == name))
        };
        assert!(row("ot_synchrony.tandem", "indirect"), "{summary}");
        assert!(
            row("therapist_ot_mediation.tandem", "indirect"),
            "{summary}"
        );
        assert!(row("therapist_ot_mediation.tandem", "total"), "{summary}");
        // The Welch comparison defines nothing: no row.
        assert!(!summary.contains("crying_welch"), "{summary}");
        // Every report is headed by its file.
        for name in ["crying_welch", "ot_synchrony", "therapist_ot_mediation"] {
            assert!(out.contains(&format!("{name}.tandem")), "{name}");
        }
    }
    let _ = std::fs::remove_dir_all(&folder);
}
