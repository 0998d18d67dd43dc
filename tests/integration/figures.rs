//! `--plot DIR` and `--ranef` through the binary: sleepstudy and the therapist oxytocin (1-1-1)
//! mediation write their figures as SVG that parses as XML with an `<svg>` root, and the JSON
//! `ranef` of sleepstudy matches lme4's `ranef` (REML). The residuals drawn satisfy Henderson's
//! mixed-model equations.
//!
//! The distribution figures are read back: their bars are counted, and the estimate and interval
//! lines are mapped through the axis' own tick labels to data values and compared with the
//! report's JSON, so a line drawn at the wrong place (or a figure of other draws) fails.

use crate::common;

use std::path::{Path, PathBuf};
use std::process::Command;

use common::prepared;
use tandem::design;
use tandem::estimate::fit;
use tandem::infer::fitted::fitted_values;
use tandem::syntax::ast::Method;

fn fresh_dir(name: &str) -> PathBuf {
    let dir = std::env::temp_dir().join(format!("tandem-figures-{name}-{}", std::process::id()));
    let _ = std::fs::remove_dir_all(&dir);
    dir
}

fn tandem(args: &[&str]) -> String {
    tandem_threads(args, None)
}

/// Runs the binary, with `RAYON_NUM_THREADS` set when `threads` is given.
fn tandem_threads(args: &[&str], threads: Option<usize>) -> String {
    let mut command = Command::new(env!("CARGO_BIN_EXE_tandem"));
    command.args(args).current_dir(env!("CARGO_MANIFEST_DIR"));
    if let Some(n) = threads {
        command.env("RAYON_NUM_THREADS", n.to_string());
    }
    let output = command.output().expect("the tandem binary runs");
    let stdout = String::from_utf8_lossy(&output.stdout).into_owned();
    assert!(
        output.status.success(),
        "{stdout}{}",
        String::from_utf8_lossy(&output.stderr)
    );
    stdout
}

/// The SVG's text, checked to be XML with an `<svg>` root.
pub(crate) fn svg(dir: &Path, file: &str) -> String {
    let path = dir.join(file);
    let text = std::fs::read_to_string(&path)
        .unwrap_or_else(|e| panic!("{} not written: {e}", path.display()));
    let doc = roxmltree::Document::parse(&text)
        .unwrap_or_else(|e| panic!("{} is not XML: {e}", path.display()));
    assert_eq!(doc.root_element().tag_name().name(), "svg", "{file}");
    text
}

/// The caterpillar plot's interval bars: horizontal polylines in the points' colour, as
/// (left x, right x, y) in pixels.
fn interval_bars(svg: &str) -> Vec<(f64, f64, f64)> {
    let doc = roxmltree::Document::parse(svg).unwrap();
    doc.descendants()
        .filter(|n| n.has_tag_name("polyline") && n.attribute("stroke") == Some("#1F77B4"))
        .map(|n| {
            let xy: Vec<(f64, f64)> = n
                .attribute("points")
                .unwrap()
                .split_whitespace()
                .map(|p| {
                    let (x, y) = p.split_once(',').unwrap();
                    (x.parse().unwrap(), y.parse().unwrap())
                })
                .collect();
            assert_eq!(xy.len(), 2, "a bar is one segment");
            assert_eq!(xy[0].1, xy[1].1, "a bar is horizontal");
            (xy[0].0.min(xy[1].0), xy[0].0.max(xy[1].0), xy[0].1)
        })
        .collect()
}

/// The files written into `dir`, sorted.
pub(crate) fn files(dir: &Path) -> Vec<String> {
    let mut names: Vec<String> = std::fs::read_dir(dir)
        .unwrap()
        .map(|e| e.unwrap().file_name().to_string_lossy().into_owned())
        .collect();
    names.sort();
    names
}

/// What a distribution figure shows, read back from its SVG.
struct Distribution {
    texts: Vec<String>,
    /// Histogram bars (rectangles in the bar colour).
    bars: usize,
    /// Data values of the vertical red (interval) and thick black (estimate) lines.
    interval: Vec<f64>,
    estimate: Vec<f64>,
    /// One pixel in data units, the tolerance of a line's position.
    pixel: f64,
}

