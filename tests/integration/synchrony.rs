//! Random coefficients as outcomes and as predictors (issue 5, items 1 and 2): the oxytocin
//! synchrony model against the independent joint-ML oracle (tests/reference/
//! synchrony_joint.json, copied from ../shared/reference), the random-coefficient equation
//! against lme4's cross-level interaction, the group-level-outcome check, and a simulation of
//! the estimate of b from the synthetic data's truth (models/data/synthetic/truth.json).

use std::path::Path;

use crate::common::{fit_errors, fitted_json, fitted_value, number, reference_file, root};
use tandem::pipeline::FitOptions;

use nalgebra::{DMatrix, Matrix2, Vector2};
use rand::{Rng, SeedableRng};
use rand_chacha::ChaCha8Rng;
use rand_distr::{Distribution, Normal, StandardNormal};
use rayon::prelude::*;
use serde_json::Value;
use tandem::data::{Column, DataTable};
use tandem::design;
use tandem::estimate::fit_latent;
use tandem::model::ModelSpec;
use tandem::parameters::ParameterTable;
use tandem::pipeline::prepare_model;
use tandem::prepare::AnalysisFrame;
use tandem::syntax::ast::Method;

fn reference() -> Value {
    reference_file("synchrony_joint.json")
}

fn fit_json(model: &Path) -> Value {
    fitted_json(&model.to_string_lossy(), None, &[])
}

/// The fixed row of `equation` and `term`.
fn fixed<'a>(report: &'a Value, equation: &str, term: &str) -> &'a Value {
    report["fixed"]
        .as_array()
        .unwrap()
        .iter()
        .find(|r| r["equation"] == equation && r["term"] == term)
        .unwrap_or_else(|| panic!("no fixed row {equation} ~ {term}"))
}

fn labelled<'a>(report: &'a Value, label: &str) -> &'a Value {
    report["fixed"]
        .as_array()
        .unwrap()
        .iter()
        .find(|r| r["label"] == label)
        .unwrap_or_else(|| panic!("no fixed row labelled {label}"))
}

fn close(what: &str, ours: f64, theirs: f64, relative: f64) {
    let difference = (ours - theirs).abs() / theirs.abs();
    eprintln!("{what}: tandem {ours:.8} vs reference {theirs:.8} (relative {difference:.1e})");
    assert!(
        difference <= relative,
        "{what}: tandem {ours} vs reference {theirs} (relative difference {difference:.2e} > \
         {relative:.0e})"
    );
}

#[test]
fn joint_fit_matches_the_likelihood_oracle() {
    let r = reference();
    let ours = fit_json(Path::new("models/seeds/ot_synchrony.tandem"));
    let loglik = number(&ours["fit"]["loglik"]);
    eprintln!(
        "logLik: tandem {loglik:.8} vs reference {:.8}",
        number(&r["logLik"])
    );
    assert!((loglik - number(&r["logLik"])).abs() <= 1e-3);
    assert_eq!(ours["fit"]["nobs"], r["nobs"]);
    assert_eq!(ours["fit"]["ngroups"]["dyad"], r["n_dyads"]);
    assert_eq!(ours["fit"]["converged"], true);

    let a = labelled(&ours, "a");
    let b = labelled(&ours, "b");
    assert_eq!(
        (&a["equation"], &a["term"]),
        (&"sync".into(), &"social_functioning".into())
    );
    assert_eq!(
        (&b["equation"], &b["term"]),
        (&"reduction".into(), &"sync".into())
    );
    close("a", number(&a["estimate"]), number(&r["a"]), 2e-3);
    close("b", number(&b["estimate"]), number(&r["b"]), 2e-3);
    close("se(a)", number(&a["se"]), number(&r["se_a"]), 3e-2);
    close("se(b)", number(&b["se"]), number(&r["se_b"]), 3e-2);
    // The remaining point estimates of the oracle, at the same optimum.
    let cp = labelled(&ours, "cp");
    close("cp", number(&cp["estimate"]), number(&r["c_prime"]), 2e-3);
    let g00 = fixed(&ours, "dt", "(Intercept)");
    close("g00", number(&g00["estimate"]), number(&r["g00"]), 2e-3);
    close(
        "g10",
        number(&labelled(&ours, "sync")["estimate"]),
        number(&r["g10"]),
        2e-3,
    );
    let b0 = fixed(&ours, "reduction", "(Intercept)");
    close("b0", number(&b0["estimate"]), number(&r["b0"]), 2e-3);

    let residual = ours["residual"].as_array().unwrap();
    let sd = |equation: &str| {
        number(&residual.iter().find(|x| x["equation"] == equation).unwrap()["sd"])
    };
    close("residual sd", sd("dt"), number(&r["residual_sd"]), 2e-3);
    close(
        "level-2 residual sd",
        sd("reduction"),
        number(&r["residual_sd_level2"]),
        2e-3,
    );
    let random = ours["random"].as_array().unwrap();
    let row = |term: &str| {
        random
            .iter()
            .find(|x| x["term1"] == term && x["term2"].is_null())
            .unwrap()
    };
    close(
        "sd(intercept)",
        number(&row("(Intercept)")["sd"]),
        number(&r["sd_intercept"]),
        2e-3,
    );
    close(
        "sd(sync)",
        number(&row("dp")["sd"]),
        number(&r["sd_sync"]),
        2e-3,
    );
    let cor = random.iter().find(|x| !x["cor"].is_null()).unwrap();
    close("cor", number(&cor["cor"]), number(&r["cor"]), 1e-2);
}

