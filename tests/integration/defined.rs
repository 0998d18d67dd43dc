//! Defined quantities: compilation errors, evaluation of every function against hand values,
//! exact gradients against numerical ones, the delta method against its closed form, Monte
//! Carlo against exact normal quantiles, thread-count independence, and the mediation summary.

use crate::common;

use nalgebra::{DMatrix, DVector};
use tandem::diagnostics::{Diagnostic, Location, Severity};
use tandem::infer::defined::{compile, DefinedQuantities};
use tandem::infer::defined_estimates::{estimate_defined, IntervalMethod};
use tandem::infer::delta::{delta_method, normal_critical};
use tandem::infer::mediation::{estimate_with_mediation, MediationEffect};
use tandem::infer::monte_carlo::{
    monte_carlo, quantile_type7, MonteCarloResult, MonteCarloSettings, CHUNK_DRAWS,
};
use tandem::infer::numeric_derivatives;
use tandem::model::Definition;
use tandem::parameters::{Parameter, ParameterKind, ParameterTable};

fn fixed(label: Option<&str>, term: &str, estimate: f64) -> Parameter {
    Parameter {
        kind: ParameterKind::Fixed {
            equation: "y".into(),
            term: term.into(),
            label: label.map(String::from),
        },
        estimate,
        term: None,
    }
}

fn variance(label: &str, term: usize, position: usize, estimate: f64) -> Parameter {
    Parameter {
        kind: ParameterKind::Variance {
            group: "id".into(),
            equation: "y".into(),
            term: label.into(),
            label: Some(label.into()),
        },
        estimate,
        term: Some((term, position, position)),
    }
}

fn covariance(l1: &str, l2: &str, estimate: f64) -> Parameter {
    Parameter {
        kind: ParameterKind::Covariance {
            group: "id".into(),
            equation1: "m".into(),
            term1: l1.into(),
            label1: Some(l1.into()),
            equation2: "y".into(),
            term2: l2.into(),
            label2: Some(l2.into()),
        },
        estimate,
        term: Some((0, 1, 0)),
    }
}

/// Rows: 0 intercept, 1 a, 2 b, 3 cp, 4 var(a), 5 cov(a, b), 6 var(b), 7 var(d) (another
/// term), 8 residual.
fn table() -> ParameterTable {
    ParameterTable {
        rows: vec![
            fixed(None, "(Intercept)", 3.0),
            fixed(Some("a"), "x", 0.5),
            fixed(Some("b"), "m", -0.6),
            fixed(Some("cp"), "x", 0.2),
            variance("a", 0, 0, 0.04),
            covariance("a", "b", -0.012),
            variance("b", 0, 1, 0.09),
            variance("d", 1, 0, 0.25),
            Parameter {
                kind: ParameterKind::Residual {
                    equation: "y".into(),
                    class: None,
                },
                estimate: 1.5,
                term: None,
            },
        ],
    }
}

/// The `:=` statements of `source`, parsed and lowered (a function that does not exist
/// cannot be: those errors, and the definitions that lowered).
fn lowered(source: &str) -> (Vec<Definition>, Vec<Diagnostic>) {
    let file = tandem::syntax::parse(source).expect("test source parses");
    tandem::check::lower_definitions(&file)
}

fn definitions(source: &str) -> Vec<Definition> {
    let (definitions, errors) = lowered(source);
    assert!(errors.is_empty(), "{errors:?}");
    definitions
}

fn compiled(source: &str) -> DefinedQuantities {
    compile(&definitions(source), &table(), &[("span".into(), 5.0)]).expect("compiles")
}

/// Every error of lowering and compiling `source`, in the order of the source.
fn errors(source: &str) -> String {
    let (definitions, mut errors) = lowered(source);
    if let Err(compiled) = compile(&definitions, &table(), &[]) {
        errors.extend(compiled);
    }
    assert!(!errors.is_empty(), "must not compile");
    errors.sort_by_key(|d| match d.location {
        Location::Source(span) => span.start,
        _ => 0,
    });
    errors
        .iter()
        .map(|d| {
            assert_eq!(d.severity, Severity::Error);
            let Location::Source(span) = d.location else {
                panic!("error without a span: {d:?}")
            };
            format!("{}..{} {}", span.start, span.end, d.message)
        })
        .collect::<Vec<_>>()
        .join("\n")
}

