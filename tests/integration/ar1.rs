//! AR(1) residuals within series (`residual ar1 within COLUMN`, nlme's `corAR1`) end to end,
//! through the real front end: nlme's Ovary with random effects (`lme`, REML and ML) and without
//! (`gls`, REML and ML), and a simulated random-slope series model with dropped rows (REML and
//! ML), against tests/reference/ar1.json (tests/reference/scripts/ar1.R); with a residual
//! variance per class that changes within series (`residual by`, nlme's `varIdent`), `lme` and
//! `gls`, against tests/reference/ar1_classes.json (tests/reference/scripts/ar1_classes.R).
//! Tolerances as the issue sets them: logLik 1e-6 absolute, φ, fixed effects and the classes'
//! residual SDs 1e-4 relative, SEs and random-effect SDs 1e-3 relative. The joint covariance of
//! all parameters with φ as a row, against numDeriv's Hessian of the likelihood written out in R
//! (tests/reference/ar1_information.json from scripts/ar1_information.R; as
//! tests/integration/information.rs holds it: 1e-5 of the SDs, SEs 1e-4). Also: the sums do not
//! depend on where the rows are cut into chunks, the gradient is exact, a series that crosses
//! levels of a grouping factor is refused, located. It must not test other residual structures.

use serde_json::Value;

use crate::common::{self, assert_close as close, number};
use tandem::syntax::ast::Method;

const OVARY: &str = "nlme/ovary.csv";
const SLOPE: &str = "synthetic/ar1_slope.csv";
const CLASSES: &str = "synthetic/ar1_classes.csv";

const OVARY_LME: &str = "group Mare
order Time
let s = sin(2 * pi * Time)
let c = cos(2 * pi * Time)
follicles ~ 1 + s + c + (1 + s || Mare)
residual ar1 within Mare";

const OVARY_GLS: &str = "order Time
let s = sin(2 * pi * Time)
let c = cos(2 * pi * Time)
follicles ~ 1 + s + c
residual ar1 within Mare";

const SLOPE_LME: &str = "order t
y ~ 1 + x + (1 + x | id)
residual ar1 within id";

/// The model text with `estimate` for `method`, fitted to `data` through the library API: the
/// report as the JSON contract has it. It must converge.
fn fitted(source: &str, data: &str, method: Method) -> Value {
    let source = format!("{source}\n{}\n", common::estimate(method));
    let table = common::data_table(data);
    let fitted = tandem::fit("ar1.tandem", &source, table, &tandem::FitOptions::default())
        .unwrap_or_else(|e| panic!("{}", tandem::diagnostics::render(&e, None)));
    let report = &fitted.fits[0].report;
    assert!(report.fit.converged, "{:?}", report.fit.warnings);
    serde_json::to_value(report).unwrap()
}

/// Every number of the reference `key` of ar1.json that the model has (`check_reference`).
fn check_against(ours: &Value, key: &str, names: &[(&str, &str)]) {
    check_reference(ours, "ar1.json", key, names);
}