/// The synchrony model (models/seeds/ot_synchrony.tandem) for data that already hold its `let`
/// columns, as the simulated data do.
const SIMULATED_MODEL: &str = "dt ~ 1 + sync*dp + (1 + sync | dyad)
sync ~ 1 + a*social_functioning
reduction ~ 1 + b*sync + cp*social_functioning
indirect := a*b
estimate ml
interval monte_carlo(draws = 100000, level = 0.95, seed = 20231001)";

/// Simulated data through the front end, as `fit` would take them.
fn prepared_simulation(table: DataTable) -> Option<(ModelSpec, AnalysisFrame)> {
    let prepared = prepare_model("simulated", SIMULATED_MODEL, table, &FitOptions::default());
    prepared.ok().map(|p| (p.spec, p.frame))
}

#[test]
fn parameter_covariance_follows_the_table_and_gives_the_oracle_interval() {
    let r = reference();
    let model = root().join("models/seeds/ot_synchrony.tandem");
    let prepared = tandem::pipeline::prepare_model_file(&model, &FitOptions::default()).unwrap();
    let (spec, frame) = (prepared.spec, prepared.frame);
    let design = design::build(&spec, &frame).unwrap();
    let joint = fit_latent(&design, Method::Ml).unwrap();
    let table = ParameterTable::from_fit(&spec, &design, &joint.fit);
    // 6 fixed, 3 of Σ, 2 residual variances.
    assert_eq!(table.len(), 11);
    assert_eq!(joint.covariance.shape(), (11, 11));
    let (ia, ib) = (table.fixed("a").unwrap(), table.fixed("b").unwrap());
    for (i, f) in joint.fit.fixed.iter().enumerate() {
        assert_eq!(f.se, joint.covariance[(i, i)].sqrt());
    }
    assert!(table.variance("sync").is_some());
    let estimates = table.estimates();
    close(
        "indirect",
        estimates[ia] * estimates[ib],
        number(&r["indirect"]),
        3e-3,
    );

    // Monte Carlo interval of a·b from N(θ̂, V̂) restricted to (a, b), 200,000 draws: the
    // oracle's ends within 4% of its width (issue 5's acceptance for `--draws 200000`).
    let mean = Vector2::new(estimates[ia], estimates[ib]);
    let v = Matrix2::new(
        joint.covariance[(ia, ia)],
        joint.covariance[(ia, ib)],
        joint.covariance[(ib, ia)],
        joint.covariance[(ib, ib)],
    );
    let l = v.cholesky().unwrap().l();
    let mut rng = ChaCha8Rng::seed_from_u64(20231001);
    let mut products: Vec<f64> = (0..200_000)
        .map(|_| {
            let z = Vector2::new(rng.sample(StandardNormal), rng.sample(StandardNormal));
            let x = mean + l * z;
            x[0] * x[1]
        })
        .collect();
    products.sort_by(f64::total_cmp);
    let quantile = |p: f64| {
        let h = (products.len() - 1) as f64 * p;
        let (lo, frac) = (h.floor() as usize, h.fract());
        products[lo] + frac * (products[lo + 1] - products[lo])
    };
    let (lower, upper) = (quantile(0.025), quantile(0.975));
    let (r_lower, r_upper) = (
        number(&r["ci95_monte_carlo"][0]),
        number(&r["ci95_monte_carlo"][1]),
    );
    let width = r_upper - r_lower;
    eprintln!("MC 95% interval: tandem [{lower:.4}, {upper:.4}] vs reference [{r_lower:.4}, {r_upper:.4}]");
    assert!((lower - r_lower).abs() <= 0.04 * width);
    assert!((upper - r_upper).abs() <= 0.04 * width);
}