fn distribution(text: &str) -> Distribution {
    let doc = roxmltree::Document::parse(text).unwrap();
    let mut texts = Vec::new();
    // (pixel x, value) of the x axis' tick labels: centred numbers.
    let mut ticks: Vec<(f64, f64)> = Vec::new();
    let mut bars = 0;
    // (stroke, pixel x) of vertical lines.
    let mut lines: Vec<(String, f64)> = Vec::new();
    for node in doc.descendants().filter(|n| n.is_element()) {
        match node.tag_name().name() {
            "text" => {
                let content: String = node
                    .descendants()
                    .filter(|d| d.is_text())
                    .filter_map(|d| d.text())
                    .collect::<String>()
                    .trim()
                    .to_string();
                if node.attribute("text-anchor") == Some("middle") {
                    if let Ok(value) = content.parse::<f64>() {
                        let x: f64 = node.attribute("x").unwrap().parse().unwrap();
                        ticks.push((x, value));
                    }
                }
                texts.push(content);
            }
            "rect" if node.attribute("fill") == Some("#1F77B4") => bars += 1,
            "polyline" | "line" => {
                let stroke = node.attribute("stroke").unwrap_or_default().to_string();
                let points: Vec<(f64, f64)> = match node.attribute("points") {
                    Some(p) => p
                        .split_whitespace()
                        .map(|xy| {
                            let (x, y) = xy.split_once(',').unwrap();
                            (x.parse().unwrap(), y.parse().unwrap())
                        })
                        .collect(),
                    None => continue,
                };
                let vertical = points.len() >= 2
                    && points.iter().all(|p| p.0 == points[0].0)
                    && points[0].1 != points[1].1;
                let thick = node.attribute("stroke-width") == Some("3");
                if vertical && thick {
                    lines.push((stroke, points[0].0));
                }
            }
            _ => {}
        }
    }
    ticks.sort_by(|a, b| a.0.total_cmp(&b.0));
    assert!(
        ticks.len() >= 3,
        "too few x tick labels: {ticks:?} in {texts:?}"
    );
    let (first, last) = (ticks[0], ticks[ticks.len() - 1]);
    let scale = (last.1 - first.1) / (last.0 - first.0);
    let value = |px: f64| first.1 + (px - first.0) * scale;
    let at = |colour: &str| {
        let mut xs: Vec<f64> = lines
            .iter()
            .filter(|(s, _)| s == colour)
            .map(|&(_, x)| x)
            .collect();
        xs.sort_by(f64::total_cmp);
        xs.dedup();
        xs.into_iter().map(value).collect::<Vec<f64>>()
    };
    Distribution {
        texts,
        bars,
        interval: at("#D62728"),
        estimate: at("#000000"),
        pixel: scale.abs(),
    }
}

impl Distribution {
    fn has_text(&self, want: &str) -> bool {
        self.texts.iter().any(|t| t == want)
    }

    /// The estimate and interval lines sit where the report's row says (within 1.5 pixels).
    fn lines_match(&self, row: &serde_json::Value, what: &str) {
        let got = |k: &str| row[k].as_f64().unwrap_or_else(|| panic!("{what}: no {k}"));
        let tolerance = 1.5 * self.pixel;
        assert_eq!(self.estimate.len(), 1, "{what}: {:?}", self.estimate);
        assert!(
            (self.estimate[0] - got("estimate")).abs() < tolerance,
            "{what}: estimate line at {} vs {}",
            self.estimate[0],
            got("estimate")
        );
        assert_eq!(self.interval.len(), 2, "{what}: {:?}", self.interval);
        for (line, key) in self.interval.iter().zip(["ci_lower", "ci_upper"]) {
            assert!(
                (line - got(key)).abs() < tolerance,
                "{what}: {key} line at {line} vs {}",
                got(key)
            );
        }
    }
}

fn row<'a>(rows: &'a serde_json::Value, name: &str) -> &'a serde_json::Value {
    rows.as_array()
        .and_then(|r| r.iter().find(|r| r["name"] == name))
        .unwrap_or_else(|| panic!("no row {name} in {rows}"))
}

