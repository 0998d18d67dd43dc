//! Robust inference: CR0/CR2 cluster-robust SEs against clubSandwich (tests/reference/robust.json),
//! and the bootstraps' reproducibility.

use crate::common;

use common::{close, prepared, reference};
use tandem::design::{self, observation_rows};
use tandem::estimate;
use tandem::infer::cluster_robust::{cluster_robust, Adjustment, ClusterRobust};
use tandem::model::ModelSpec;
use tandem::prepare::AnalysisFrame;
use tandem::syntax::ast::Method;

fn robust((spec, frame): &(ModelSpec, AnalysisFrame), adjustment: Adjustment) -> ClusterRobust {
    let design = design::build(spec, frame).unwrap();
    let fit = estimate::fit(&design, Method::Reml).unwrap();
    let rows = observation_rows(spec, frame).unwrap();
    let names: Vec<String> = design.random.iter().map(|t| t.name.clone()).collect();
    cluster_robust(&rows, &fit, &names, adjustment).unwrap()
}

fn check_se(result: &ClusterRobust, key: &str) {
    let expected = reference("robust.json", key);
    let se = result.se();
    let want: Vec<f64> = expected["se"]
        .as_array()
        .unwrap()
        .iter()
        .map(|v| v.as_f64().unwrap())
        .collect();
    assert_eq!(se.len(), want.len(), "{key}");
    for (i, (got, want)) in se.iter().zip(&want).enumerate() {
        eprintln!(
            "{key} se[{i}]: {got} vs {want} (rel {:.1e})",
            (got - want).abs() / want
        );
        assert!(close(*got, *want, 1e-3), "{key} se[{i}]: {got} vs {want}");
    }
}

/// Orthodont with Male as Sex's reference level, and `model` (equations and settings).
fn orthodont(model: &str) -> (ModelSpec, AnalysisFrame) {
    prepared(
        &format!("factor Sex reference \"Male\"\n{model}"),
        "lme4/orthodont.csv",
    )
}

fn sleepstudy() -> (ModelSpec, AnalysisFrame) {
    prepared(SLEEPSTUDY, "lme4/sleepstudy.csv")
}

const SLEEPSTUDY: &str = "Reaction ~ Days + (Days | Subject)";
const ORTHODONT: &str = "distance ~ age + Sex + age:Sex + (age | Subject)";

#[test]
fn sleepstudy_cr2_matches_club_sandwich() {
    let result = robust(&sleepstudy(), Adjustment::Cr2);
    assert_eq!(result.cluster, "Subject");
    assert_eq!(result.clusters, 18);
    check_se(&result, "sleepstudy_reml_CR2");
}

#[test]
fn sleepstudy_cr0_matches_club_sandwich() {
    check_se(
        &robust(&sleepstudy(), Adjustment::Cr0),
        "sleepstudy_reml_CR0",
    );
}

#[test]
fn orthodont_cr2_matches_club_sandwich() {
    check_se(
        &robust(&orthodont(ORTHODONT), Adjustment::Cr2),
        "orthodont_reml_CR2",
    );
}

/// clubSandwich's Satterthwaite df, from R (clubSandwich 0.5.8):
/// `coef_test(fit, vcov = "CR2", test = "Satterthwaite")$df_Satt`.
#[test]
fn cr2_satterthwaite_df_matches_club_sandwich() {
    let sleep = robust(&sleepstudy(), Adjustment::Cr2);
    for df in &sleep.df {
        assert!(close(*df, 17.0, 1e-6), "sleepstudy df {df}");
    }
    let ortho = robust(&orthodont(ORTHODONT), Adjustment::Cr2);
    let want = [15.0, 15.0, 21.65346535, 21.65346535];
    for (got, want) in ortho.df.iter().zip(want) {
        assert!(close(*got, want, 1e-6), "orthodont df {got} vs {want}");
    }
}

/// `tandem fit --se cr2 --format json` on the model file: the JSON's SEs are clubSandwich's CR2
/// and its warnings say so.
#[test]
fn fit_with_se_cr2_reports_cr2() {
    use tandem::pipeline::FitOptions;
    let options = FitOptions {
        robust_se: true,
        ..FitOptions::default()
    };
    let json = common::fitted_value(
        &common::root().join("models/lme4/orthodont.tandem"),
        &options,
    );
    let expected = reference("robust.json", "orthodont_reml_CR2");
    let fixed = json["fixed"].as_array().unwrap();
    assert_eq!(fixed.len(), 4);
    for (row, (term, se)) in fixed.iter().zip(
        expected["term"]
            .as_array()
            .unwrap()
            .iter()
            .zip(expected["se"].as_array().unwrap()),
    ) {
        assert_eq!(row["term"], *term);
        let (got, want) = (row["se"].as_f64().unwrap(), se.as_f64().unwrap());
        assert!(close(got, want, 1e-3), "{term}: {got} vs {want}");
    }
    let warnings = json["fit"]["warnings"].as_array().unwrap();
    assert!(
        warnings.iter().any(|w| w
            .as_str()
            .unwrap()
            .contains("CR2 cluster-robust over Subject")),
        "{warnings:?}"
    );
}