#[test]
fn compile_errors_point_at_the_expression() {
    let source = "\
x1 := a * nope
x2 := var(cp)
x3 := cov(a, d)
x4 := sqrt(a, b)
x5 := sd(a + b)
x6 := cor(a, zz)
x7 := mean(a)
";
    insta::assert_snapshot!(errors(source));
}

#[test]
fn later_definitions_are_not_visible() {
    let message = errors("x1 := x2 + 1\nx2 := a\n");
    assert!(message.contains("no label or definition `x2`"), "{message}");
}

#[test]
fn every_function_matches_hand_values() {
    let q = compiled(
        "\
vary span = 5
ab := a * b
lin := 1 + a - b / 2
neg := -a ^ 2
e := exp(a)
l := log(abs(b))
s := sqrt(var(a))
sdb := sd(b)
c := cov(b, a)
caa := cov(a, a)
r := cor(a, b)
later := ab + e * span
vb := var(b)
raa := cor(a, a)
",
    );
    let params = table().estimates();
    let mut out = vec![f64::NAN; q.len()];
    q.evaluate(&params, &mut out);
    let (a, b) = (0.5f64, -0.6f64);
    let expected = [
        a * b,
        1.0 + a - b / 2.0,
        -(a * a),
        a.exp(),
        0.6f64.ln(),
        0.2,
        0.3,
        -0.012,
        0.04,
        -0.012 / (0.04f64 * 0.09).sqrt(),
        a * b + a.exp() * 5.0,
        0.09,
        1.0,
    ];
    assert_eq!(out.len(), expected.len());
    for ((name, got), want) in q.names().zip(&out).zip(expected) {
        assert!((got - want).abs() < 1e-15, "{name}: {got} vs {want}");
    }
    // −a^2 is −(a^2), as in R.
    assert!(out[2] < 0.0);
}

#[test]
fn exact_jacobian_matches_numerical_derivatives() {
    let q = compiled(
        "\
ab := a * b + cov(a, b)
f := exp(a) / sqrt(var(b)) - log(abs(cp)) * b ^ 3
g := cor(a, b) * ab
p := a ^ b
",
    );
    let params = table().estimates();
    let exact = q.jacobian(&params);
    let numeric =
        numeric_derivatives::jacobian(&mut |x: &[f64]| DVector::from_vec(q.values(x)), &params);
    for k in 0..q.len() {
        for j in 0..params.len() {
            let (e, n) = (exact[(k, j)], numeric[(k, j)]);
            assert!(
                (e - n).abs() <= 1e-7 * (1.0 + e.abs()),
                "d{}/dθ{j}: exact {e}, numeric {n}",
                q.programs[k].name
            );
        }
    }
}

/// A covariance over the 9 table rows with a, b correlated and everything else independent.
fn covariance_matrix() -> DMatrix<f64> {
    let mut v = DMatrix::zeros(9, 9);
    let sds = [0.3, 0.08, 0.11, 0.09, 0.01, 0.008, 0.02, 0.05, 0.1];
    for (i, s) in sds.iter().enumerate() {
        v[(i, i)] = s * s;
    }
    v[(1, 2)] = -0.4 * 0.08 * 0.11;
    v[(2, 1)] = v[(1, 2)];
    v[(1, 3)] = 0.2 * 0.08 * 0.09;
    v[(3, 1)] = v[(1, 3)];
    v
}

#[test]
fn delta_se_of_a_product_is_the_closed_form() {
    let q = compiled("ab := a * b\n");
    let v = covariance_matrix();
    let result = delta_method(&q, &table().estimates(), &v);
    let (a, b) = (0.5, -0.6);
    let (va, vb, cab) = (v[(1, 1)], v[(2, 2)], v[(1, 2)]);
    let closed = (b * b * va + a * a * vb + 2.0 * a * b * cab).sqrt();
    assert!((result[0].estimate - a * b).abs() < 1e-15);
    assert!(
        (result[0].se - closed).abs() < 1e-14,
        "{} vs {closed}",
        result[0].se
    );
}