/// A copy of a library model in `dir` with its `data` path made absolute and `interval` lines
/// replaced by `interval`.
fn model_with_interval(model: &str, dir: &Path, interval: &str) -> PathBuf {
    let root = Path::new(env!("CARGO_MANIFEST_DIR"));
    let path = root.join(model);
    let text = std::fs::read_to_string(&path).unwrap();
    let folder = path.parent().unwrap();
    let mut out = String::new();
    for line in text.lines() {
        if let Some(rest) = line.strip_prefix("data \"") {
            let relative = rest.trim_end_matches('"');
            out.push_str(&format!("data \"{}\"\n", folder.join(relative).display()));
        } else if !line.starts_with("interval") {
            out.push_str(line);
            out.push('\n');
        }
    }
    out.push_str(interval);
    out.push('\n');
    std::fs::create_dir_all(dir).unwrap();
    let file = dir.join(path.file_name().unwrap());
    std::fs::write(&file, out).unwrap();
    file
}

#[test]
fn sleepstudy_figures_and_ranef() {
    let dir = fresh_dir("sleepstudy");
    let json = tandem(&[
        "fit",
        "models/lme4/sleepstudy.tandem",
        "--format",
        "json",
        "--ranef",
        "--plot",
        dir.to_str().unwrap(),
    ]);
    let residuals = svg(&dir, "sleepstudy-residuals.svg");
    // One point per observation.
    assert_eq!(residuals.matches("<circle").count(), 180);
    // A short title; the model named by its file, not its path.
    assert!(
        residuals.contains(">\nresiduals against fitted values\n<")
            || residuals.contains(">residuals against fitted values<")
    );
    assert!(residuals.contains("sleepstudy.tandem: 180 observations"));
    assert!(!residuals.contains("models/lme4"));
    let caterpillar = svg(&dir, "sleepstudy-ranef-Subject.svg");
    // 18 subjects, two effects: a point and an interval bar each, the bar centred on its point.
    assert_eq!(caterpillar.matches("<circle").count(), 36);
    let bars = interval_bars(&caterpillar);
    assert_eq!(bars.len(), 36);
    let doc = roxmltree::Document::parse(&caterpillar).unwrap();
    let points: Vec<(f64, f64)> = doc
        .descendants()
        .filter(|n| n.has_tag_name("circle"))
        .map(|n| {
            let at = |a: &str| n.attribute(a).unwrap().parse::<f64>().unwrap();
            (at("cx"), at("cy"))
        })
        .collect();
    for (x0, x1, y) in &bars {
        assert!(x1 > x0, "an interval has width");
        let centred = points
            .iter()
            .any(|(cx, cy)| (cy - y).abs() <= 1.0 && (cx - (x0 + x1) / 2.0).abs() <= 1.0);
        assert!(
            centred,
            "the bar {x0}..{x1} at y {y} has no point at its centre"
        );
    }
    let files = std::fs::read_dir(&dir).unwrap().count();
    assert_eq!(files, 2, "no definitions, so no draw figures");

    let report: serde_json::Value = serde_json::from_str(&json).unwrap();
    let ranef = report["ranef"].as_array().expect("a ranef list");
    assert_eq!(ranef.len(), 36);
    let value = |level: &str, term: &str| {
        ranef
            .iter()
            .find(|r| r["level"] == level && r["term"] == term)
            .and_then(|r| {
                assert_eq!(r["group"], "Subject");
                assert_eq!(r["equation"], "Reaction");
                r["value"].as_f64()
            })
            .unwrap_or_else(|| panic!("no {level} {term}"))
    };
    // lme4: ranef(lmer(Reaction ~ Days + (Days | Subject), sleepstudy)).
    for (level, term, want) in [
        ("308", "(Intercept)", 2.2585509499),
        ("308", "Days", 9.1989757656),
        ("372", "(Intercept)", 12.3145921077),
        ("372", "Days", 1.2840220765),
    ] {
        let got = value(level, term);
        assert!((got - want).abs() < 1e-4, "{level} {term}: {got} vs {want}");
    }
    let _ = std::fs::remove_dir_all(&dir);
}