mod bootstraps {
    use super::common::{on_threads, prepared};
    use tandem::design;
    use tandem::estimate;
    use tandem::infer::bootstrap::{bootstrap, Bootstrap, Replicate, Resampling, Settings};
    use tandem::model::ModelSpec;
    use tandem::parameters::ParameterTable;
    use tandem::prepare::AnalysisFrame;
    use tandem::syntax::ast::Method;

    const SLEEPSTUDY: &str = "Reaction ~ Days + (Days | Subject)";

    fn refit(spec: &ModelSpec, frame: &AnalysisFrame) -> Result<Replicate, String> {
        let design = design::build(spec, frame).map_err(|d| d[0].message.clone())?;
        let fit = estimate::fit(&design, Method::Reml).map_err(|d| d[0].message.clone())?;
        Ok(Replicate {
            values: ParameterTable::from_fit(spec, &design, &fit).estimates(),
            converged: fit.converged,
        })
    }

    fn run(threads: usize, resampling: impl Fn(&estimate::Fit) -> bool) -> Bootstrap {
        let (spec, frame) = prepared(SLEEPSTUDY, "lme4/sleepstudy.csv");
        let design = design::build(&spec, &frame).unwrap();
        let fit = estimate::fit(&design, Method::Reml).unwrap();
        let how = if resampling(&fit) {
            Resampling::Parametric(&fit)
        } else {
            Resampling::Clusters("Subject")
        };
        let settings = Settings {
            draws: 20,
            level: 0.95,
            seed: 7,
            progress: None,
        };
        on_threads(threads, || {
            bootstrap(&spec, &frame, how, &settings, 6, |f| refit(&spec, f)).unwrap()
        })
    }

    #[test]
    fn cluster_bootstrap_is_identical_for_one_and_two_threads() {
        let one = run(1, |_| false);
        let two = run(2, |_| false);
        assert_eq!(one, two);
        assert_eq!(one.failed + one.not_converged, 0);
        // The replicates differ from each other (the seed streams are not all the same).
        let days: Vec<f64> = one
            .replicates
            .iter()
            .map(|r| r.as_ref().unwrap().values[1])
            .collect();
        assert!(days.windows(2).all(|w| w[0] != w[1]), "{days:?}");
    }

    #[test]
    fn parametric_bootstrap_is_identical_for_one_and_two_threads() {
        let one = run(1, |_| true);
        let two = run(2, |_| true);
        assert_eq!(one, two);
        assert_eq!(one.failed + one.not_converged, 0);
        // Simulated data centre on the fitted model: the mean Days slope over replicates is
        // within 3 bootstrap SEs / sqrt(draws) of the estimate 10.467.
        let days: Vec<f64> = one
            .replicates
            .iter()
            .map(|r| r.as_ref().unwrap().values[1])
            .collect();
        let mean = days.iter().sum::<f64>() / days.len() as f64;
        let bound = 3.0 * one.sd[1] / (days.len() as f64).sqrt();
        assert!((mean - 10.4673).abs() < bound, "{mean} ± {bound}");
    }

    /// Each drawn batch is a new batch and brings three new samples, even when drawn twice:
    /// every replicate has 10 batches and 30 samples (`sample` is nested in `batch`).
    #[test]
    fn drawn_groups_get_new_ids_in_nested_columns() {
        let (spec, frame) = prepared(
            "strength ~ 1 + (1 | batch) + (1 | sample)",
            "lme4/pastes.csv",
        );
        let settings = Settings {
            draws: 12,
            level: 0.95,
            seed: 3,
            progress: None,
        };
        let result = bootstrap(
            &spec,
            &frame,
            Resampling::Clusters("batch"),
            &settings,
            2,
            |f| {
                let design = design::build(&spec, f).map_err(|d| d[0].message.clone())?;
                Ok(Replicate {
                    values: design
                        .random
                        .iter()
                        .map(|t| t.levels.len() as f64)
                        .collect(),
                    converged: true,
                })
            },
        )
        .unwrap();
        for r in &result.replicates {
            assert_eq!(r.as_ref().unwrap().values, vec![10.0, 30.0]);
        }
    }
}