#[test]
fn random_coefficient_outcome_is_the_cross_level_interaction() {
    // lme4: lmer(dt ~ dp * social_functioning + (1 + dp | dyad)), REML (tests/reference/
    // reference.json, synchrony_a_path_reml): the fit R itself calls singular, so 1e-3.
    let text = std::fs::read_to_string(root().join("tests/reference/reference.json")).unwrap();
    let all: Value = serde_json::from_str(&text).unwrap();
    let r = &all["synchrony_a_path_reml"];
    let ours = fit_json(Path::new("tests/fixtures/synchrony/slope_outcome.tandem"));
    assert!((number(&ours["fit"]["loglik"]) - number(&r["logLik"])).abs() < 1e-6);
    let theirs = |term: &str| {
        r["fixed"]
            .as_array()
            .unwrap()
            .iter()
            .find(|x| x["term"] == term)
            .unwrap()
            .clone()
    };
    for (equation, term, r_term) in [
        ("dt", "(Intercept)", "(Intercept)"),
        ("dt", "dp", "dp"),
        ("dt", "social_functioning", "social_functioning"),
        ("sync", "social_functioning", "dp:social_functioning"),
    ] {
        let row = fixed(&ours, equation, term);
        let want = theirs(r_term);
        for field in ["estimate", "se"] {
            close(
                &format!("{equation} ~ {term} {field}"),
                number(&row[field]),
                number(&want[field]),
                1e-3,
            );
        }
        close(
            &format!("{equation} ~ {term} df"),
            number(&row["df"]),
            number(&want["df"]),
            1e-2,
        );
    }
    assert_eq!(labelled(&ours, "a")["term"], "social_functioning");
}

#[test]
fn group_level_outcome_varying_within_groups_is_an_error() {
    let errors = fit_errors(
        &root().join("tests/fixtures/synchrony/outcome_varies.tandem"),
        &FitOptions::default(),
    );
    assert!(
        errors.iter().any(|d| d.message.contains(
            "`reduction` varies within `dyad`, but this equation is about the random coefficient `sync`"
        )),
        "{errors:?}"
    );
}

#[test]
fn fixed_coefficient_in_the_slope_regression_is_refused_with_a_latent_predictor() {
    let errors = fit_errors(
        &root().join("tests/fixtures/synchrony/fixed_slope_coefficient.tandem"),
        &FitOptions::default(),
    );
    assert!(
        errors.iter().any(|d| d.message.contains(
            "a fixed coefficient in the regression of a random coefficient used as a predictor \
             is not supported yet"
        )),
        "{errors:?}"
    );
}

/// truth.json's `ot_dyads` (a = 0.3, b = 8, c' = 1, mean synchrony 0.2, residual SD of
/// synchrony 0.25, SD of the intercept 0.3, residual SD 0.4, level-2 residual SD 4); not in
/// truth.json and chosen like the data: 37 dyads of 7 sessions, g00 = 0.25, b0 = 5, independent
/// random intercept and slope, dp ~ N(0.5, 1), social functioning ~ N(0, 0.9).
const DYADS: usize = 37;
const SESSIONS: usize = 7;
const A: f64 = 0.3;
const B: f64 = 8.0;
const C_PRIME: f64 = 1.0;
const G10: f64 = 0.2;
const SD_SLOPE: f64 = 0.25;
const SD_INTERCEPT: f64 = 0.3;
const RESIDUAL_SD: f64 = 0.4;
const RESIDUAL_SD_LEVEL2: f64 = 4.0;
const G00: f64 = 0.25;
const B0: f64 = 5.0;