#[test]
fn mediation_figures_draw_each_definition_and_the_summarys_direct_effect_and_proportion() {
    let dir = fresh_dir("mediation");
    let json = tandem(&[
        "fit",
        "models/seeds/therapist_ot_mediation.tandem",
        "--draws",
        "20000",
        "--format",
        "json",
        "--plot",
        dir.to_str().unwrap(),
    ]);
    let report: serde_json::Value = serde_json::from_str(&json).unwrap();
    assert_eq!(
        files(&dir),
        [
            "therapist_ot_mediation-direct.svg",
            "therapist_ot_mediation-indirect.svg",
            "therapist_ot_mediation-proportion_mediated.svg",
            "therapist_ot_mediation-ranef-patient.svg",
            "therapist_ot_mediation-residuals.svg",
            "therapist_ot_mediation-total.svg",
        ]
    );
    // Two equations, one panel each, every observation of both drawn.
    let residuals = svg(&dir, "therapist_ot_mediation-residuals.svg");
    let nobs = report["fit"]["nobs"].as_u64().unwrap() as usize;
    assert_eq!(residuals.matches("<circle").count(), nobs);
    let panels = distribution_texts(&residuals);
    assert!(panels.iter().any(|t| t == "ot_change"), "{panels:?}");
    assert!(panels.iter().any(|t| t == "hrsd_next"), "{panels:?}");
    // One random block across both equations: each panel names its outcome, every patient is
    // labelled in every panel, and every mode has its interval.
    let caterpillar = svg(&dir, "therapist_ot_mediation-ranef-patient.svg");
    let texts = distribution_texts(&caterpillar);
    for panel in [
        "ot_change: (Intercept)",
        "ot_change: neg_w",
        "hrsd_next: (Intercept)",
        "hrsd_next: ot_w",
    ] {
        assert!(
            texts.iter().any(|t| t == panel),
            "no panel {panel}: {texts:?}"
        );
    }
    let patients = report["fit"]["ngroups"]["patient"].as_u64().unwrap() as usize;
    for k in 1..=patients {
        let label = format!("P{k:02}");
        let shown = texts.iter().filter(|t| **t == label).count();
        assert_eq!(shown, 4, "{label} labelled in {shown} of 4 panels");
    }
    assert_eq!(interval_bars(&caterpillar).len(), 4 * patients);
    svg(&dir, "therapist_ot_mediation-ranef-patient.svg");
    for (file, name, rows, row_name) in [
        ("indirect", "indirect", "defined", "indirect"),
        ("total", "total", "defined", "total"),
        ("direct", "direct", "mediation", "ADE"),
        (
            "proportion_mediated",
            "proportion mediated",
            "mediation",
            "Prop. Mediated",
        ),
    ] {
        let text = svg(&dir, &format!("therapist_ot_mediation-{file}.svg"));
        let figure = distribution(&text);
        assert!(
            figure.has_text(&format!("Monte Carlo draws of {name}")),
            "{file}: {:?}",
            figure.texts
        );
        // Rice's rule: 2·20000^(1/3) = 54.3, so 55 bars.
        assert_eq!(figure.bars, 55, "{file}");
        // All 20000 draws binned (the proportion's far tails counted, not dropped).
        assert!(
            figure
                .texts
                .iter()
                .any(|t| t.starts_with("therapist_ot_mediation.tandem: 20000 draws")),
            "{file}: {:?}",
            figure.texts
        );
        figure.lines_match(row(&report[rows], row_name), file);
    }
    // The same draws on one thread: the same figures, byte for byte.
    let single = fresh_dir("mediation-1");
    tandem_threads(
        &[
            "fit",
            "models/seeds/therapist_ot_mediation.tandem",
            "--draws",
            "20000",
            "--plot",
            single.to_str().unwrap(),
        ],
        Some(1),
    );
    for file in ["indirect", "total", "direct", "proportion_mediated"] {
        let name = format!("therapist_ot_mediation-{file}.svg");
        assert!(svg(&dir, &name) == svg(&single, &name), "{name} differs");
    }
    let _ = std::fs::remove_dir_all(&dir);
    let _ = std::fs::remove_dir_all(&single);
}

/// Every text of an SVG.
fn distribution_texts(text: &str) -> Vec<String> {
    let doc = roxmltree::Document::parse(text).unwrap();
    doc.descendants()
        .filter(|n| n.has_tag_name("text"))
        .map(|n| {
            n.descendants()
                .filter(|d| d.is_text())
                .filter_map(|d| d.text())
                .collect::<String>()
                .trim()
                .to_string()
        })
        .collect()
}

