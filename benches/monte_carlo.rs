//! Monte Carlo draws per second for the within-person mediation model's parameter vector
//! (18 parameters: 6 fixed, a 4×4 random block across the two equations, 2 residuals) with
//! `indirect := a*b + cov(a, b)` and `total := indirect + cp`. Run with
//! `cargo bench --bench monte_carlo`; throughput is reported in draws (elements) per second.

use criterion::{criterion_group, criterion_main, Criterion, Throughput};
use nalgebra::DMatrix;
use tandem::infer::defined::{compile, DefinedQuantities};
use tandem::infer::monte_carlo::{draw_values, monte_carlo, DrawFactor, MonteCarloSettings};
use tandem::parameters::{Parameter, ParameterKind, ParameterTable};

const DRAWS: usize = 1_000_000;

fn row(kind: ParameterKind, estimate: f64) -> Parameter {
    Parameter {
        kind,
        estimate,
        term: None,
    }
}

fn fixed(equation: &str, term: &str, label: Option<&str>, estimate: f64) -> Parameter {
    row(
        ParameterKind::Fixed {
            equation: equation.into(),
            term: term.into(),
            label: label.map(String::from),
        },
        estimate,
    )
}

/// The 18-row table of the 1-1-1 mediation model (values near the therapist OT fit).
fn table() -> ParameterTable {
    let mut rows = vec![
        fixed("m", "(Intercept)", None, 0.1),
        fixed("m", "x", Some("a"), 0.49),
        fixed("y", "(Intercept)", None, 14.0),
        fixed("y", "x", Some("cp"), 0.3),
        fixed("y", "m", Some("b"), -0.62),
        fixed("y", "session", None, -0.4),
    ];
    // 4×4 block over (m intercept, a, y intercept, b), lower triangle by columns.
    let effects = [
        ("m", "(Intercept)", None),
        ("m", "x", Some("a")),
        ("y", "(Intercept)", None),
        ("y", "m", Some("b")),
    ];
    for j in 0..4 {
        for i in j..4 {
            let (e1, t1, l1) = effects[j];
            let kind = if i == j {
                ParameterKind::Variance {
                    group: "patient".into(),
                    equation: e1.into(),
                    term: t1.into(),
                    label: l1.map(String::from),
                }
            } else {
                let (e2, t2, l2) = effects[i];
                ParameterKind::Covariance {
                    group: "patient".into(),
                    equation1: e1.into(),
                    term1: t1.into(),
                    label1: l1.map(String::from),
                    equation2: e2.into(),
                    term2: t2.into(),
                    label2: l2.map(String::from),
                }
            };
            rows.push(row(kind, if i == j { 0.5 } else { -0.03 }));
        }
    }
    for equation in ["m", "y"] {
        rows.push(row(
            ParameterKind::Residual {
                equation: equation.into(),
                class: None,
            },
            2.0,
        ));
    }
    ParameterTable { rows }
}

fn quantities(table: &ParameterTable) -> DefinedQuantities {
    let source = "indirect := a*b + cov(a, b)\ntotal := indirect + cp\n";
    let file = tandem::syntax::parse(source).expect("parses");
    let (definitions, errors) = tandem::check::lower_definitions(&file);
    assert!(errors.is_empty(), "{errors:?}");
    compile(&definitions, table, &[]).expect("compiles")
}

/// A positive definite covariance: SDs times an AR(0.3) correlation.
fn covariance(n: usize) -> DMatrix<f64> {
    DMatrix::from_fn(n, n, |i, j| {
        let sd = |k: usize| 0.05 + 0.01 * k as f64;
        0.3f64.powi((i as i32 - j as i32).abs()) * sd(i) * sd(j)
    })
}

fn bench(c: &mut Criterion) {
    let table = table();
    assert_eq!(table.len(), 18);
    let q = quantities(&table);
    let estimates = table.estimates();
    let v = covariance(table.len());
    let factor = DrawFactor::new(&estimates, &v).expect("finite");
    let mut group = c.benchmark_group("monte_carlo_18_parameters");
    group.sample_size(10);
    group.throughput(Throughput::Elements(DRAWS as u64));
    group.bench_function("draws_and_evaluation", |b| {
        b.iter(|| draw_values(&q, &factor, DRAWS, 42, false))
    });
    let settings = MonteCarloSettings {
        draws: DRAWS,
        level: 0.95,
        seed: 42,
        progress: false,
    };
    group.bench_function("with_percentiles", |b| {
        b.iter(|| monte_carlo(&q, &estimates, &v, &settings).expect("runs"))
    });
    group.finish();
}

criterion_group!(benches, bench);
criterion_main!(benches);