/// A simulated data set: columns `dyad`, `dp`, `dt`, `reduction`, `social_functioning`.
fn simulate(seed: u64, dyads: usize) -> DataTable {
    let mut rng = ChaCha8Rng::seed_from_u64(seed);
    let normal =
        |rng: &mut ChaCha8Rng, mean: f64, sd: f64| Normal::new(mean, sd).unwrap().sample(rng);
    let n = dyads * SESSIONS;
    let (mut dyad, mut dp, mut dt, mut reduction, mut w) = (
        Vec::with_capacity(n),
        Vec::with_capacity(n),
        Vec::with_capacity(n),
        Vec::with_capacity(n),
        Vec::with_capacity(n),
    );
    for j in 0..dyads {
        let wj = normal(&mut rng, 0.0, 0.9);
        let u0 = normal(&mut rng, 0.0, SD_INTERCEPT);
        let slope = G10 + A * wj + normal(&mut rng, 0.0, SD_SLOPE);
        let y = B0 + B * slope + C_PRIME * wj + normal(&mut rng, 0.0, RESIDUAL_SD_LEVEL2);
        for _ in 0..SESSIONS {
            let x = normal(&mut rng, 0.5, 1.0);
            dyad.push(j as f64);
            dp.push(x);
            dt.push(G00 + u0 + slope * x + normal(&mut rng, 0.0, RESIDUAL_SD));
            reduction.push(y);
            w.push(wj);
        }
    }
    let columns = [
        ("dyad", dyad),
        ("dp", dp),
        ("dt", dt),
        ("reduction", reduction),
        ("social_functioning", w),
    ];
    DataTable::from_numeric(
        "simulated",
        columns.map(|(n, v)| (n.to_string(), v)).to_vec(),
    )
}

/// The fits of `replicates` simulated data sets of `dyads` dyads: (b̂, se(b̂)) of each fit that
/// converged with a finite SE, and the number of the others.
fn simulate_b(replicates: u64, dyads: usize) -> (Vec<(f64, f64)>, usize) {
    let results: Vec<Option<(f64, f64)>> = (0..replicates)
        .into_par_iter()
        .map(|r| {
            let (spec, frame) = prepared_simulation(simulate(1000 + r, dyads))?;
            let design = design::build(&spec, &frame).ok()?;
            let joint = fit_latent(&design, Method::Ml).ok()?;
            let b = joint
                .fit
                .fixed
                .iter()
                .find(|f| f.label.as_deref() == Some("b"))?;
            (joint.fit.converged && b.se.is_finite()).then_some((b.estimate, b.se))
        })
        .collect();
    let ok: Vec<(f64, f64)> = results.iter().flatten().copied().collect();
    let failed = results.len() - ok.len();
    (ok, failed)
}

/// Bias, spread and Wald coverage of b̂ over the simulated fits.
struct Recovery {
    bias: f64,
    monte_carlo_se: f64,
    median: f64,
    coverage: f64,
}

fn recovery(fits: &[(f64, f64)], replicates: u64, failed: usize, dyads: usize) -> Recovery {
    let n = fits.len() as f64;
    let mean = fits.iter().map(|(b, _)| b).sum::<f64>() / n;
    let sd = (fits.iter().map(|(b, _)| (b - mean).powi(2)).sum::<f64>() / (n - 1.0)).sqrt();
    let mut sorted: Vec<f64> = fits.iter().map(|(b, _)| *b).collect();
    sorted.sort_by(f64::total_cmp);
    let median = sorted[sorted.len() / 2];
    let mean_se = fits.iter().map(|(_, se)| se).sum::<f64>() / n;
    let coverage = fits
        .iter()
        .filter(|(b, se)| (b - B).abs() <= 1.959_963_985 * se)
        .count() as f64
        / n;
    let r = Recovery {
        bias: mean - B,
        monte_carlo_se: sd / n.sqrt(),
        median,
        coverage,
    };
    eprintln!(
        "{replicates} data sets of {dyads} dyads ({failed} failed): mean b̂ = {mean:.3} (truth \
         {B}), bias {:.3} (Monte Carlo SE {:.3}), median {median:.3}, SD of b̂ {sd:.3}, mean SE \
         {mean_se:.3}, Wald 95% coverage {coverage:.3}",
        r.bias, r.monte_carlo_se
    );
    r
}