/// Every number of the reference `key` of `file` that the model has: logLik, φ, σ (or each
/// class's residual SD), the fixed effects (terms named as R names `sin(2 * pi * Time)`: ours
/// are `s` and `c`), the random SDs and correlation, and the counts.
fn check_reference(ours: &Value, file: &str, key: &str, names: &[(&str, &str)]) {
    let r = common::reference(file, key);
    let loglik = number(&ours["fit"]["loglik"]);
    let theirs = number(&r["logLik"]);
    assert!(
        (loglik - theirs).abs() < 1e-6,
        "{key} logLik: tandem {loglik} vs R {theirs}"
    );
    let residual = &ours["residual"][0];
    assert!(residual["ar1_within"].as_str().is_some(), "{residual}");
    close(
        &format!("{key} phi"),
        number(&residual["correlation"]),
        number(&r["phi"]),
        1e-4,
    );
    match r["class_sd"].as_object() {
        Some(classes) => check_class_sds(ours, key, classes),
        None => close(
            &format!("{key} sigma"),
            number(&residual["sd"]),
            number(&r["sigma"]),
            1e-3,
        ),
    }
    assert_eq!(ours["fit"]["nobs"], r["nobs"], "{key} nobs");
    let rename = |term: &str| {
        names
            .iter()
            .find(|(theirs, _)| *theirs == term)
            .map_or(term.to_string(), |(_, ours)| ours.to_string())
    };
    // nlme's ML `vcov` (lme and gls) scales by N/(N − p); tandem's ML standard errors use the
    // ML σ̂ as lme4's do (as tests/integration/dyadic.rs compares them too).
    let n = number(&r["nobs"]);
    let p = r["fixed"].as_array().unwrap().len() as f64;
    let se_scale = if r["method"] == "ML" {
        (n / (n - p)).sqrt()
    } else {
        1.0
    };
    for t in r["fixed"].as_array().unwrap() {
        let term = rename(t["term"].as_str().unwrap());
        let row = ours["fixed"]
            .as_array()
            .unwrap()
            .iter()
            .find(|f| f["term"] == term.as_str())
            .unwrap_or_else(|| panic!("{key}: no fixed term {term}"));
        close(
            &format!("{key} {term}"),
            number(&row["estimate"]),
            number(&t["estimate"]),
            1e-4,
        );
        let se = number(&row["se"]) * se_scale;
        close(&format!("{key} {term} se"), se, number(&t["se"]), 1e-3);
    }
    if let Some(sds) = r["random_sd"].as_object() {
        for (term, sd) in sds {
            let term = rename(term);
            let row = ours["random"]
                .as_array()
                .unwrap()
                .iter()
                .find(|x| x["term1"] == term.as_str() && x["sd"].is_number())
                .unwrap_or_else(|| panic!("{key}: no random SD of {term}"));
            close(
                &format!("{key} sd {term}"),
                number(&row["sd"]),
                number(sd),
                1e-3,
            );
        }
    }
    if let Some(cor) = r["random_cor"].as_f64() {
        let row = ours["random"]
            .as_array()
            .unwrap()
            .iter()
            .find(|x| x["cor"].is_number())
            .unwrap_or_else(|| panic!("{key}: no random correlation"));
        close(&format!("{key} random cor"), number(&row["cor"]), cor, 1e-3);
    }
}

/// Each class's residual SD (σ times nlme's varIdent ratio) on its `residual` row, every row
/// carrying the series column and φ.
fn check_class_sds(ours: &Value, key: &str, classes: &serde_json::Map<String, Value>) {
    let rows = ours["residual"].as_array().unwrap();
    assert_eq!(rows.len(), classes.len(), "{key}: {rows:?}");
    let phi = &rows[0]["correlation"];
    for (class, sd) in classes {
        let row = rows
            .iter()
            .find(|x| x["class"] == class.as_str())
            .unwrap_or_else(|| panic!("{key}: no residual row of class {class}"));
        assert_eq!(&row["correlation"], phi, "{key}: {row}");
        assert!(row["ar1_within"].as_str().is_some(), "{key}: {row}");
        close(
            &format!("{key} residual sd {class}"),
            number(&row["sd"]),
            number(sd),
            1e-4,
        );
    }
}

const OVARY_NAMES: &[(&str, &str)] = &[("sin(2 * pi * Time)", "s"), ("cos(2 * pi * Time)", "c")];

#[test]
fn ovary_lme_matches_nlme_reml_and_ml() {
    check_against(
        &fitted(OVARY_LME, OVARY, Method::Reml),
        "ovary_ar1_reml",
        OVARY_NAMES,
    );
    check_against(
        &fitted(OVARY_LME, OVARY, Method::Ml),
        "ovary_ar1_ml",
        OVARY_NAMES,
    );
}

