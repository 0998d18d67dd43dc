//! The asymptotic covariance of all parameters (`estimate::parameter_covariance`) and the raw-scale
//! likelihood behind it, against: the engine's own deviance, lavaan's ML standard errors, R's
//! numDeriv Hessian of the sleepstudy likelihood written out directly
//! (tests/reference/scripts/information_sleepstudy.R), and the 1-1-1 mediation reference.

use crate::common;

use std::path::Path;

use nalgebra::{DMatrix, DVector};
use serde_json::Value;
use tandem::design::{self, Design};
use tandem::estimate::{fit, parameter_covariance, Fit, RawLikelihood};
use tandem::infer::numeric_derivatives::jacobian;
use tandem::model::ModelSpec;
use tandem::parameters::{ParameterKind, ParameterTable};
use tandem::syntax::ast::{Method, Statement};

fn numbers(v: &Value) -> Vec<f64> {
    v.as_array()
        .unwrap()
        .iter()
        .map(|x| x.as_f64().unwrap())
        .collect()
}

struct Fitted {
    design: Design,
    fit: Fit,
    table: ParameterTable,
}

/// A library model file through parse → read → check → prepare → design → fit.
fn fit_model(model: &str, method: Option<Method>) -> Fitted {
    let path = Path::new(env!("CARGO_MANIFEST_DIR"))
        .join("models")
        .join(model);
    let bytes = std::fs::read(&path).unwrap();
    let ast = tandem::syntax::parse_bytes(&bytes).unwrap();
    let data = ast
        .statements
        .iter()
        .find_map(|s| match s {
            Statement::Data { path: p, .. } => Some(path.parent().unwrap().join(&p.value)),
            _ => None,
        })
        .unwrap();
    let table = tandem::data::read_csv(&data).unwrap();
    let schema = tandem::check::Schema::from_table(&table);
    let checked = tandem::check::check(&ast, &schema).unwrap();
    let frame = tandem::prepare::prepare(&checked.preparation, &table, &[]).unwrap();
    let spec: ModelSpec = checked.spec;
    let method = method.unwrap_or(spec.method);
    let design = design::build(&spec, &frame).unwrap();
    let fit = fit(&design, method).unwrap();
    let table = ParameterTable::from_fit(&spec, &design, &fit);
    Fitted { design, fit, table }
}

fn se(cov: &DMatrix<f64>) -> Vec<f64> {
    cov.diagonal().iter().map(|v| v.sqrt()).collect()
}

fn assert_close(what: &str, ours: f64, theirs: f64, relative: f64) {
    let scale = theirs.abs().max(1e-12);
    assert!(
        (ours - theirs).abs() <= relative * scale,
        "{what}: tandem {ours} vs reference {theirs} (relative difference {:.2e} > {relative:.0e})",
        (ours - theirs).abs() / scale
    );
}

/// −2ℓ at the estimates is the engine's ML deviance, and its gradient vanishes there.
fn check_optimum(f: &Fitted) {
    let likelihood = RawLikelihood::new(&f.design, &f.table).unwrap();
    let at = f.table.estimates();
    let d = likelihood.ml_deviance(&at).unwrap();
    eprintln!("−2ℓ {d:.10} vs fit deviance {:.10}", f.fit.deviance);
    assert!(
        (d - f.fit.deviance).abs() < 1e-8,
        "{d} vs {}",
        f.fit.deviance
    );
    let gradient = jacobian(
        &mut |x: &[f64]| DVector::from_element(1, likelihood.ml_deviance(x).unwrap()),
        &at,
    );
    for i in 0..at.len() {
        // Scale-free: the change of −2ℓ over a 1% relative move of the parameter.
        let g = gradient[(0, i)] * at[i].abs().max(1e-3) * 0.01;
        eprintln!("∂(−2ℓ) {}: {:.3e}", f.table.name(i), gradient[(0, i)]);
        if likelihood.is_fixed(i) {
            assert!(g.abs() < 1e-6, "gradient in {}: {g}", f.table.name(i));
        }
    }
}

