//! Fit timings: sleepstudy, the facial lag-1 design (93 k rows), and a facial-shaped design at
//! the published study's full size (3.35 M rows: the sessions repeated with new IDs in memory).
//! Run with `cargo bench --bench fit`; the 3.35 M-row design is timed once (design pass and fit
//! separately) and printed, because criterion's minimum of 10 samples would take minutes.

#[path = "../tests/common/mod.rs"]
mod common;

use std::time::Instant;

use criterion::{criterion_group, criterion_main, Criterion};
use tandem::data::Column;
use tandem::design;
use tandem::estimate::{fit, ProfiledDeviance};
use tandem::prepare::AnalysisFrame;
use tandem::syntax::ast::Method;

/// `copies` copies of the frame, each with its own patient and session IDs.
fn replicate(frame: &AnalysisFrame, copies: usize) -> AnalysisFrame {
    let n = frame.nrows;
    let columns = frame
        .columns
        .iter()
        .zip(&frame.names)
        .map(|(c, name)| match c {
            Column::Numeric(v) => Column::Numeric(v.repeat(copies)),
            Column::Text { codes, levels } if name == "patient" || name == "session" => {
                let k = levels.len() as u32;
                Column::Text {
                    codes: (0..copies as u32)
                        .flat_map(|r| codes.iter().map(move |c| c + r * k))
                        .collect(),
                    levels: (0..copies)
                        .flat_map(|r| levels.iter().map(move |l| format!("{l}_{r}")))
                        .collect(),
                }
            }
            Column::Text { codes, levels } => Column::Text {
                codes: codes.repeat(copies),
                levels: levels.clone(),
            },
        })
        .collect();
    AnalysisFrame {
        names: frame.names.clone(),
        columns,
        nrows: n * copies,
        source_rows: (1..=n * copies).collect(),
        drops: frame.drops.clone(),
        warnings: Vec::new(),
    }
}

fn bench_fits(c: &mut Criterion) {
    let (sleep_spec, sleep) =
        common::prepared("Reaction ~ Days + (Days | Subject)", "lme4/sleepstudy.csv");
    c.bench_function("sleepstudy REML (design + fit)", |b| {
        b.iter(|| {
            let d = design::build(&sleep_spec, &sleep).unwrap();
            fit(&d, Method::Reml).unwrap()
        })
    });

    let (facial_spec, facial) = common::prepared(common::FACIAL_LAG1, "synthetic/facial.csv");
    let mut group = c.benchmark_group("facial");
    group.sample_size(10);
    group.bench_function("facial 93k rows REML: design pass", |b| {
        b.iter(|| design::build(&facial_spec, &facial).unwrap())
    });
    let facial_design = design::build(&facial_spec, &facial).unwrap();
    group.bench_function("facial 93k rows REML: fit", |b| {
        b.iter(|| fit(&facial_design, Method::Reml).unwrap())
    });
    group.finish();

    let big = replicate(&facial, 36);
    let t0 = Instant::now();
    let big_design = design::build(&facial_spec, &big).unwrap();
    let t1 = Instant::now();
    let big_fit = fit(&big_design, Method::Reml).unwrap();
    let t2 = Instant::now();
    let deviance = ProfiledDeviance::new(&big_design, Method::Reml);
    let x = big_fit.optimization.optimum.clone();
    let t3 = Instant::now();
    for _ in 0..50 {
        std::hint::black_box(deviance.deviance(&x));
    }
    let per_evaluation = (Instant::now() - t3).as_secs_f64() / 50.0;
    eprintln!(
        "facial x36 ({} rows, {} sessions, {} patients) REML: design pass {:.3} s, fit {:.3} s \
         ({} evaluations of {:.2} ms each, logLik {:.4}, converged {})",
        big.nrows,
        big_fit.ngroups[1].1,
        big_fit.ngroups[0].1,
        (t1 - t0).as_secs_f64(),
        (t2 - t1).as_secs_f64(),
        big_fit.iterations,
        per_evaluation * 1e3,
        big_fit.loglik,
        big_fit.converged
    );
}

criterion_group!(benches, bench_fits);
criterion_main!(benches);
