//! Reading and preparing data: the CSV reader and the file-order preparation (lags within
//! session, a `keep`) on the synthetic facial file (93 k rows). Run with
//! `cargo bench --bench prepare`. For the published study's full size, generate the file with
//! `cargo run --release --example generate_facial -- FULL.csv` and read the stage times off
//! `tandem fit models/seeds/facial_dynamics.tandem --data FULL.csv --vary span=1 --timings`.

use std::path::Path;

use criterion::{criterion_group, criterion_main, Criterion};
use tandem::data::read_csv;
use tandem::prepare::prepare;
use tandem::syntax::parse;

const PREPARATION: &str = "group session
order second
let t_lag = lag(therapist_expr, 1)
let p_lag = lag(patient_expr, 1)
keep complete(t_lag, p_lag)
y ~ 1 + t_lag
";

fn bench(c: &mut Criterion) {
    let path = Path::new(env!("CARGO_MANIFEST_DIR")).join("models/data/synthetic/facial.csv");
    let mut group = c.benchmark_group("facial 93k rows");
    group.sample_size(20);
    group.bench_function("read_csv", |b| b.iter(|| read_csv(&path).unwrap()));
    let table = read_csv(&path).unwrap();
    let model = parse(PREPARATION).unwrap();
    let plan = tandem::check::lower_preparation(&model, &tandem::check::Schema::from_table(&table))
        .unwrap();
    group.bench_function("prepare: lags within session, keep", |b| {
        b.iter(|| prepare(&plan, &table, &[]).unwrap())
    });
    group.finish();
}

criterion_group!(benches, bench);
criterion_main!(benches);