#[test]
fn sleepstudy_ml_against_numderiv() {
    let f = fit_model("lme4/sleepstudy.tandem", Some(Method::Ml));
    check_optimum(&f);
    let r = common::reference("information_sleepstudy.json", "ml");
    // Rows: (Intercept), Days, var(Intercept), cov, var(Days), residual — R's order.
    let want_at = numbers(&r["estimate"]);
    let likelihood = RawLikelihood::new(&f.design, &f.table).unwrap();
    let ll = -likelihood.ml_deviance(&want_at).unwrap() / 2.0;
    assert_close(
        "logLik at R's estimates",
        ll,
        r["logLik"].as_f64().unwrap(),
        1e-12,
    );

    // The same recipe at R's estimates gives R's matrix: the same function, the same derivatives.
    let cov = likelihood.covariance_at(&want_at, Method::Ml).unwrap();
    assert_matrix_close(&cov, &r["covariance"], 1e-5);
    // At our optimum (a few 1e-6 away from lme4's) the SEs agree at the project's 1e-4.
    let cov = parameter_covariance(&f.design, &f.fit, &f.table).unwrap();
    for (i, (o, w)) in se(&cov).iter().zip(numbers(&r["se"])).enumerate() {
        assert_close(&format!("se {}", f.table.name(i)), *o, w, 1e-4);
    }
}

/// Entries relative to their rows' SDs (β–variance cross terms are ~0 on both sides).
///
/// numDeriv's own answer is good to a few 1e-6 here: R's Hessian of the same function with
/// `d = 0.1, 0.03, 0.01` gives Cov[cov, cov] = 1838.1335, 1838.1319, 1838.1440 (and genD forms
/// its mixed differences from f(x ± (hᵢ + hⱼ)), ours from the four corners), so numerical
/// covariances are compared at 1e-5; the exact β block of REML at 1e-9.
fn assert_matrix_close(ours: &DMatrix<f64>, want: &Value, tol: f64) {
    let n = ours.nrows();
    for i in 0..n {
        for j in 0..n {
            let w = want[i][j].as_f64().unwrap();
            let scale = (want[i][i].as_f64().unwrap() * want[j][j].as_f64().unwrap()).sqrt();
            assert!(
                (ours[(i, j)] - w).abs() <= tol * scale,
                "cov[{i},{j}] {} vs {w} (relative to the SDs {:.2e})",
                ours[(i, j)],
                (ours[(i, j)] - w).abs() / scale
            );
        }
    }
}

#[test]
fn sleepstudy_uncorrelated_ml_against_numderiv() {
    // Two random terms: the factored (T) path.
    let f = fit_model("lme4/sleepstudy_uncorrelated.tandem", Some(Method::Ml));
    check_optimum(&f);
    let r = common::reference("information_sleepstudy.json", "uncorrelated_ml");
    let likelihood = RawLikelihood::new(&f.design, &f.table).unwrap();
    let ll = -likelihood.ml_deviance(&numbers(&r["estimate"])).unwrap() / 2.0;
    assert_close(
        "logLik at R's estimates",
        ll,
        r["logLik"].as_f64().unwrap(),
        1e-12,
    );
    let cov = likelihood
        .covariance_at(&numbers(&r["estimate"]), Method::Ml)
        .unwrap();
    assert_matrix_close(&cov, &r["covariance"], 1e-5);
    let cov = parameter_covariance(&f.design, &f.fit, &f.table).unwrap();
    for (i, (o, w)) in se(&cov).iter().zip(numbers(&r["se"])).enumerate() {
        assert_close(&format!("se {}", f.table.name(i)), *o, w, 1e-4);
    }
}

#[test]
fn sleepstudy_reml_against_numderiv() {
    let f = fit_model("lme4/sleepstudy.tandem", Some(Method::Reml));
    let r = common::reference("information_sleepstudy.json", "reml");
    let likelihood = RawLikelihood::new(&f.design, &f.table).unwrap();
    // The REML criterion on the raw scale is lme4's at lme4's and at our estimates.
    let at_r = likelihood.reml_criterion(&numbers(&r["estimate"])).unwrap();
    assert_close(
        "REML logLik at R's estimates",
        -at_r / 2.0,
        r["REML_logLik"].as_f64().unwrap(),
        1e-12,
    );
    let ours = likelihood.reml_criterion(&f.table.estimates()).unwrap();
    assert!(
        (ours - f.fit.deviance).abs() < 1e-8,
        "{ours} vs {}",
        f.fit.deviance
    );

    let at = likelihood
        .covariance_at(&numbers(&r["estimate"]), Method::Reml)
        .unwrap();
    let beta = at.view((0, 0), (2, 2)).into_owned();
    assert_matrix_close(&beta, &r["beta_covariance"], 1e-9);
    let variance = at.view((2, 2), (4, 4)).into_owned();
    assert_matrix_close(&variance, &r["variance_covariance"], 1e-5);
    let cov = parameter_covariance(&f.design, &f.fit, &f.table).unwrap();
    for (i, (o, w)) in se(&cov).iter().zip(numbers(&r["se"])).enumerate() {
        assert_close(&format!("se {}", f.table.name(i)), *o, w, 1e-4);
    }
    // β and the variance parameters are uncorrelated by construction.
    for i in 0..2 {
        for j in 2..6 {
            assert_eq!(cov[(i, j)], 0.0);
        }
    }
}

