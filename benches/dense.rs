//! The dense kernels on one large block, the size of InstEval's Schur complement (n = 1156):
//! the plain Cholesky loop small blocks use, the blocked one, and the inverse from the factor.
//!
//! `cargo bench --bench dense`

use criterion::{criterion_group, criterion_main, BatchSize, Criterion};

// The module is private to `estimate`; the bench compiles its own copy of it.
#[allow(dead_code, unused_imports)]
#[path = "../src/estimate/dense.rs"]
mod dense;

const N: usize = 1156;

/// A fixed SPD matrix: R R'/n + I with R from a fixed LCG.
fn spd(n: usize) -> Vec<f64> {
    let mut state = 12345u64;
    let r: Vec<f64> = (0..n * n)
        .map(|_| {
            state = state
                .wrapping_mul(6364136223846793005)
                .wrapping_add(1442695040888963407);
            (state >> 11) as f64 / (1u64 << 53) as f64 * 2.0 - 1.0
        })
        .collect();
    let r = nalgebra::DMatrix::from_column_slice(n, n, &r);
    let a = &r * r.transpose() / n as f64 + nalgebra::DMatrix::identity(n, n);
    a.as_slice().to_vec()
}

fn kernels(c: &mut Criterion) {
    let a = spd(N);
    let mut group = c.benchmark_group("dense_1156");
    group.sample_size(10);
    group.bench_function("cholesky_naive", |b| {
        b.iter_batched_ref(
            || a.clone(),
            |m| dense::cholesky_small(m, N).unwrap(),
            BatchSize::LargeInput,
        )
    });
    group.bench_function("cholesky_blocked", |b| {
        b.iter_batched_ref(
            || a.clone(),
            |m| dense::cholesky(m, N).unwrap(),
            BatchSize::LargeInput,
        )
    });
    let mut l = a.clone();
    dense::cholesky(&mut l, N).unwrap();
    let mut out = vec![0.0; N * N];
    group.bench_function("cholesky_inverse", |b| {
        b.iter(|| dense::cholesky_inverse(&l, N, &mut out))
    });
    let rhs: Vec<f64> = (0..N * 20).map(|i| (i as f64 * 0.37).cos()).collect();
    group.bench_function("forward_solve_20", |b| {
        b.iter_batched_ref(
            || rhs.clone(),
            |x| dense::forward_solve(&l, N, x, 20),
            BatchSize::LargeInput,
        )
    });
    group.finish();
}

criterion_group!(benches, kernels);
criterion_main!(benches);