/// The estimate of b in the truth's design (37 dyads of 7 sessions). b̂ is in effect a ratio
/// (the outcome's covariance with the latent slope over the slope's variance, which 37 dyads
/// estimate with a relative SE near 0.3, the slope's reliability being about 0.73), so ML has a
/// small-sample upward bias of order 1/n and a long right tail. Measured once with this code:
/// 1000 data sets (`SIM_REPS=1000`): mean 8.50 (bias +0.50, Monte Carlo SE 0.13), median 8.08,
/// Wald coverage 0.942; 60 data sets of 500 dyads (`SIM_DYADS=500 SIM_REPS=60`): bias −0.06
/// (SE 0.11), coverage 0.967 — consistent, the bias vanishing with n. So the test asks for
/// "approximately unbiased" at n = 37: mean within 15% of b, median within 10%, Wald coverage
/// between 0.90 and 0.99, and at most 2% of fits without a converged optimum or an SE.
#[test]
fn estimate_of_b_is_approximately_unbiased_in_simulation() {
    let dyads: usize = std::env::var("SIM_DYADS").map_or(DYADS, |v| v.parse().unwrap());
    let replicates: u64 = std::env::var("SIM_REPS").map_or(200, |v| v.parse().unwrap());
    let started = std::time::Instant::now();
    let (fits, failed) = simulate_b(replicates, dyads);
    eprintln!("{:.1} s", started.elapsed().as_secs_f64());
    let r = recovery(&fits, replicates, failed, dyads);
    assert!(
        failed as f64 <= 0.02 * replicates as f64,
        "{failed} fits failed"
    );
    assert!(r.bias.abs() <= 0.15 * B, "bias {}", r.bias);
    assert!((r.median - B).abs() <= 0.1 * B, "median {}", r.median);
    assert!(
        (0.9..=0.99).contains(&r.coverage),
        "coverage {}",
        r.coverage
    );
    assert!(r.monte_carlo_se > 0.0);
}

#[test]
fn groups_missing_an_outcome_or_level_one_rows_still_count() {
    // A group without a level-2 observation still contributes its level-1 rows; the fit uses
    // one observation of the outcome per remaining group.
    let mut table = simulate(7, DYADS);
    if let Column::Numeric(y) = &mut table.columns[3] {
        for v in y.iter_mut().take(SESSIONS) {
            *v = f64::NAN;
        }
    }
    let (spec, frame) = prepared_simulation(table).expect("prepared");
    let design = design::build(&spec, &frame).unwrap();
    let latent = design.latent.as_ref().unwrap();
    assert_eq!(latent.nobs(), DYADS - 1);
    let joint = fit_latent(&design, Method::Ml).unwrap();
    assert_eq!(joint.fit.nobs, DYADS * SESSIONS);
    assert!(joint.fit.converged);
    let table = ParameterTable::from_fit(&spec, &design, &joint.fit);
    assert_eq!(joint.covariance.nrows(), table.len());
    assert!(joint
        .covariance
        .diagonal()
        .iter()
        .all(|v| v.is_finite() && *v > 0.0));
    let _: &DMatrix<f64> = &joint.covariance;

    // A dyad without level-1 observations (dt missing throughout) still has its outcome, which
    // the fit uses through the outcome's marginal distribution.
    let mut table = simulate(8, DYADS);
    if let Column::Numeric(dt) = &mut table.columns[2] {
        for v in dt.iter_mut().skip(SESSIONS).take(SESSIONS) {
            *v = f64::NAN;
        }
    }
    let (spec, frame) = prepared_simulation(table).expect("prepared");
    let design = design::build(&spec, &frame).unwrap();
    assert_eq!(design.random[0].levels.len(), DYADS - 1);
    assert_eq!(design.latent.as_ref().unwrap().nobs(), DYADS);
    let joint = fit_latent(&design, Method::Ml).unwrap();
    assert!(joint.fit.converged);
    assert_eq!(joint.fit.nobs, (DYADS - 1) * SESSIONS);
    assert_eq!(joint.fit.ngroups, [("dyad".to_string(), DYADS)]);
    assert_eq!(joint.fit.random_effects[0].nrows(), DYADS);
}