#[test]
fn ovary_gls_matches_nlme_reml_and_ml() {
    check_against(
        &fitted(OVARY_GLS, OVARY, Method::Reml),
        "ovary_gls_reml",
        OVARY_NAMES,
    );
    check_against(
        &fitted(OVARY_GLS, OVARY, Method::Ml),
        "ovary_gls_ml",
        OVARY_NAMES,
    );
}

#[test]
fn random_slope_series_with_dropped_rows_matches_nlme() {
    check_against(
        &fitted(SLOPE_LME, SLOPE, Method::Reml),
        "ar1_slope_reml",
        &[],
    );
    check_against(&fitted(SLOPE_LME, SLOPE, Method::Ml), "ar1_slope_ml", &[]);
}

/// The same model without AR(1): the reference's independent-residual logLik (what AR(1) gains).
#[test]
fn ovary_without_ar1_is_the_independent_fit() {
    let source = OVARY_LME.replace("residual ar1 within Mare", "");
    let ours = fitted(&source, OVARY, Method::Reml);
    let theirs = number(&common::reference("ar1.json", "ovary_iid_reml")["logLik"]);
    assert!((number(&ours["fit"]["loglik"]) - theirs).abs() < 1e-6);
}

/// Pairs of consecutive rows across a chunk boundary count once: the deviance from chunks of 7
/// rows is the one-chunk deviance (to rounding of the sums' order), for any thread count.
#[test]
fn chunk_boundaries_do_not_change_the_sums() {
    let (spec, frame) = common::prepared(&format!("{SLOPE_LME}\nestimate reml"), SLOPE);
    let whole = tandem::design::build_in_chunks(&spec, &frame, 1 << 20).unwrap();
    let cut = tandem::design::build_in_chunks(&spec, &frame, 7).unwrap();
    let a = whole.stats.ar1.as_ref().unwrap();
    let b = cut.stats.ar1.as_ref().unwrap();
    assert_eq!(a.nseries, 40);
    assert_eq!(a.nseries, b.nseries);
    for (x, y) in a.xy.iter().flatten().zip(b.xy.iter().flatten()) {
        assert!(common::close(*y, *x, 1e-12), "{x} vs {y}");
    }
    let dw = tandem::estimate::ProfiledDeviance::new(&whole, Method::Reml);
    let dc = tandem::estimate::ProfiledDeviance::new(&cut, Method::Reml);
    let x = [0.9, 0.1, 0.3, 0.5];
    assert!(common::close(dc.deviance(&x), dw.deviance(&x), 1e-12));
    let (one, two) = (
        common::on_threads(1, || cut.stats.clone()),
        common::on_threads(2, || {
            tandem::design::build_in_chunks(&spec, &frame, 7)
                .unwrap()
                .stats
        }),
    );
    assert_eq!(one, two);
}

/// The exact gradient of `dev` at `x` against central differences of its criterion.
fn gradient_matches_differences(dev: &tandem::estimate::ProfiledDeviance, x: &[f64]) {
    let (_, g) = dev.criterion_gradient(x).unwrap();
    for i in 0..x.len() {
        let h = 1e-5;
        let (mut up, mut down) = (x.to_vec(), x.to_vec());
        up[i] += h;
        down[i] -= h;
        let numeric = (dev.deviance(&up) - dev.deviance(&down)) / (2.0 * h);
        assert!(
            (g[i] - numeric).abs() < 1e-5 * numeric.abs().max(1.0),
            "parameter {i}: exact {} vs numeric {numeric}",
            g[i]
        );
    }
}

/// The exact gradient (ρ included) agrees with central differences of the criterion.
#[test]
fn gradient_includes_phi_exactly() {
    for method in [Method::Reml, Method::Ml] {
        let (spec, frame) =
            common::prepared(&format!("{SLOPE_LME}\n{}", common::estimate(method)), SLOPE);
        let design = tandem::design::build(&spec, &frame).unwrap();
        let dev = tandem::estimate::ProfiledDeviance::new(&design, method);
        gradient_matches_differences(&dev, &[0.8, 0.15, 0.25, 0.6]);
    }
}