#[test]
fn a_cluster_bootstrap_draws_the_replicates_its_interval_used_for_any_thread_count() {
    let mut figures = Vec::new();
    for threads in [1, 2] {
        let dir = fresh_dir(&format!("bootstrap-{threads}"));
        let json = tandem_threads(
            &[
                "fit",
                "models/seeds/ot_synchrony_bootstrap.tandem",
                "--draws",
                "200",
                "--format",
                "json",
                "--plot",
                dir.to_str().unwrap(),
            ],
            Some(threads),
        );
        let report: serde_json::Value = serde_json::from_str(&json).unwrap();
        // No residual figure for a random coefficient as a predictor; no parameter is drawn.
        assert_eq!(
            files(&dir),
            [
                "ot_synchrony_bootstrap-indirect.svg",
                "ot_synchrony_bootstrap-ranef-dyad.svg"
            ]
        );
        let text = svg(&dir, "ot_synchrony_bootstrap-indirect.svg");
        let figure = distribution(&text);
        assert!(
            figure.has_text("cluster bootstrap replicates of indirect"),
            "{:?}",
            figure.texts
        );
        // The replicates binned are those the interval counts as usable.
        let indirect = row(&report["defined"], "indirect");
        let usable = indirect["draws"].as_u64().unwrap();
        let count = if usable == 200 {
            "200 replicates".to_string()
        } else {
            format!("{usable} of 200 replicates")
        };
        assert!(
            figure.texts.iter().any(|t| t.starts_with(&format!(
                "ot_synchrony_bootstrap.tandem: {count}, resampling dyad"
            ))),
            "{:?}",
            figure.texts
        );
        // Rice's rule: 2·200^(1/3) = 11.7, so 12 bars.
        assert_eq!(figure.bars, 12);
        figure.lines_match(indirect, "indirect");
        figures.push(text);
        let _ = std::fs::remove_dir_all(&dir);
    }
    assert!(
        figures[0] == figures[1],
        "the figure depends on the threads"
    );
}

#[test]
fn a_bootstrapped_mediation_draws_its_direct_effect_and_proportion_mediated() {
    let dir = fresh_dir("row-bootstrap");
    let model = model_with_interval(
        "models/lavaan/mediation.tandem",
        &dir,
        "interval bootstrap(draws = 100, seed = 7)",
    );
    let out = dir.join("figures");
    let json = tandem(&[
        "fit",
        model.to_str().unwrap(),
        "--format",
        "json",
        "--plot",
        out.to_str().unwrap(),
    ]);
    let report: serde_json::Value = serde_json::from_str(&json).unwrap();
    assert_eq!(
        files(&out),
        [
            "mediation-ab.svg",
            "mediation-direct.svg",
            "mediation-proportion_mediated.svg",
            "mediation-residuals.svg",
            "mediation-total.svg",
        ]
    );
    for (file, name, rows, row_name) in [
        ("ab", "ab", "defined", "ab"),
        ("total", "total", "defined", "total"),
        ("direct", "direct", "mediation", "ADE"),
        (
            "proportion_mediated",
            "proportion mediated",
            "mediation",
            "Prop. Mediated",
        ),
    ] {
        let figure = distribution(&svg(&out, &format!("mediation-{file}.svg")));
        assert!(
            figure.has_text(&format!("row bootstrap replicates of {name}")),
            "{file}: {:?}",
            figure.texts
        );
        let row = row(&report[rows], row_name);
        assert_eq!(row["method"], "row bootstrap percentile", "{file}");
        // Rice's rule: 2·100^(1/3) = 9.3, raised to the minimum of 10 bars.
        assert_eq!(figure.bars, 10, "{file}");
        figure.lines_match(row, file);
    }
    let _ = std::fs::remove_dir_all(&dir);
}

#[test]
fn a_bootstrap_without_definitions_draws_no_distribution() {
    let dir = fresh_dir("no-definitions");
    let model = model_with_interval(
        "models/lme4/sleepstudy.tandem",
        &dir,
        "interval bootstrap(draws = 20, resample = Subject, seed = 1)",
    );
    let out = dir.join("figures");
    tandem(&[
        "fit",
        model.to_str().unwrap(),
        "--plot",
        out.to_str().unwrap(),
    ]);
    assert_eq!(
        files(&out),
        ["sleepstudy-ranef-Subject.svg", "sleepstudy-residuals.svg"]
    );
    let _ = std::fs::remove_dir_all(&dir);
}

#[test]
fn without_ranef_the_json_has_no_ranef() {
    let json = tandem(&["fit", "models/lme4/sleepstudy.tandem", "--format", "json"]);
    let report: serde_json::Value = serde_json::from_str(&json).unwrap();
    assert!(report.get("ranef").is_none());
}