#[test]
fn wald_interval_uses_the_delta_se() {
    let q = compiled("ab := a * b\n");
    let v = covariance_matrix();
    let (rows, warnings) = estimate_defined(
        &q,
        &table().estimates(),
        &v,
        &IntervalMethod::Delta { level: 0.9 },
    )
    .unwrap();
    assert!(warnings.is_empty());
    let row = &rows[0];
    // R: qnorm(0.95) = 1.64485362695147
    assert!((normal_critical(0.9) - 1.644_853_626_951_47).abs() < 1e-12);
    let z = 1.644_853_626_951_47;
    assert!((row.lower.unwrap() - (row.estimate - z * row.se)).abs() < 1e-12);
    assert!((row.upper.unwrap() - (row.estimate + z * row.se)).abs() < 1e-12);
    assert_eq!(row.method.as_deref(), Some("delta"));
}

#[test]
fn quantiles_are_r_type_7() {
    // R: quantile(c(1, 2, 3, 4, 10), c(0.1, 0.5, 0.975)) = 1.4, 3, 9.4
    let x = [10.0, 2.0, 4.0, 1.0, 3.0];
    for (p, want) in [(0.1, 1.4), (0.5, 3.0), (0.975, 9.4)] {
        let mut y = x;
        let got = quantile_type7(&mut y, p);
        assert!((got - want).abs() < 1e-12, "p = {p}: {got} vs {want}");
    }
    // R: quantile(1:10, c(0.025, 0.975)) = 1.225, 9.775
    let mut y: Vec<f64> = (1..=10).rev().map(f64::from).collect();
    assert!((quantile_type7(&mut y, 0.025) - 1.225).abs() < 1e-12);
    assert!((quantile_type7(&mut y, 0.975) - 9.775).abs() < 1e-12);
    assert!(quantile_type7(&mut [], 0.5).is_nan());
}

fn settings(draws: usize, seed: u64) -> MonteCarloSettings {
    MonteCarloSettings {
        draws,
        level: 0.95,
        seed,
        progress: false,
    }
}

#[test]
fn monte_carlo_of_a_linear_quantity_matches_the_exact_normal() {
    let q = compiled("lin := a + 2 * b\n");
    let v = covariance_matrix();
    let draws = 200_000;
    let result = monte_carlo(&q, &table().estimates(), &v, &settings(draws, 20261123)).unwrap();
    assert!(result.warnings.is_empty(), "{:?}", result.warnings);
    let mean = 0.5 + 2.0 * -0.6;
    let sd = (v[(1, 1)] + 4.0 * v[(2, 2)] + 4.0 * v[(1, 2)]).sqrt();
    let z = normal_critical(0.95);
    let interval = result.intervals[0];
    // Monte Carlo standard errors: of the mean sd/√N; of the SD ≈ sd/√(2N); of the 2.5%
    // quantile √(p(1−p)/N)/φ(z)·sd ≈ 0.006·sd. Allow 4 of them.
    let n = draws as f64;
    assert!((interval.mean - mean).abs() < 4.0 * sd / n.sqrt());
    assert!((interval.sd - sd).abs() < 4.0 * sd / (2.0 * n).sqrt());
    let quantile_se = (0.025f64 * 0.975 / n).sqrt() / (-(z * z) / 2.0).exp()
        * (2.0 * std::f64::consts::PI).sqrt()
        * sd;
    assert!(
        (interval.lower - (mean - z * sd)).abs() < 4.0 * quantile_se,
        "{} vs {}",
        interval.lower,
        mean - z * sd
    );
    assert!((interval.upper - (mean + z * sd)).abs() < 4.0 * quantile_se);
    assert_eq!(interval.finite_draws, draws);
}

fn bits(result: &MonteCarloResult) -> Vec<u64> {
    result
        .intervals
        .iter()
        .flat_map(|i| [i.lower, i.upper, i.mean, i.sd])
        .map(f64::to_bits)
        .collect()
}

#[test]
fn monte_carlo_is_identical_for_any_thread_count() {
    let q = compiled("ind := a * b + cov(a, b)\ntotal := ind + cp\nr := cor(a, b)\n");
    let v = covariance_matrix();
    // Not a multiple of the chunk size, so the last chunk is short.
    let draws = 5 * CHUNK_DRAWS + 123;
    let run = |threads: usize| {
        common::on_threads(threads, || {
            monte_carlo(&q, &table().estimates(), &v, &settings(draws, 7)).unwrap()
        })
    };
    let one = bits(&run(1));
    assert_eq!(one, bits(&run(2)));
    assert_eq!(one, bits(&run(3)));
    // A different seed gives different draws.
    let other = monte_carlo(&q, &table().estimates(), &v, &settings(draws, 8)).unwrap();
    assert_ne!(one, bits(&other));
}