/// A series that moves from one level of a grouping factor to another is refused, located at the
/// random term, naming the series column and the factor.
#[test]
fn a_series_crossing_levels_is_refused() {
    let source = "let half = Time > 0.5
follicles ~ 1 + Time + (1 | half)
residual ar1 within Mare
estimate reml";
    let table = common::data_table(OVARY);
    let errors = match tandem::fit(
        "cross.tandem",
        source,
        table,
        &tandem::FitOptions::default(),
    ) {
        Ok(_) => panic!("fitted"),
        Err(e) => e,
    };
    let text = tandem::diagnostics::render(&errors, None);
    assert!(
        text.contains("a series of `Mare` has rows in two levels of `half`"),
        "{text}"
    );
    assert!(matches!(
        errors[0].location,
        tandem::diagnostics::Location::Source(_)
    ));
}

/// The library model prints nlme's numbers (REML).
#[test]
fn library_model_ovary_ar1() {
    let ours = common::fitted_json("models/nlme/ovary_ar1.tandem", None, &[]);
    check_against(&ours, "ovary_ar1_reml", OVARY_NAMES);
}

/// A residual variance per class (the class changes within series) with AR(1) within series,
/// in one statement; `residual by` and `residual ar1 within` as two statements are the same model.
const CLASSES_LME: &str = "order t
y ~ 1 + x + (1 + x | id)
residual by class ar1 within id";

const CLASSES_GLS: &str = "order t
y ~ 1 + x
residual by class
residual y ar1 within id";

#[test]
fn classes_with_random_slope_match_nlme_reml_and_ml() {
    for (method, key) in [(Method::Reml, "lme_reml"), (Method::Ml, "lme_ml")] {
        let ours = fitted(CLASSES_LME, CLASSES, method);
        check_reference(&ours, "ar1_classes.json", key, &[]);
    }
}

#[test]
fn classes_without_random_terms_match_gls_reml_and_ml() {
    for (method, key) in [(Method::Reml, "gls_reml"), (Method::Ml, "gls_ml")] {
        let ours = fitted(CLASSES_GLS, CLASSES, method);
        check_reference(&ours, "ar1_classes.json", key, &[]);
    }
}

/// One statement or two give the same design; the sums keep the end rows per class and the
/// consecutive pairs per pair of classes, as many pairs of two classes as R counts, and they
/// do not depend on where the rows are cut into chunks.
#[test]
fn class_sums_are_keyed_by_class_and_by_pair() {
    use tandem::design::SeriesClass::{End, Lag};
    let (spec, frame) = common::prepared(&format!("{CLASSES_LME}\nestimate reml"), CLASSES);
    let whole = tandem::design::build(&spec, &frame).unwrap();
    let two = CLASSES_LME.replace(
        "residual by class ar1 within id",
        "residual ar1 within id\nresidual y by class",
    );
    let (spec2, frame2) = common::prepared(&format!("{two}\nestimate reml"), CLASSES);
    assert_eq!(
        tandem::design::build(&spec2, &frame2).unwrap().stats,
        whole.stats
    );

    let a = whole.stats.ar1.as_ref().unwrap();
    let expected = [
        End(0),
        End(1),
        End(2),
        Lag(0, 0),
        Lag(0, 1),
        Lag(0, 2),
        Lag(1, 1),
        Lag(1, 2),
        Lag(2, 2),
    ];
    assert_eq!(a.classes, expected);
    // The intercept's entry of a pair's symmetrised sum counts the pair twice.
    let mixed: f64 = a
        .classes
        .iter()
        .zip(&a.xy)
        .filter(|(c, _)| matches!(c, Lag(c, d) if c != d))
        .map(|(_, xy)| xy[0] / 2.0)
        .sum();
    let r = common::reference_file("ar1_classes.json");
    assert_eq!(mixed, number(&r["mixed_class_pairs"]));
    let ends: f64 = a.xy[..3].iter().map(|xy| xy[0]).sum();
    assert_eq!(ends, 2.0 * a.nseries as f64);

    let cut = tandem::design::build_in_chunks(&spec, &frame, 7).unwrap();
    let b = cut.stats.ar1.as_ref().unwrap();
    assert_eq!(a.classes, b.classes);
    for (x, y) in a.xy.iter().flatten().zip(b.xy.iter().flatten()) {
        assert!(common::close(*y, *x, 1e-12), "{x} vs {y}");
    }
}