/// A variant of the model against tests/reference/synchrony_joint_variants.json
/// (tests/reference/scripts/synchrony_joint_variants.R: the dense per-dyad normal likelihood,
/// nlminb then BFGS from a generic start).
fn check_variant(key: &str, model: &str, labels: &[(&str, &str)]) {
    let text =
        std::fs::read_to_string(root().join("tests/reference/synchrony_joint_variants.json"))
            .unwrap();
    let all: Value = serde_json::from_str(&text).unwrap();
    let r = &all[key];
    let ours = fit_json(Path::new(model));
    let loglik = number(&ours["fit"]["loglik"]);
    eprintln!(
        "{key} logLik: tandem {loglik:.9} vs R {:.9}",
        number(&r["logLik"])
    );
    assert!((loglik - number(&r["logLik"])).abs() <= 1e-6);
    for (label, name) in labels {
        close(
            label,
            number(&labelled(&ours, label)["estimate"]),
            number(&r[name]),
            1e-4,
        );
    }
    for (equation, key) in [("dt", "g00"), ("reduction", "b0")] {
        close(
            key,
            number(&fixed(&ours, equation, "(Intercept)")["estimate"]),
            number(&r[key]),
            1e-4,
        );
    }
    let random = ours["random"].as_array().unwrap();
    let variance = |term: &str| {
        number(
            &random
                .iter()
                .find(|x| x["term1"] == term && x["term2"].is_null())
                .unwrap()["variance"],
        )
    };
    close(
        "var(intercept)",
        variance("(Intercept)"),
        number(&r["var_intercept"]),
        1e-4,
    );
    close("var(sync)", variance("dp"), number(&r["var_sync"]), 1e-4);
    match random.iter().find(|x| !x["covariance"].is_null()) {
        Some(cov) => close("cov", number(&cov["covariance"]), number(&r["cov"]), 1e-4),
        None => assert_eq!(number(&r["cov"]), 0.0),
    }
    let residual = ours["residual"].as_array().unwrap();
    let variance = |equation: &str| {
        number(&residual.iter().find(|x| x["equation"] == equation).unwrap()["variance"])
    };
    close("σ²", variance("dt"), number(&r["residual_variance"]), 1e-4);
    close(
        "ψ",
        variance("reduction"),
        number(&r["residual_variance_level2"]),
        1e-4,
    );
}

#[test]
fn several_predictors_of_the_slope_match_the_written_out_likelihood() {
    check_variant(
        "two_predictors",
        "tests/fixtures/synchrony/two_predictors.tandem",
        &[
            ("a", "a"),
            ("a2", "a2"),
            ("b", "b"),
            ("cp", "c_prime"),
            ("sync", "g10"),
        ],
    );
}

#[test]
fn uncorrelated_intercept_and_slope_match_the_written_out_likelihood() {
    // `(1 + sync || dyad)` is two random terms on `dyad`: one block per dyad, Σ diagonal.
    check_variant(
        "uncorrelated",
        "tests/fixtures/synchrony/uncorrelated.tandem",
        &[("a", "a"), ("b", "b"), ("cp", "c_prime"), ("sync", "g10")],
    );
}

/// The dyads' conditional modes and conditional SDs (`--ranef`) against the posterior of each
/// dyad's (intercept, synchrony) computed directly in R from its stacked observations (the dt
/// rows and the dyad's reduction, whose "random-effect row" is b on the slope) at the oracle's
/// estimates (tests/reference/synchrony_ranef.json). tandem's own estimates differ from the
/// oracle's by about 1e-6, hence 1e-4.
#[test]
fn dyad_conditional_modes_and_sds_match_the_direct_posterior() {
    let options = FitOptions {
        ranef: true,
        draws: Some(1000),
        ..FitOptions::default()
    };
    let report = fitted_value(&root().join("models/seeds/ot_synchrony.tandem"), &options);
    let ours = report["ranef"].as_array().expect("a ranef list");
    let path = root().join("tests/reference/synchrony_ranef.json");
    let theirs: Value = serde_json::from_str(&std::fs::read_to_string(path).unwrap()).unwrap();
    let theirs = theirs.as_array().unwrap();
    assert_eq!(ours.len(), theirs.len());
    for t in theirs {
        let o = ours
            .iter()
            .find(|o| o["level"] == t["level"] && o["term"] == t["term"])
            .unwrap_or_else(|| panic!("no conditional mode for {t}"));
        assert_eq!(o["group"], "dyad");
        let (sd, value) = (number(&t["sd"]), number(&t["value"]));
        let mode_error = (number(&o["value"]) - value).abs() / value.abs().max(sd);
        assert!(
            mode_error < 1e-4,
            "{t}: mode {} ({mode_error:.1e})",
            o["value"]
        );
        let sd_error = (number(&o["sd"]) - sd).abs() / sd;
        assert!(sd_error < 1e-4, "{t}: sd {} ({sd_error:.1e})", o["sd"]);
    }
}