/// Past `EXACT_DRAWS` the draws are summarised as a stream in bounded memory: the interval
/// limits are the same order statistics as sorting every draw gives (bit for bit), the mean and
/// SD agree to rounding, the figures' bins count the same, and the digits do not depend on the
/// thread count (issue 14 item 2). `s := sd(a)` has non-finite draws, which both leave out.
#[test]
fn streamed_draws_match_every_draw_sorted() {
    use tandem::infer::draw_stream::EXACT_DRAWS;
    use tandem::infer::histogram::histogram;
    use tandem::infer::monte_carlo::{draw_histograms, draw_values, quantile_type7, DrawFactor};
    let q = compiled("ind := a * b + cov(a, b)\ns := sd(a)\n");
    let mut v = covariance_matrix();
    v[(4, 4)] = 0.02 * 0.02;
    let draws = EXACT_DRAWS + 5 * CHUNK_DRAWS + 77;
    let estimates = table().estimates();
    let run = |threads: usize| {
        common::on_threads(threads, || {
            monte_carlo(&q, &estimates, &v, &settings(draws, 11)).unwrap()
        })
    };
    let streamed = run(2);
    assert_eq!(bits(&streamed), bits(&run(1)));
    let factor = DrawFactor::new(&estimates, &v).unwrap();
    let values = draw_values(&q, &factor, draws, 11, false);
    let histograms = draw_histograms(&q, &estimates, &v, &settings(draws, 11)).unwrap();
    for (k, interval) in streamed.intervals.iter().enumerate() {
        let mut column: Vec<f64> = values
            .iter()
            .skip(k)
            .step_by(2)
            .copied()
            .filter(|v| v.is_finite())
            .collect();
        assert_eq!(interval.finite_draws, column.len());
        let n = column.len() as f64;
        let mean = column.iter().sum::<f64>() / n;
        let sd = (column.iter().map(|v| (v - mean).powi(2)).sum::<f64>() / (n - 1.0)).sqrt();
        assert!(
            (interval.mean - mean).abs() <= 1e-12 * mean.abs(),
            "{interval:?} {mean}"
        );
        assert!((interval.sd - sd).abs() <= 1e-10 * sd, "{interval:?} {sd}");
        assert_eq!(
            interval.lower.to_bits(),
            quantile_type7(&mut column, (1.0 - 0.95) / 2.0).to_bits()
        );
        assert_eq!(
            interval.upper.to_bits(),
            quantile_type7(&mut column, (1.0 + 0.95) / 2.0).to_bits()
        );
        assert_eq!(histograms[k], histogram(&column));
    }
    assert!(streamed.intervals[1].finite_draws < draws);
}

#[test]
fn semi_definite_covariance_is_clamped_with_a_warning() {
    let q = compiled("lin := a + 2 * b\n");
    // Exactly singular (a and b perfectly correlated, a uncorrelated with cp): no warning,
    // the draws lie on a line.
    let mut v = covariance_matrix();
    v[(1, 3)] = 0.0;
    v[(3, 1)] = 0.0;
    v[(1, 2)] = 0.08 * 0.11;
    v[(2, 1)] = v[(1, 2)];
    let result = monte_carlo(&q, &table().estimates(), &v, &settings(20_000, 1)).unwrap();
    assert!(result.warnings.is_empty(), "{:?}", result.warnings);
    let sd = 0.08 + 2.0 * 0.11;
    assert!((result.intervals[0].sd - sd).abs() < 4.0 * sd / (40_000f64).sqrt());
    // Indefinite: a correlation above 1.
    v[(1, 2)] = 1.5 * 0.08 * 0.11;
    v[(2, 1)] = v[(1, 2)];
    let result = monte_carlo(&q, &table().estimates(), &v, &settings(20_000, 1)).unwrap();
    assert_eq!(result.warnings.len(), 1);
    assert!(result.warnings[0]
        .message
        .contains("not positive semi-definite"));
    assert_eq!(result.warnings[0].severity, Severity::Warning);
}

#[test]
fn impossible_draws_are_counted_not_summarised() {
    // var(a) = 0.04 with SD 0.02 in V: about 2.3% of draws are negative, so sd(a) is NaN there.
    let q = compiled("s := sd(a)\n");
    let mut v = covariance_matrix();
    v[(4, 4)] = 0.02 * 0.02;
    let result = monte_carlo(&q, &table().estimates(), &v, &settings(50_000, 3)).unwrap();
    let interval = result.intervals[0];
    assert!(interval.finite_draws < 50_000 && interval.finite_draws > 48_000);
    assert!(interval.lower.is_finite() && interval.lower >= 0.0);
    assert_eq!(result.warnings.len(), 1);
    assert!(result.warnings[0].message.contains("no finite value"));
}