#[test]
fn lavaan_mediation_ml_standard_errors() {
    let f = fit_model("lavaan/mediation.tandem", None);
    assert_eq!(f.fit.method, Method::Ml);
    check_optimum(&f);
    let cov = parameter_covariance(&f.design, &f.fit, &f.table).unwrap();
    let r = common::reference("reference_extra.json", "lavaan_mediation");
    let rows = r["parameters"].as_array().unwrap();
    let lavaan = |lhs: &str, op: &str, rhs: &str| {
        rows.iter()
            .find(|p| p["lhs"] == lhs && p["op"] == op && p["rhs"] == rhs)
            .unwrap()
    };
    for (label, lhs, rhs) in [("a", "M", "X"), ("b", "Y", "M"), ("c", "Y", "X")] {
        let i = f.table.fixed(label).unwrap();
        let want = lavaan(lhs, "~", rhs);
        assert_close(
            &format!("{label} estimate"),
            f.table.rows[i].estimate,
            want["estimate"].as_f64().unwrap(),
            1e-6,
        );
        let got = cov[(i, i)].sqrt();
        eprintln!("se({label}) {got:.10} vs lavaan {}", want["se"]);
        assert_close(
            &format!("se({label})"),
            got,
            want["se"].as_f64().unwrap(),
            1e-4,
        );
    }
    // Residual variances: ML estimates and their SEs (√(2σ⁴/n)).
    for (i, row) in f.table.rows.iter().enumerate() {
        if let ParameterKind::Residual { equation, .. } = &row.kind {
            let want = lavaan(equation, "~~", equation);
            assert_close(
                &format!("residual {equation}"),
                row.estimate,
                want["estimate"].as_f64().unwrap(),
                1e-6,
            );
            assert_close(
                &format!("se residual {equation}"),
                cov[(i, i)].sqrt(),
                want["se"].as_f64().unwrap(),
                1e-4,
            );
        }
    }
}

/// −2ℓ at nlme's ML estimates of the stacked 1-1-1 model is nlme's: the same likelihood.
fn mediation_reference_parameters(f: &Fitted) -> Vec<f64> {
    let r = &common::reference("reference.json", "mediation_111_stacked")["ML"];
    let fixed = ["Sm", "Smx", "Sy", "Sym", "Syx", "Syh"];
    let sd = [
        r["residual_sd"]["m"].as_f64().unwrap(),
        r["residual_sd"]["y"].as_f64().unwrap(),
    ];
    let mut nfixed = 0;
    let mut nresidual = 0;
    f.table
        .rows
        .iter()
        .map(|row| match (&row.kind, row.term) {
            (ParameterKind::Fixed { .. }, _) => {
                nfixed += 1;
                r["fixed"][fixed[nfixed - 1]].as_f64().unwrap()
            }
            (ParameterKind::Residual { .. }, _) => {
                nresidual += 1;
                sd[nresidual - 1].powi(2)
            }
            (_, Some((_, i, j))) => r["random_cov"][i][j].as_f64().unwrap(),
            _ => unreachable!(),
        })
        .collect()
}