/// The exact gradient along θ, the classes' log δ and φ agrees with central differences.
#[test]
fn gradient_with_classes_is_exact() {
    for source in [CLASSES_LME, CLASSES_GLS] {
        for method in [Method::Reml, Method::Ml] {
            let text = format!("{source}\n{}", common::estimate(method));
            let (spec, frame) = common::prepared(&text, CLASSES);
            let design = tandem::design::build(&spec, &frame).unwrap();
            let dev = tandem::estimate::ProfiledDeviance::new(&design, method);
            let mut x = vec![0.8, 0.3, 0.5, -0.4, 0.35, 0.6];
            x.drain(..3 - dev.ntheta());
            assert_eq!(x.len(), dev.nparams());
            gradient_matches_differences(&dev, &x);
        }
    }
}

/// The model of `CLASSES_LME` fitted by `method` through the real front end, with its
/// parameter table.
fn classes_fit(
    method: Method,
) -> (
    tandem::design::Design,
    tandem::estimate::Fit,
    tandem::parameters::ParameterTable,
) {
    let text = format!("{CLASSES_LME}\n{}", common::estimate(method));
    let (spec, frame) = common::prepared(&text, CLASSES);
    let design = tandem::design::build(&spec, &frame).unwrap();
    let fit = tandem::estimate::fit(&design, method).unwrap();
    let table = tandem::parameters::ParameterTable::from_fit(&spec, &design, &fit);
    (design, fit, table)
}

fn numbers(v: &Value) -> Vec<f64> {
    v.as_array().unwrap().iter().map(number).collect()
}

/// Entries relative to their rows' SDs, as tests/integration/information.rs compares them
/// (numDeriv's Hessian is good to a few 1e-6).
fn assert_matrix_close(what: &str, ours: &nalgebra::DMatrix<f64>, want: &Value, tol: f64) {
    let n = ours.nrows();
    for i in 0..n {
        for j in 0..n {
            let w = number(&want[i][j]);
            let scale = (number(&want[i][i]) * number(&want[j][j])).sqrt();
            assert!(
                (ours[(i, j)] - w).abs() <= tol * scale,
                "{what} cov[{i},{j}] {} vs {w} (relative to the SDs {:.2e})",
                ours[(i, j)],
                (ours[(i, j)] - w).abs() / scale
            );
        }
    }
}

/// φ is the last row of the parameter table, after the classes' residual variances, in the
/// order of the reference (tests/reference/scripts/ar1_information.R).
fn check_rows(table: &tandem::parameters::ParameterTable) {
    let names: Vec<String> = (0..table.len()).map(|i| table.name(i)).collect();
    assert_eq!(
        names,
        [
            "y~(Intercept)",
            "y~x",
            "id: var(y~(Intercept))",
            "id: cov(y~(Intercept), y~x)",
            "id: var(y~x)",
            "residual(y: a)",
            "residual(y: b)",
            "residual(y: c)",
            "ar1(y within id)",
        ]
    );
}