/// `interval bootstrap(...)` through the pipeline with `--draws 16`: a percentile interval per
/// parameter-table row in the JSON, reproducible from the seed, changed by `--seed`.
#[test]
fn fit_reports_bootstrap_intervals() {
    use tandem::pipeline::FitOptions;
    for file in [
        "sleepstudy_bootstrap.tandem",
        "sleepstudy_parametric_bootstrap.tandem",
    ] {
        let path = common::root().join("tests/fixtures/robust").join(file);
        let run = |seed: Option<u64>| {
            let options = FitOptions {
                draws: Some(16),
                seed,
                ..FitOptions::default()
            };
            common::fitted_value(&path, &options)["bootstrap"].clone()
        };
        let first = run(None);
        assert_eq!(first["draws"], 16, "{file}");
        assert_eq!(first["seed"], 1, "{file}");
        assert_eq!(first["failed"], 0, "{file}");
        let parameters = first["parameters"].as_array().unwrap();
        assert_eq!(parameters.len(), 6, "{file}");
        let days = &parameters[1];
        assert_eq!(days["name"], "Reaction~Days");
        let (lower, upper) = (
            days["ci_lower"].as_f64().unwrap(),
            days["ci_upper"].as_f64().unwrap(),
        );
        // The estimate 10.467 lies inside; the interval is a few SEs (1.55) wide, not more.
        assert!(lower < 10.467 && 10.467 < upper, "{file}: {lower} {upper}");
        assert!(upper - lower < 4.0 * 2.0 * 1.55, "{file}: {lower} {upper}");
        assert_eq!(run(None), first, "{file}: same seed, same numbers");
        assert_ne!(run(Some(2)), first, "{file}: another seed, other numbers");
    }
}

/// A residual variance per sex (nlme's varIdent): the working covariance carries the class
/// weights. From R (nlme, clubSandwich 0.5.8):
/// `f <- lme(distance ~ age * Sex, random = ~1 | Subject, weights = varIdent(form = ~1 | Sex))`,
/// `coef_test(f, vcov = "CR2", test = "Satterthwaite")` and `vcovCR(f, type = "CR0")`.
#[test]
fn orthodont_varident_cr2_matches_club_sandwich_for_lme() {
    let (spec, frame) =
        orthodont("distance ~ age + Sex + age:Sex + (1 | Subject)\nresidual by Sex");
    let design = design::build(&spec, &frame).unwrap();
    let fit = estimate::fit(&design, Method::Reml).unwrap();
    let rows = observation_rows(&spec, &frame).unwrap();
    let names = vec!["Subject".to_string()];
    let cr2 = cluster_robust(&rows, &fit, &names, Adjustment::Cr2).unwrap();
    let cr0 = cluster_robust(&rows, &fit, &names, Adjustment::Cr0).unwrap();
    let se2 = [
        1.209900295048,
        0.101572916133,
        1.429116948638,
        0.121249143553,
    ];
    let df2 = [15.0, 15.0, 24.5647701693, 22.6317690294];
    let se0 = [
        1.1714809233235,
        0.0983475531518,
        1.3777850597666,
        0.1168673017988,
    ];
    for i in 0..4 {
        // The R values are printed to 12 significant digits; our optimum is nlme's to ~1e-9.
        assert!(
            close(cr2.se()[i], se2[i], 1e-8),
            "CR2 se[{i}] {}",
            cr2.se()[i]
        );
        assert!(close(cr2.df[i], df2[i], 1e-6), "CR2 df[{i}] {}", cr2.df[i]);
        assert!(
            close(cr0.se()[i], se0[i], 1e-8),
            "CR0 se[{i}] {}",
            cr0.se()[i]
        );
        eprintln!(
            "varIdent: CR2 se {:.3e} df {:.3e} CR0 se {:.3e} (relative differences)",
            (cr2.se()[i] - se2[i]).abs() / se2[i],
            (cr2.df[i] - df2[i]).abs() / df2[i],
            (cr0.se()[i] - se0[i]).abs() / se0[i]
        );
    }
}

/// Crossed random effects have no cluster that nests them: `--se cr2` says so and keeps the
/// model-based SEs.
#[test]
fn cr2_refuses_crossed_random_effects() {
    let (spec, frame) = prepared(
        "diameter ~ 1 + (1 | plate) + (1 | sample)",
        "lme4/penicillin.csv",
    );
    let design = design::build(&spec, &frame).unwrap();
    let fit = estimate::fit(&design, Method::Reml).unwrap();
    let rows = observation_rows(&spec, &frame).unwrap();
    let names: Vec<String> = design.random.iter().map(|t| t.name.clone()).collect();
    let why = cluster_robust(&rows, &fit, &names, Adjustment::Cr2).unwrap_err();
    assert!(why.0.contains("not nested in `sample`"), "{}", why.0);
}