#[test]
fn mediation_111_ml() {
    let f = fit_model("seeds/therapist_ot_mediation.tandem", None);
    assert_eq!(f.fit.method, Method::Ml);
    assert_eq!(f.table.len(), 18);
    check_optimum(&f);
    let likelihood = RawLikelihood::new(&f.design, &f.table).unwrap();
    let at_reference = mediation_reference_parameters(&f);
    let ll = -likelihood.ml_deviance(&at_reference).unwrap() / 2.0;
    let want = common::reference("reference.json", "mediation_111_stacked")["ML"]["logLik"]
        .as_f64()
        .unwrap();
    eprintln!("logLik at nlme's estimates {ll:.10} vs {want:.10}");
    assert!((ll - want).abs() < 1e-6, "{ll} vs {want}");

    let mc: Value = serde_json::from_str(
        &std::fs::read_to_string(
            Path::new(env!("CARGO_MANIFEST_DIR")).join("tests/reference/mediation_mc.json"),
        )
        .unwrap(),
    )
    .unwrap();
    let (a, b) = (f.table.fixed("a").unwrap(), f.table.fixed("b").unwrap());
    let cab = f.table.covariance_in("a", "b", 0).unwrap();
    let keys = [
        ("a", a, "se_a"),
        ("b", b, "se_b"),
        ("cov(a, b)", cab, "se_cov_ab"),
    ];

    // At nlme's estimates the recipe reproduces the reference's SEs (R: numDeriv Hessian of the
    // ML log-likelihood in the same 18 raw parameters at those estimates).
    let cov = likelihood.covariance_at(&at_reference, Method::Ml).unwrap();
    let s = se(&cov);
    for (name, i, key) in keys {
        eprintln!("at nlme's estimates se({name}) {:.8} vs {}", s[i], mc[key]);
        assert_close(
            &format!("se({name}) at nlme's estimates"),
            s[i],
            mc[key].as_f64().unwrap(),
            1e-5,
        );
    }

    // The β block of the numerical information is X'V⁻¹X exactly (−2ℓ is quadratic in β):
    // the inverse of lme4's vcov at the optimum.
    let information = likelihood.ml_information(&f.table.estimates()).unwrap();
    let xvx = f.fit.beta_covariance.clone().try_inverse().unwrap();
    let p = xvx.nrows();
    for i in 0..p {
        for j in 0..p {
            let scale = (xvx[(i, i)] * xvx[(j, j)]).sqrt();
            assert!(
                (information[(i, j)] - xvx[(i, j)]).abs() < 1e-8 * scale,
                "information[{i},{j}] {} vs X'V⁻¹X {}",
                information[(i, j)],
                xvx[(i, j)]
            );
        }
    }

    // At our optimum (higher loglik, on the boundary) they differ a little.
    let started = std::time::Instant::now();
    let cov = parameter_covariance(&f.design, &f.fit, &f.table).unwrap();
    eprintln!("parameter_covariance: {:.1?}", started.elapsed());
    let s = se(&cov);
    for (name, i, key) in keys {
        eprintln!(
            "se({name}) {:.6} vs reference {:.6}",
            s[i],
            mc[key].as_f64().unwrap()
        );
    }
    assert!((s[a] - mc["se_a"].as_f64().unwrap()).abs() < 2e-2);
    assert!((s[b] - mc["se_b"].as_f64().unwrap()).abs() < 2e-2);
}

#[test]
fn without_fixed_effects_ml_and_reml_coincide() {
    let frame = common::load_csv("lme4/sleepstudy.csv");
    let formula = "Reaction ~ 0 + (1 | Subject)";
    let spec = common::spec(formula, Method::Ml);
    let design = design::build(&spec, &frame).unwrap();
    let ml = fit(&design, Method::Ml).unwrap();
    let table = ParameterTable::from_fit(&spec, &design, &ml);
    assert_eq!(table.len(), 2);
    let likelihood = RawLikelihood::new(&design, &table).unwrap();
    let at = table.estimates();
    assert!((likelihood.ml_deviance(&at).unwrap() - ml.deviance).abs() < 1e-8);
    assert!((likelihood.reml_criterion(&at).unwrap() - ml.deviance).abs() < 1e-8);
    let by_ml = likelihood.covariance_at(&at, Method::Ml).unwrap();
    let by_reml = likelihood.covariance_at(&at, Method::Reml).unwrap();
    assert!((by_ml - by_reml).abs().max() < 1e-12);
}

