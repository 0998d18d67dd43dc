//! `--plot` for a binomial or Poisson model, through the real front end (model text parsed,
//! checked and fitted by the pipeline with `plot` set): the numbers the residual figure drew
//! (`FitReport::residual_figure`) against lme4's `fitted()` and `residuals(type = "pearson")`
//! for every row (tests/reference/glmm_residuals.json, frozen by
//! tests/reference/scripts/glmm_residuals.R), a 0/1 outcome's binned residuals against
//! `arm::binned.resids` (with the model's band), and the SVGs read back: written, XML, one point
//! per observation or bin, titled and labelled as Pearson residuals against the fitted mean.
//! Must not test the GLMM's estimates (glmm.rs does) or the Gaussian figures (figures.rs does).

use crate::common::{self, number};
use crate::figures::files;

use std::path::{Path, PathBuf};

use serde_json::Value;
use tandem::report::figures::{ResidualPoints, ResidualScale};
use tandem::{FitOptions, FitReport};

fn fresh_dir(name: &str) -> PathBuf {
    let dir = std::env::temp_dir().join(format!("tandem-glmm-plot-{name}-{}", std::process::id()));
    let _ = std::fs::remove_dir_all(&dir);
    // The command line makes the folder; the library is handed one.
    std::fs::create_dir_all(&dir).unwrap();
    dir
}

/// `source` against `models/data/<data>` fitted by the pipeline with `--plot dir`.
fn plotted(name: &str, source: &str, data: &str, dir: &Path) -> FitReport {
    let options = FitOptions {
        plot: Some(dir.to_path_buf()),
        ..FitOptions::default()
    };
    let table = common::data_table(data);
    let fitted = tandem::pipeline::fit(name, source, table, &options)
        .unwrap_or_else(|e| panic!("{name}: {e:?}"));
    let report = fitted.fits.into_iter().next().unwrap().report;
    assert!(report.fit.converged, "{name}: {:?}", report.fit.warnings);
    assert!(report.fit.warnings.is_empty(), "{:?}", report.fit.warnings);
    report
}

fn numbers(v: &Value) -> Vec<f64> {
    v.as_array().unwrap().iter().map(number).collect()
}

/// |ours − R| ≤ 1e-4 · max(|R|, 1): residuals are of order one, so one near zero is held to
/// 1e-4 absolutely rather than to a relative error of a tiny number.
fn assert_near(what: &str, ours: &[f64], theirs: &[f64]) {
    assert_eq!(ours.len(), theirs.len(), "{what}: rows");
    for (i, (a, b)) in ours.iter().zip(theirs).enumerate() {
        let scale = b.abs().max(1.0);
        assert!(
            (a - b).abs() <= 1e-4 * scale,
            "{what}[{i}]: tandem {a} vs R {b} ({:.1e})",
            (a - b).abs() / scale
        );
    }
}

/// Each of `ours` within 1e-4 relative of R's.
fn assert_relative(what: &str, ours: &[f64], theirs: &[f64]) {
    assert_eq!(ours.len(), theirs.len(), "{what}: rows");
    for (i, (a, b)) in ours.iter().zip(theirs).enumerate() {
        common::assert_close(&format!("{what}[{i}]"), *a, *b, 1e-4);
    }
}

/// The residual figure's numbers against R's fitted() and Pearson residuals.
fn matches_r(key: &str, points: &ResidualPoints) {
    let r = common::reference("glmm_residuals.json", key);
    let fitted = numbers(&r["fitted"]);
    assert_relative(&format!("{key} fitted"), &points.fitted, &fitted);
    assert_near(
        &format!("{key} pearson"),
        &points.residual,
        &numbers(&r["pearson"]),
    );
    assert!(matches!(points.scale, ResidualScale::Pearson { .. }));
}