/// Henderson's equations at the REML optimum: with e = y − Xβ − Zb, X'e = 0 and, per subject,
/// Z_i'e_i = σ² Σ_b⁻¹ b_i. Wrong fitted values (random part left out, levels mixed up) break them.
#[test]
fn sleepstudy_residuals_solve_the_mixed_model_equations() {
    let (spec, frame) = prepared("Reaction ~ Days + (Days | Subject)", "lme4/sleepstudy.csv");
    let d = design::build(&spec, &frame).unwrap();
    let f = fit(&d, Method::Reml).unwrap();
    let rows = design::observation_rows(&spec, &frame).unwrap();
    let fitted = fitted_values(&rows, &f).expect("rows of this fit");
    assert_eq!(fitted.residual.len(), 180);
    for i in 0..180 {
        assert!((fitted.fitted[i] + fitted.residual[i] - rows.y[i]).abs() < 1e-9);
    }
    let scale: f64 = fitted.residual.iter().map(|e| e.abs()).sum::<f64>() * 10.0;
    for c in 0..rows.x.ncols() {
        let xe: f64 = (0..180).map(|i| rows.x[(i, c)] * fitted.residual[i]).sum();
        assert!(xe.abs() < 1e-6 * scale, "X'e[{c}] = {xe}");
    }
    let sigma2 = f.sigma * f.sigma;
    let g_inverse = f.random[0].covariance.clone().try_inverse().unwrap();
    let term = &rows.terms[0];
    for level in 0..term.nlevels {
        let b = f.random_effects[0].row(level).transpose();
        let want = &g_inverse * b * sigma2;
        for j in 0..2 {
            let ze: f64 = (0..180)
                .filter(|&i| term.level[i] == Some(level))
                .map(|i| term.z[(i, j)] * fitted.residual[i])
                .sum();
            assert!(
                (ze - want[j]).abs() < 1e-5 * (1.0 + want[j].abs()),
                "level {level} effect {j}: {ze} vs {}",
                want[j]
            );
        }
    }
}

/// `--plot`'s output policy (issue 14 item 5): in a folder run figures are named by the model's
/// path within the folder (two `dyestuff.tandem` in different subfolders keep their own), a
/// figure of an earlier run is replaced whole (no partial file is left), a symbolic link at a
/// figure's name is neither followed nor replaced (a warning says so), and a figure folder that
/// is a file is a warning, with the report printed.
#[test]
fn plot_names_replaces_and_refuses_as_documented() {
    let work = fresh_dir("policy");
    for sub in ["a", "b"] {
        model_with_interval(
            "models/lme4/dyestuff.tandem",
            &work.join("models").join(sub),
            "",
        );
    }
    let out = work.join("figures");
    std::fs::create_dir_all(&out).unwrap();
    // An earlier run's figure and a link pointing outside the folder.
    std::fs::write(out.join("a-dyestuff-residuals.svg"), "old").unwrap();
    let outside = work.join("outside.txt");
    std::fs::write(&outside, "keep me").unwrap();
    std::os::unix::fs::symlink(&outside, out.join("b-dyestuff-residuals.svg")).unwrap();
    let models = work.join("models");
    let stdout = tandem(&[
        "fit",
        models.to_str().unwrap(),
        "--plot",
        out.to_str().unwrap(),
    ]);
    assert!(svg(&out, "a-dyestuff-residuals.svg").len() > 100);
    svg(&out, "a-dyestuff-ranef-Batch.svg");
    svg(&out, "b-dyestuff-ranef-Batch.svg");
    assert_eq!(std::fs::read_to_string(&outside).unwrap(), "keep me");
    assert!(
        std::fs::symlink_metadata(out.join("b-dyestuff-residuals.svg"))
            .unwrap()
            .file_type()
            .is_symlink()
    );
    assert!(
        stdout.contains("b-dyestuff-residuals.svg not written: a symbolic link is there"),
        "{stdout}"
    );
    assert!(
        files(&out).iter().all(|f| !f.contains("partial")),
        "{:?}",
        files(&out)
    );

    let not_a_folder = work.join("figures.txt");
    std::fs::write(&not_a_folder, "").unwrap();
    let model = models.join("a").join("dyestuff.tandem");
    let stdout = tandem(&[
        "fit",
        model.to_str().unwrap(),
        "--plot",
        not_a_folder.to_str().unwrap(),
    ]);
    assert!(stdout.contains("Random effects:"), "{stdout}");
    assert!(
        stdout.contains("figures not written:") && stdout.contains("is not a folder"),
        "{stdout}"
    );
}
