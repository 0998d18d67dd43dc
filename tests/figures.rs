//! `--plot DIR` and `--ranef` through the binary: sleepstudy and the therapist oxytocin (1-1-1)
//! mediation write their figures as SVG that parses as XML with an `<svg>` root, and the JSON
//! `ranef` of sleepstudy matches lme4's `ranef` (REML). The residuals drawn satisfy Henderson's
//! mixed-model equations.

mod common;

use std::path::{Path, PathBuf};
use std::process::Command;

use common::{load_csv, spec};
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
    let output = Command::new(env!("CARGO_BIN_EXE_tandem"))
        .args(args)
        .current_dir(env!("CARGO_MANIFEST_DIR"))
        .output()
        .expect("the tandem binary runs");
    let stdout = String::from_utf8_lossy(&output.stdout).into_owned();
    assert!(
        output.status.success(),
        "{stdout}{}",
        String::from_utf8_lossy(&output.stderr)
    );
    stdout
}

/// The SVG's text, checked to be XML with an `<svg>` root.
fn svg(dir: &Path, file: &str) -> String {
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
fn mediation_figures_include_the_draws_of_each_definition() {
    let dir = fresh_dir("mediation");
    let text = tandem(&[
        "fit",
        "models/seeds/therapist_ot_mediation.tandem",
        "--draws",
        "20000",
        "--plot",
        dir.to_str().unwrap(),
    ]);
    // Without --ranef the JSON-free text report is unchanged in kind; figures still written.
    assert!(!text.is_empty());
    svg(&dir, "therapist_ot_mediation-residuals.svg");
    svg(&dir, "therapist_ot_mediation-ranef-patient.svg");
    for definition in ["indirect", "total"] {
        let figure = svg(&dir, &format!("therapist_ot_mediation-{definition}.svg"));
        // 60 bins plus the background.
        assert!(figure.matches("<rect").count() > 60, "{definition}");
    }
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
    let frame = load_csv("lme4/sleepstudy.csv");
    let spec = spec("Reaction ~ Days + (Days | Subject)", Method::Reml);
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