/// The SVG's text (checked by `figures::svg`) and its text elements' contents.
fn svg(dir: &Path, file: &str) -> (String, Vec<String>) {
    let text = crate::figures::svg(dir, file);
    let doc = roxmltree::Document::parse(&text).expect("checked by figures::svg");
    let texts = doc
        .descendants()
        .filter(|n| n.has_tag_name("text"))
        .filter_map(|n| n.text().map(|t| t.trim().to_string()))
        .collect();
    (text, texts)
}

/// The residual figure says what it draws: Pearson residuals against the fitted mean on the
/// response scale, never Gaussian raw residuals against fitted values.
fn labelled_as_pearson(texts: &[String], subtitle: &str) {
    let has = |want: &str| texts.iter().any(|t| t == want);
    assert!(has("Pearson residuals against fitted means"), "{texts:?}");
    assert!(has("Pearson residual") && has("fitted mean (response scale)"));
    assert!(has(subtitle), "{subtitle} not in {texts:?}");
    assert!(!has("residuals against fitted values") && !has("fitted value"));
}

const CBPP: &str = "factor period reference \"1\"\n";

#[test]
fn cbpp_binomial_draws_glmers_pearson_residuals_and_modes() {
    let dir = fresh_dir("cbpp");
    let source = format!(
        "{CBPP}incidence ~ 1 + period + (1 | herd)\nfamily binomial(trials = size)\nestimate ml\n"
    );
    let report = plotted("cbpp.tandem", &source, "lme4/cbpp.csv", &dir);
    let points = report
        .residual_figure
        .expect("the residual figure's numbers");
    // The proportion scale with the trials as weights, as residuals(glmer_fit, "pearson").
    matches_r("cbpp_binomial", &points);
    assert!(points.binned.is_empty(), "successes out of trials: no bins");
    assert_eq!(
        files(&dir),
        ["cbpp-ranef-herd.svg", "cbpp-residuals.svg"],
        "no binned residuals for an outcome out of trials"
    );
    let (residuals, texts) = svg(&dir, "cbpp-residuals.svg");
    assert_eq!(residuals.matches("<circle").count(), 56);
    labelled_as_pearson(
        &texts,
        "cbpp.tandem: 56 observations, binomial (logit link): Pearson residuals against fitted \
         mean (response scale)",
    );
    // The caterpillar of the GLMM's conditional modes: 15 herds, each with its interval, on
    // the logit scale.
    let (caterpillar, texts) = svg(&dir, "cbpp-ranef-herd.svg");
    assert_eq!(caterpillar.matches("<circle").count(), 15);
    let bars = (caterpillar.lines())
        .filter(|l| l.contains("<polyline") && l.contains("stroke=\"#1F77B4\""))
        .count();
    assert_eq!(bars, 15, "an interval bar per herd");
    assert!(texts.iter().any(|t| t == "conditional mode (logit scale)"));
    assert!(texts
        .iter()
        .any(|t| t == "cbpp.tandem: 15 levels, mode ± 1.96 conditional SD (95%)"));
    let _ = std::fs::remove_dir_all(&dir);
}

#[test]
fn a_poisson_count_with_an_offset_draws_its_pearson_residuals_and_draws() {
    let dir = fresh_dir("poisson");
    let source = format!(
        "{CBPP}let log_size = log(size)\nincidence ~ b0*1 + period + (1 | herd)\n\
         family poisson(offset = log_size)\nestimate ml\nbaseline_rate := exp(b0)\n\
         interval monte_carlo(draws = 2000, seed = 11)\n"
    );
    let report = plotted("counts.tandem", &source, "lme4/cbpp.csv", &dir);
    let r = common::reference("glmm_residuals.json", "cbpp_poisson_offset");
    common::assert_close("logLik", report.fit.loglik, number(&r["loglik"]), 1e-6);
    // μ includes the family's offset: exp(η + log size).
    matches_r(
        "cbpp_poisson_offset",
        report.residual_figure.as_ref().unwrap(),
    );
    assert_eq!(
        files(&dir),
        [
            "counts-baseline_rate.svg",
            "counts-ranef-herd.svg",
            "counts-residuals.svg"
        ]
    );
    let (_, texts) = svg(&dir, "counts-residuals.svg");
    labelled_as_pearson(
        &texts,
        "counts.tandem: 56 observations, poisson (log link): Pearson residuals against fitted \
         mean (response scale)",
    );
    let (_, texts) = svg(&dir, "counts-baseline_rate.svg");
    assert!(texts
        .iter()
        .any(|t| t == "Monte Carlo draws of baseline_rate"));
    assert!(texts.iter().any(|t| t == "counts.tandem: 2000 draws"));
    let (_, texts) = svg(&dir, "counts-ranef-herd.svg");
    assert!(texts.iter().any(|t| t == "conditional mode (log scale)"));
    let _ = std::fs::remove_dir_all(&dir);
}