#[test]
fn bad_parameters_are_errors_not_panics() {
    let f = fit_model("lme4/sleepstudy_uncorrelated.tandem", Some(Method::Ml));
    let likelihood = RawLikelihood::new(&f.design, &f.table).unwrap();
    let mut at = f.table.estimates();
    assert!(likelihood.ml_deviance(&at[1..]).is_err());
    // Two random terms go through T = chol(Σ/σ²): a negative variance cannot.
    at[2] = -1.0;
    let err = likelihood.ml_deviance(&at).unwrap_err();
    assert!(err.contains("negative"), "{err}");
    at[2] = 500.0;
    let last = at.len() - 1;
    at[last] = 0.0;
    assert!(likelihood.ml_deviance(&at).is_err());
    at[last] = f64::NAN;
    assert!(likelihood.ml_deviance(&at).is_err());

    // A table of another model does not fit this design.
    let other = fit_model("lme4/sleepstudy.tandem", Some(Method::Ml));
    assert!(RawLikelihood::new(&f.design, &other.table).is_err());
}

/// At an interior optimum the covariance through the random terms' Cholesky factors (the route
/// a boundary fit takes) is the raw-scale covariance: the delta method from the factors gives
/// J H_φ⁺ J' = H_ϑ⁻¹ when the gradient vanishes. Checked for a correlated slope (direct path),
/// crossed and nested intercepts (factored path), ML and REML.
#[test]
fn covariance_through_factors_matches_the_raw_route_at_interior_fits() {
    for model in [
        "lme4/sleepstudy.tandem",
        "lme4/penicillin_crossed.tandem",
        "lme4/pastes_nested.tandem",
    ] {
        for method in [Method::Ml, Method::Reml] {
            let f = fit_model(model, Some(method));
            let likelihood = RawLikelihood::new(&f.design, &f.table).unwrap();
            let at = f.table.estimates();
            let raw = likelihood.covariance_at(&at, method).unwrap();
            let factors = likelihood.covariance_through_factors(&at, method).unwrap();
            for i in 0..at.len() {
                for j in 0..at.len() {
                    let scale = (raw[(i, i)] * raw[(j, j)]).sqrt();
                    assert!(
                        (factors[(i, j)] - raw[(i, j)]).abs() <= 1e-5 * scale,
                        "{model} {method:?} ({}, {}): through factors {:.6e}, raw {:.6e}",
                        f.table.name(i),
                        f.table.name(j),
                        factors[(i, j)],
                        raw[(i, j)]
                    );
                }
            }
        }
    }
}

/// The information from differences of the exact gradient (carried from the profiled deviance's
/// parameters to the raw rows) against numDeriv-style second differences of the likelihood's
/// values (the route it replaced), at the ML optimum and at a point away from it (where the
/// gradient does not vanish, so the carrying over itself is checked): a correlated slope
/// (one random term), crossed and nested intercepts, and a residual variance per sex. At 1e-5
/// of the diagonal scale: second differences of values are themselves good to a few 1e-6 (as
/// numDeriv's are against the sleepstudy reference above).
#[test]
fn information_from_gradients_matches_second_differences_of_values() {
    use tandem::infer::numeric_derivatives::hessian;
    for model in [
        "lme4/sleepstudy.tandem",
        "lme4/penicillin_crossed.tandem",
        "lme4/pastes_nested.tandem",
        "nlme/orthodont_varident.tandem",
    ] {
        let f = fit_model(model, Some(Method::Ml));
        let likelihood = RawLikelihood::new(&f.design, &f.table).unwrap();
        let optimum = f.table.estimates();
        let away: Vec<f64> = optimum
            .iter()
            .enumerate()
            .map(|(i, v)| {
                if likelihood.is_fixed(i) {
                    v + 0.1 * v.abs().max(1.0)
                } else {
                    v * 1.1
                }
            })
            .collect();
        for (what, at) in [("optimum", &optimum), ("away", &away)] {
            let exact = likelihood.ml_information(at).unwrap();
            let values = hessian(&mut |x| likelihood.ml_deviance(x).unwrap_or(f64::NAN), at) * 0.5;
            for i in 0..at.len() {
                for j in 0..at.len() {
                    let scale = (values[(i, i)] * values[(j, j)]).abs().sqrt();
                    assert!(
                        (exact[(i, j)] - values[(i, j)]).abs() <= 1e-5 * scale,
                        "{model} {what} ({}, {}): from gradients {:.8e}, from values {:.8e}",
                        f.table.name(i),
                        f.table.name(j),
                        exact[(i, j)],
                        values[(i, j)]
                    );
                }
            }
        }
    }
}