#[test]
fn bad_settings_and_shapes_are_diagnostics() {
    let q = compiled("ab := a * b\n");
    let v = covariance_matrix();
    let mut s = settings(1, 1);
    s.level = 1.5;
    let errors = monte_carlo(&q, &table().estimates(), &v, &s).unwrap_err();
    assert_eq!(errors.len(), 2);
    let errors = estimate_defined(
        &q,
        &table().estimates(),
        &DMatrix::zeros(3, 3),
        &IntervalMethod::None,
    )
    .unwrap_err();
    assert_eq!(errors.len(), 1);
    let mut nan = v.clone();
    nan[(0, 0)] = f64::NAN;
    assert!(monte_carlo(&q, &table().estimates(), &nan, &settings(100, 1)).is_err());
}

#[test]
fn mediation_summary_reads_indirect_and_total_from_the_same_draws() {
    let q = compiled("indirect := a * b + cov(a, b)\ntotal := indirect + cp\n");
    let v = covariance_matrix();
    let estimates = table().estimates();
    let method = IntervalMethod::MonteCarlo(settings(30_000, 11));
    let (rows, summary, _) = estimate_with_mediation(&q, &estimates, &v, &method).unwrap();
    let summary = summary.expect("indirect and total are defined");
    assert_eq!(rows.len(), 2);
    let effects: Vec<_> = summary.rows.iter().map(|r| r.effect).collect();
    assert_eq!(
        effects,
        [
            MediationEffect::Indirect,
            MediationEffect::Direct,
            MediationEffect::Total,
            MediationEffect::ProportionMediated
        ]
    );
    let indirect = 0.5 * -0.6 - 0.012;
    let total = indirect + 0.2;
    let [ind, direct, tot, prop] = [0, 1, 2, 3].map(|k| &summary.rows[k].result);
    assert!((ind.estimate - indirect).abs() < 1e-15);
    assert!((tot.estimate - total).abs() < 1e-15);
    assert!((direct.estimate - 0.2).abs() < 1e-15);
    assert!((prop.estimate - indirect / total).abs() < 1e-15);
    // direct = total − indirect = cp, so its delta SE is cp's own.
    assert!((direct.se - v[(3, 3)].sqrt()).abs() < 1e-15);
    // The file's own rows are unchanged by the appended mediation rows: same draws.
    let (plain, _) = estimate_defined(&q, &estimates, &v, &method).unwrap();
    assert_eq!(rows, plain);
    assert_eq!(&rows[0], ind);
    assert_eq!(&rows[1], tot);
    // Direct's percentiles are cp's: the draws of total − indirect are cp's draws (to rounding).
    let cp = compiled("cp_only := cp\n");
    let (cp_rows, _) = estimate_defined(&cp, &estimates, &v, &method).unwrap();
    assert!((direct.lower.unwrap() - cp_rows[0].lower.unwrap()).abs() < 1e-12);
    assert!((direct.upper.unwrap() - cp_rows[0].upper.unwrap()).abs() < 1e-12);
    assert_eq!(direct.draws, Some(30_000));
    assert_eq!(direct.method.as_deref(), Some("monte carlo"));
}

#[test]
fn no_mediation_summary_without_a_total() {
    let q = compiled("ab := a * b\n");
    let (rows, summary, _) = estimate_with_mediation(
        &q,
        &table().estimates(),
        &covariance_matrix(),
        &IntervalMethod::None,
    )
    .unwrap();
    assert!(summary.is_none());
    assert_eq!(rows.len(), 1);
    assert_eq!(rows[0].lower, None);
}

/// OLS by normal equations with the ML residual variance: the coefficient covariance
/// `σ̂²_ML (Z'Z)⁻¹` lavaan's ML information gives for a recursive path model.
fn ols(columns: &[&[f64]], y: &[f64]) -> (DVector<f64>, DMatrix<f64>) {
    let n = y.len();
    let z = DMatrix::from_fn(n, columns.len() + 1, |i, j| {
        if j == 0 {
            1.0
        } else {
            columns[j - 1][i]
        }
    });
    let y = DVector::from_column_slice(y);
    let inverse = (z.transpose() * &z).try_inverse().unwrap();
    let beta = &inverse * z.transpose() * &y;
    let residual = &y - &z * &beta;
    let sigma2 = residual.norm_squared() / n as f64;
    (beta, inverse * sigma2)
}