#[test]
fn a_binary_outcome_also_draws_binned_residuals_as_arm_bins_them() {
    let dir = fresh_dir("binary");
    let source = "y ~ 1 + x + (1 + x | group)\nfamily binomial\nestimate ml\n";
    let report = plotted("slope.tandem", source, "synthetic/logistic_slope.csv", &dir);
    let points = report
        .residual_figure
        .expect("the residual figure's numbers");
    matches_r("logistic_slope", &points);
    let r = common::reference("glmm_residuals.json", "logistic_slope")["binned"].clone();
    // tandem's fitted means differ from R's by far less than the gap across any break.
    assert!(number(&r["smallest_gap_at_breaks"]) > 1e-5);
    let bins = &points.binned;
    assert_eq!(bins.len() as f64, number(&r["nclass"]));
    let n: Vec<f64> = bins.iter().map(|b| b.n as f64).collect();
    assert_eq!(n, numbers(&r["n"]), "observations per bin");
    let field = |f: fn(&tandem::infer::binned_residuals::ResidualBin) -> f64| {
        bins.iter().map(f).collect::<Vec<f64>>()
    };
    assert_relative(
        "bin fitted mean",
        &field(|b| b.fitted),
        &numbers(&r["xbar"]),
    );
    assert_near("bin residual", &field(|b| b.residual), &numbers(&r["ybar"]));
    assert_relative("bin lowest", &field(|b| b.lowest), &numbers(&r["x_lo"]));
    assert_relative("bin highest", &field(|b| b.highest), &numbers(&r["x_hi"]));
    assert_relative("bin band", &field(|b| b.band), &numbers(&r["band"]));
    assert_eq!(
        files(&dir),
        [
            "slope-binned-residuals.svg",
            "slope-ranef-group.svg",
            "slope-residuals.svg"
        ]
    );
    let (binned, texts) = svg(&dir, "slope-binned-residuals.svg");
    assert_eq!(binned.matches("<circle").count(), 26);
    let outside = bins.iter().filter(|b| b.residual.abs() > b.band).count();
    assert_eq!(binned.matches("fill=\"#D62728\"").count(), outside);
    let has = |want: &str| texts.iter().any(|t| t == want);
    assert!(has("binned residuals against fitted means"), "{texts:?}");
    assert!(has("fitted mean (response scale), bin average"));
    assert!(has("average residual (y − fitted mean)"));
    assert!(has(&format!(
        "slope.tandem: 720 observations in 26 bins; grey: ±2 SE if the model holds; {outside} \
         outside (red)"
    )));
    let (residuals, texts) = svg(&dir, "slope-residuals.svg");
    assert_eq!(residuals.matches("<circle").count(), 720);
    labelled_as_pearson(
        &texts,
        "slope.tandem: 720 observations, binomial (logit link): Pearson residuals against \
         fitted mean (response scale)",
    );
    // Two effects per group: a panel each, on the logit scale.
    let (caterpillar, _) = svg(&dir, "slope-ranef-group.svg");
    assert_eq!(caterpillar.matches("<circle").count(), 120);
    let _ = std::fs::remove_dir_all(&dir);
}