/// The text and Markdown reports say in the fixed effects' header that the SEs are CR2, and show
/// the bootstrap section; the CR2 note is not repeated as a warning in the text.
#[test]
fn text_and_markdown_reports_name_cr2_and_the_bootstrap() {
    use tandem::cli::fit_file;
    use tandem::pipeline::{FitOptions, Format};
    let path = common::root().join("tests/fixtures/robust/sleepstudy_bootstrap.tandem");
    for format in [Format::Text, Format::Markdown] {
        let options = FitOptions {
            format,
            robust_se: true,
            draws: Some(8),
            ..FitOptions::default()
        };
        let outcome = fit_file(&path, &options);
        assert!(outcome.success, "{}", outcome.stderr);
        let out = &outcome.stdout;
        assert!(
            out.contains(
                "Fixed effects (standard errors: CR2 cluster-robust over Subject (18 clusters), \
                 Satterthwaite df (clubSandwich))"
            ),
            "{out}"
        );
        assert!(
            out.contains("Bootstrap (cluster bootstrap resampling Subject, 8 draws, seed 1; 0 failed, 0 not converged)"),
            "{out}"
        );
        assert!(!out.contains("warning: standard errors"), "{out}");
    }
}

/// The whole `fit` with a bootstrap gives the same JSON (bootstrap intervals and defined
/// quantities) in a 1-thread and a 2-thread pool.
#[test]
fn fit_with_bootstrap_is_identical_for_one_and_two_threads() {
    use tandem::pipeline::FitOptions;
    let path = common::root().join("tests/fixtures/robust/sleepstudy_bootstrap_defined.tandem");
    let run = |threads: usize| {
        let options = FitOptions {
            draws: Some(24),
            ..FitOptions::default()
        };
        let json = common::on_threads(threads, || common::fitted_value(&path, &options));
        (json["bootstrap"].clone(), json["defined"].clone())
    };
    let one = run(1);
    assert!(one.0["parameters"].as_array().is_some_and(|p| p.len() == 6));
    let defined = one.1.as_array().unwrap();
    assert_eq!(defined.len(), 2);
    assert_eq!(defined[0]["method"], "cluster bootstrap percentile");
    assert_eq!(one, run(2));
}

/// A definition's bootstrap interval comes from the same replicates as the parameters':
/// `week := 7*b` has exactly 7 times `b`'s percentile interval and bootstrap SD.
#[test]
fn defined_quantities_are_bootstrapped_with_the_parameters() {
    use tandem::pipeline::FitOptions;
    let path = common::root().join("tests/fixtures/robust/sleepstudy_bootstrap_defined.tandem");
    let options = FitOptions {
        draws: Some(40),
        ..FitOptions::default()
    };
    let json = common::fitted_value(&path, &options);
    let b = &json["bootstrap"]["parameters"][1];
    assert_eq!(b["name"], "b");
    let week = &json["defined"][0];
    assert_eq!(week["name"], "week");
    assert_eq!(week["draws"], 40);
    for key in ["estimate", "se", "ci_lower", "ci_upper"] {
        let (w, b) = (week[key].as_f64().unwrap(), b[key].as_f64().unwrap());
        assert!(close(w, 7.0 * b, 1e-12), "{key}: {w} vs 7 × {b}");
    }
}

/// With an indirect and a total effect defined, the mediation summary's rows (ACME, ADE, total,
/// proportion mediated) come from the same bootstrap replicates as the definitions.
#[test]
fn mediation_summary_is_bootstrapped() {
    use tandem::pipeline::FitOptions;
    let path = common::root().join("tests/fixtures/robust/mediation_bootstrap.tandem");
    let options = FitOptions {
        draws: Some(16),
        ..FitOptions::default()
    };
    let json = common::fitted_value(&path, &options);
    let defined = json["defined"].as_array().unwrap();
    let mediation = json["mediation"].as_array().unwrap();
    assert_eq!(mediation.len(), 4);
    for row in mediation {
        assert_eq!(row["method"], "cluster bootstrap percentile", "{row}");
        assert_eq!(row["draws"], 16, "{row}");
    }
    let same = |a: &serde_json::Value, b: &serde_json::Value| {
        for key in ["estimate", "se", "ci_lower", "ci_upper"] {
            assert_eq!(a[key], b[key], "{key}: {a} vs {b}");
        }
    };
    same(&mediation[0], &defined[0]); // ACME = indirect
    same(&mediation[2], &defined[1]); // total
                                      // The file defines total := indirect + cp, so ADE = total − indirect is cp in every
                                      // replicate: the same bootstrap SD up to rounding.
    let cp = json["bootstrap"]["parameters"]
        .as_array()
        .unwrap()
        .iter()
        .find(|p| p["name"] == "cp")
        .unwrap();
    let (ade, cp_se) = (
        mediation[1]["se"].as_f64().unwrap(),
        cp["se"].as_f64().unwrap(),
    );
    assert!(close(ade, cp_se, 1e-9), "{ade} vs {cp_se}");
}