#[test]
fn delta_method_matches_lavaan_on_the_mediation_tutorial() {
    let table = common::data_table("lavaan/mediation.csv");
    let (x, m, y) = (
        common::table_numeric(&table, "X"),
        common::table_numeric(&table, "M"),
        common::table_numeric(&table, "Y"),
    );
    let (beta_m, v_m) = ols(&[x], m);
    let (beta_y, v_y) = ols(&[x, m], y);
    // Rows: M intercept, a, Y intercept, c, b. The equations' estimates are independent.
    let table = ParameterTable {
        rows: vec![
            fixed(None, "(Intercept)", beta_m[0]),
            fixed(Some("a"), "X", beta_m[1]),
            fixed(None, "(Intercept)", beta_y[0]),
            fixed(Some("c"), "X", beta_y[1]),
            fixed(Some("b"), "M", beta_y[2]),
        ],
    };
    let mut v = DMatrix::zeros(5, 5);
    v.view_mut((0, 0), (2, 2)).copy_from(&v_m);
    v.view_mut((2, 2), (3, 3)).copy_from(&v_y);
    let q = compile(&definitions("ab := a*b\ntotal := c + a*b\n"), &table, &[]).unwrap();
    let result = delta_method(&q, &table.estimates(), &v);
    let reference = common::reference("reference_extra.json", "lavaan_mediation");
    let lavaan = |label: &str, field: &str| {
        reference["parameters"]
            .as_array()
            .unwrap()
            .iter()
            .find(|p| p["label"] == label)
            .unwrap()[field]
            .as_f64()
            .unwrap()
    };
    let close = |got: f64, want: f64, tolerance: f64, what: &str| {
        assert!(
            ((got - want) / want).abs() < tolerance,
            "{what}: {got} vs lavaan {want}"
        );
    };
    // The inputs first, so a failure below is the delta method's.
    for (label, row) in [("a", 1), ("c", 3), ("b", 4)] {
        close(
            table.rows[row].estimate,
            lavaan(label, "estimate"),
            1e-6,
            label,
        );
        close(v[(row, row)].sqrt(), lavaan(label, "se"), 1e-4, label);
    }
    for (k, label) in ["ab", "total"].into_iter().enumerate() {
        close(result[k].estimate, lavaan(label, "estimate"), 1e-6, label);
        close(result[k].se, lavaan(label, "se"), 1e-4, label);
    }
}

#[test]
fn monte_carlo_interval_of_a_product_covers_at_the_nominal_rate() {
    // Sampling distribution known exactly: estimates of (a, b) ~ N((a, b), V). Each replicate
    // draws estimates, then the quasi-Bayesian interval of a*b; about 95% must cover a*b
    // (1000 replicates: the coverage has a binomial SE of 0.7%, so 92–98% is ±4 SE).
    use rand::{Rng, SeedableRng};
    let q = compiled("ab := a * b\n");
    let truth = table().estimates();
    let v = covariance_matrix();
    let factor = tandem::infer::monte_carlo::DrawFactor::new(&truth, &v).unwrap();
    let n = truth.len();
    let mut rng = rand_chacha::ChaCha8Rng::seed_from_u64(2026);
    let replicates = 1000;
    let mut covered = 0;
    for replicate in 0..replicates {
        let z: Vec<f64> = (0..factor.rank)
            .map(|_| rng.sample(rand_distr::StandardNormal))
            .collect();
        let estimates: Vec<f64> = (0..n)
            .map(|i| {
                truth[i]
                    + (0..factor.rank)
                        .map(|c| factor.factor[c * n + i] * z[c])
                        .sum::<f64>()
            })
            .collect();
        let result = monte_carlo(&q, &estimates, &v, &settings(4000, replicate)).unwrap();
        let interval = result.intervals[0];
        if interval.lower <= 0.5 * -0.6 && -0.3 <= interval.upper {
            covered += 1;
        }
    }
    let rate = covered as f64 / replicates as f64;
    assert!((0.92..=0.98).contains(&rate), "coverage {rate}");
}