/// The joint covariance of all parameters with AR(1) residuals and residual classes (ML: the
/// inverse observed information of all rows, φ included) against numDeriv's Hessian of the
/// likelihood written out in R; at R's estimates the same recipe gives R's matrix, at ours
/// the SEs agree at 1e-4.
#[test]
fn joint_covariance_with_phi_matches_numderiv_ml() {
    let (design, fit, table) = classes_fit(Method::Ml);
    check_rows(&table);
    let r = common::reference("ar1_information.json", "ml");
    let likelihood = tandem::estimate::RawLikelihood::new(&design, &table).unwrap();
    let at = numbers(&r["estimate"]);
    let ll = -likelihood.ml_deviance(&at).unwrap() / 2.0;
    close("logLik at R's estimates", ll, number(&r["logLik"]), 1e-12);
    same_criterion(likelihood.ml_deviance(&table.estimates()).unwrap(), &fit);
    let cov = likelihood.covariance_at(&at, Method::Ml).unwrap();
    assert_matrix_close("ML", &cov, &r["covariance"], 1e-5);
    standard_errors_match(&design, &fit, &table, &r);
}

/// The raw-scale likelihood at the fit's own estimates is the fit's criterion.
fn same_criterion(ours: f64, fit: &tandem::estimate::Fit) {
    assert!(
        (ours - fit.deviance).abs() < 1e-8,
        "{ours} vs {}",
        fit.deviance
    );
}

/// The SEs of the covariance of all parameters at tandem's optimum against R's at its own.
fn standard_errors_match(
    design: &tandem::design::Design,
    fit: &tandem::estimate::Fit,
    table: &tandem::parameters::ParameterTable,
    r: &Value,
) {
    let cov = tandem::estimate::parameter_covariance(design, fit, table).unwrap();
    for (i, w) in numbers(&r["se"]).into_iter().enumerate() {
        close(
            &format!("se {}", table.name(i)),
            cov[(i, i)].sqrt(),
            w,
            1e-4,
        );
    }
}

/// REML: Cov(β̂) is (X'V⁻¹X)⁻¹ (nlme's `vcov`), the variance rows' block the inverse Hessian of
/// the REML log-likelihood, φ included.
#[test]
fn joint_covariance_with_phi_matches_numderiv_reml() {
    let (design, fit, table) = classes_fit(Method::Reml);
    check_rows(&table);
    let r = common::reference("ar1_information.json", "reml");
    let likelihood = tandem::estimate::RawLikelihood::new(&design, &table).unwrap();
    let at = numbers(&r["estimate"]);
    let criterion = likelihood.reml_criterion(&at).unwrap();
    close(
        "REML logLik at R's estimates",
        -criterion / 2.0,
        number(&r["REML_logLik"]),
        1e-12,
    );
    same_criterion(likelihood.reml_criterion(&table.estimates()).unwrap(), &fit);
    let cov = likelihood.covariance_at(&at, Method::Reml).unwrap();
    let beta = cov.view((0, 0), (2, 2)).into_owned();
    assert_matrix_close("REML beta", &beta, &r["beta_covariance"], 1e-9);
    let variance = cov.view((2, 2), (7, 7)).into_owned();
    assert_matrix_close("REML variance", &variance, &r["variance_covariance"], 1e-5);
    standard_errors_match(&design, &fit, &table, &r);
}

/// A `:=` of a variance component in an AR(1) model gets its interval from the joint covariance
/// (it was refused before φ had a row): the delta-method SE of sd(b1) is R's SE of var(x)
/// carried to the SD, se/(2 sd).
#[test]
fn a_definition_of_a_random_sd_has_an_interval_with_ar1() {
    let source = "order t
y ~ 1 + b1*x + (1 + x | id)
residual by class ar1 within id
s := sd(b1)
interval delta";
    let ours = fitted(source, CLASSES, Method::Reml);
    let row = &ours["defined"][0];
    let r = common::reference("ar1_information.json", "reml");
    let var = numbers(&r["estimate"])[4];
    let se_var = numbers(&r["se"])[4];
    close("sd(b1)", number(&row["estimate"]), var.sqrt(), 1e-4);
    close(
        "se of sd(b1)",
        number(&row["se"]),
        se_var / (2.0 * var.sqrt()),
        1e-4,
    );
    assert!(
        ours["fit"]["warnings"].as_array().unwrap().is_empty(),
        "{}",
        ours["fit"]["warnings"]
    );
}
