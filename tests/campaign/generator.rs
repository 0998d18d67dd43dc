//! The convergence campaign's simulated data sets, shared by `tests/convergence.rs` and
//! `examples/convergence_campaign.rs` (included with `#[path]`).
//!
//! 200 data sets, each fitted by REML and by ML (400 cases), in four families:
//!
//! - `slope`: `y ~ 1 + x + (1 + x | g)`
//! - `three`: `y ~ 1 + x1 + x2 + (1 + x1 + x2 | g)`
//! - `crossed`: `y ~ 1 + x + (1 | g) + (1 | h)`, every third data set `(1 + x | g) + (1 | h)`
//! - `nested`: `y ~ 1 + x + (1 | g/h)`, every other data set `(1 + x | g) + (1 | g:h)`
//!
//! Sizes are log-uniform (5–200 groups, 2–50 rows per group, capped so most data sets are
//! small); the slope SDs run from 0 to several residual SDs, the correlations up to ±0.95, and
//! every predictor is multiplied by 10^U(−3, 4) (and shifted by a few of its SDs) without being
//! rescaled back: the true slopes are divided by the same scale, so the problem is equally hard
//! in standardised units. Each data set has its own ChaCha8 stream seeded from `SEED` and its
//! index, so a data set does not depend on the others.
//!
//! lme4's optima for these cases are frozen in `tests/reference/campaign.json`, made by
//! `tests/reference/scripts/campaign.R` from the files `convergence_campaign -- write DIR` writes.
#![allow(dead_code)]

use rand::{Rng, SeedableRng};
use rand_chacha::ChaCha8Rng;
use rand_distr::StandardNormal;

pub const SEED: u64 = 20_260_301;
pub const DATASETS: usize = 200;

/// The four families, in the order of the summary table.
pub const FAMILIES: [&str; 4] = ["slope", "three", "crossed", "nested"];

#[derive(Debug, Clone)]
pub struct Case {
    /// `c017_reml`, `c017_ml`.
    pub id: String,
    /// `c017`: the data set (shared by the REML and ML cases).
    pub dataset: String,
    pub family: &'static str,
    /// The tandem model (no `data` statement: fitted through `fit_source`).
    pub model: String,
    pub reml: bool,
    /// The same model as an lme4 formula.
    pub formula: String,
    /// Named numeric columns; the grouping columns (`factors`) hold whole-number ids.
    pub columns: Vec<(String, Vec<f64>)>,
    /// Columns R must turn into factors.
    pub factors: Vec<&'static str>,
    /// Number of random effects (lme4's nRE: levels × terms, summed over terms).
    pub n_random: usize,
    pub nobs: usize,
    /// What the generator aimed at (boundary cases, refusals), for messages.
    pub note: String,
}

fn normal(rng: &mut ChaCha8Rng) -> f64 {
    rng.sample::<f64, _>(StandardNormal)
}

fn log_uniform(rng: &mut ChaCha8Rng, lo: f64, hi: f64) -> f64 {
    (lo.ln() + rng.random::<f64>() * (hi.ln() - lo.ln())).exp()
}

fn log_uniform_int(rng: &mut ChaCha8Rng, lo: usize, hi: usize) -> usize {
    (log_uniform(rng, lo as f64, hi as f64 + 1.0).floor() as usize).clamp(lo, hi)
}

/// A predictor's scale, 10^U(−3, 4).
fn scale(rng: &mut ChaCha8Rng) -> f64 {
    10f64.powf(rng.random_range(-3.0..4.0))
}

/// A standardised slope SD: exactly 0 in some cases, otherwise log-uniform 0.01 … 5 residual SDs.
fn slope_sd(rng: &mut ChaCha8Rng, forced_zero: bool) -> f64 {
    if forced_zero || rng.random::<f64>() < 0.1 {
        0.0
    } else {
        log_uniform(rng, 0.01, 5.0)
    }
}

/// A correlation: ±0.95 in the boundary cases, otherwise U(−0.95, 0.95).
fn correlation(rng: &mut ChaCha8Rng, forced: Option<f64>) -> f64 {
    match forced {
        Some(r) => r,
        None => rng.random_range(-0.95..0.95),
    }
}

/// Lower Cholesky factor of a random correlation matrix of size `k` (rows are random unit
/// vectors); `first` fixes the correlation of the first two effects.
fn random_cholesky(rng: &mut ChaCha8Rng, k: usize, first: Option<f64>) -> Vec<Vec<f64>> {
    let mut l = vec![vec![0.0; k]; k];
    l[0][0] = 1.0;
    for (i, row) in l.iter_mut().enumerate().skip(1) {
        loop {
            let v: Vec<f64> = (0..=i).map(|_| normal(rng)).collect();
            let norm = v.iter().map(|a| a * a).sum::<f64>().sqrt();
            if norm > 1e-3 {
                for j in 0..=i {
                    row[j] = v[j] / norm;
                }
                // Keep the diagonal away from 0 so the matrix is not singular by accident.
                row[i] = row[i].abs().max(0.3);
                let n2 = row[..=i].iter().map(|a| a * a).sum::<f64>().sqrt();
                for a in row[..=i].iter_mut() {
                    *a /= n2;
                }
                break;
            }
        }
        if i == 1 {
            if let Some(r) = first {
                row[0] = r;
                row[1] = (1.0 - r * r).sqrt();
            }
        }
    }
    l
}

/// Correlated standard normals: L z.
fn correlated(rng: &mut ChaCha8Rng, l: &[Vec<f64>]) -> Vec<f64> {
    let z: Vec<f64> = (0..l.len()).map(|_| normal(rng)).collect();
    l.iter()
        .map(|row| row.iter().zip(&z).map(|(a, b)| a * b).sum())
        .collect()
}

/// Rows per group: a log-uniform mean, then ±50% per group, at least `min`.
fn group_sizes(rng: &mut ChaCha8Rng, groups: usize, mean: usize, min: usize) -> Vec<usize> {
    (0..groups)
        .map(|_| {
            let m = mean as f64 * rng.random_range(0.5..1.5);
            (m.round() as usize).max(min)
        })
        .collect()
}

/// Number of groups and mean rows per group, log-uniform, with groups × rows capped at `cap`
/// (by shrinking the rows) so that most data sets stay small.
fn sizes(rng: &mut ChaCha8Rng, min_rows: usize, cap: usize) -> (usize, usize) {
    let groups = log_uniform_int(rng, 5, 200);
    let rows = log_uniform_int(rng, min_rows, 50);
    let rows = rows.min((cap / groups).max(min_rows));
    (groups, rows)
}

/// A boundary flavour by data-set index within its family.
#[derive(Clone, Copy, PartialEq)]
enum Flavour {
    Plain,
    ZeroSlope,
    CorPlus,
    CorMinus,
    FewGroups,
    /// nobs ≤ number of random effects: lme4 refuses (check.nobs.vs.nRE).
    Refuse,
}

fn flavour(k: usize, family: &str) -> Flavour {
    match (family, k) {
        ("slope", 7) | ("slope", 31) | ("three", 13) => Flavour::Refuse,
        _ => match k % 8 {
            0 => Flavour::ZeroSlope,
            1 => Flavour::CorPlus,
            2 => Flavour::CorMinus,
            3 => Flavour::FewGroups,
            _ => Flavour::Plain,
        },
    }
}

fn forced_cor(f: Flavour) -> Option<f64> {
    match f {
        Flavour::CorPlus => Some(0.95),
        Flavour::CorMinus => Some(-0.95),
        _ => None,
    }
}

struct Data {
    family: &'static str,
    model_terms: String,
    formula: String,
    columns: Vec<(String, Vec<f64>)>,
    factors: Vec<&'static str>,
    n_random: usize,
    note: String,
}

fn slope_family(rng: &mut ChaCha8Rng, f: Flavour) -> Data {
    let (mut groups, rows) = sizes(rng, 3, 2500);
    if f == Flavour::FewGroups {
        groups = 5;
    }
    let mut counts = group_sizes(rng, groups, rows, 3);
    if f == Flavour::Refuse {
        groups = groups.min(30);
        counts = vec![2; groups];
    }
    let s = scale(rng);
    let shift = rng.random_range(-3.0..3.0);
    let sd0 = log_uniform(rng, 0.05, 5.0);
    let sd1 = slope_sd(rng, f == Flavour::ZeroSlope);
    let r = correlation(rng, forced_cor(f));
    let (b0, b1) = (3.0 * normal(rng), normal(rng));
    let sigma = log_uniform(rng, 0.3, 3.0);
    let (mut g, mut x, mut y) = (Vec::new(), Vec::new(), Vec::new());
    for (gi, &n) in counts.iter().enumerate() {
        let z0 = normal(rng);
        let z1 = r * z0 + (1.0 - r * r).sqrt() * normal(rng);
        let (u0, u1) = (sd0 * sigma * z0, sd1 * sigma * z1);
        for _ in 0..n {
            let xs = shift + normal(rng);
            g.push((gi + 1) as f64);
            x.push(xs * s);
            y.push(b0 + u0 + (b1 + u1) * xs + sigma * normal(rng));
        }
    }
    Data {
        family: "slope",
        model_terms: "1 + x + (1 + x | g)".into(),
        formula: "y ~ 1 + x + (1 + x | g)".into(),
        columns: vec![("g".into(), g), ("x".into(), x), ("y".into(), y)],
        factors: vec!["g"],
        n_random: 2 * groups,
        note: format!("scale {s:.3e}, slope sd {sd1:.3}, cor {r:.2}"),
    }
}

fn three_family(rng: &mut ChaCha8Rng, f: Flavour) -> Data {
    let (mut groups, rows) = sizes(rng, 4, 2500);
    if f == Flavour::FewGroups {
        groups = 5;
    }
    let mut counts = group_sizes(rng, groups, rows, 4);
    if f == Flavour::Refuse {
        groups = groups.min(20);
        counts = vec![3; groups];
    }
    let (s1, s2) = (scale(rng), scale(rng));
    let (shift1, shift2) = (rng.random_range(-3.0..3.0), rng.random_range(-3.0..3.0));
    let sds = [
        log_uniform(rng, 0.05, 5.0),
        slope_sd(rng, f == Flavour::ZeroSlope),
        slope_sd(rng, false),
    ];
    let l = random_cholesky(rng, 3, forced_cor(f));
    let beta = [3.0 * normal(rng), normal(rng), normal(rng)];
    let sigma = log_uniform(rng, 0.3, 3.0);
    let (mut g, mut x1, mut x2, mut y) = (Vec::new(), Vec::new(), Vec::new(), Vec::new());
    for (gi, &n) in counts.iter().enumerate() {
        let u = correlated(rng, &l);
        let u: Vec<f64> = u.iter().zip(&sds).map(|(a, s)| a * s * sigma).collect();
        for _ in 0..n {
            let (a, b) = (shift1 + normal(rng), shift2 + normal(rng));
            g.push((gi + 1) as f64);
            x1.push(a * s1);
            x2.push(b * s2);
            y.push(
                beta[0] + u[0] + (beta[1] + u[1]) * a + (beta[2] + u[2]) * b + sigma * normal(rng),
            );
        }
    }
    Data {
        family: "three",
        model_terms: "1 + x1 + x2 + (1 + x1 + x2 | g)".into(),
        formula: "y ~ 1 + x1 + x2 + (1 + x1 + x2 | g)".into(),
        columns: vec![
            ("g".into(), g),
            ("x1".into(), x1),
            ("x2".into(), x2),
            ("y".into(), y),
        ],
        factors: vec!["g"],
        n_random: 3 * groups,
        note: format!(
            "scales {s1:.3e}/{s2:.3e}, sds {:.3}/{:.3}/{:.3}, cor12 {:.2}",
            sds[0], sds[1], sds[2], l[1][0]
        ),
    }
}

fn crossed_family(rng: &mut ChaCha8Rng, f: Flavour, with_slope: bool) -> Data {
    let (mut ng, rows) = sizes(rng, 2, 2000);
    if f == Flavour::FewGroups {
        ng = 5;
    }
    let nh = log_uniform_int(rng, 3, 60);
    let nobs = ng * rows.max(2);
    let s = scale(rng);
    let shift = rng.random_range(-3.0..3.0);
    let sdg = log_uniform(rng, 0.05, 5.0);
    let sdh = if f == Flavour::ZeroSlope && !with_slope {
        0.0
    } else {
        log_uniform(rng, 0.05, 5.0)
    };
    let sd1 = slope_sd(rng, f == Flavour::ZeroSlope);
    let r = correlation(rng, forced_cor(f));
    let (b0, b1) = (3.0 * normal(rng), normal(rng));
    let sigma = log_uniform(rng, 0.3, 3.0);
    let ug: Vec<(f64, f64)> = (0..ng)
        .map(|_| {
            let z0 = normal(rng);
            let z1 = r * z0 + (1.0 - r * r).sqrt() * normal(rng);
            (sdg * sigma * z0, sd1 * sigma * z1)
        })
        .collect();
    let uh: Vec<f64> = (0..nh).map(|_| sdh * sigma * normal(rng)).collect();
    let (mut g, mut h, mut x, mut y) = (Vec::new(), Vec::new(), Vec::new(), Vec::new());
    for i in 0..nobs {
        let gi = i % ng;
        // Every level of h appears (the first nh rows), the rest at random.
        let hi = if i < nh { i } else { rng.random_range(0..nh) };
        let xs = shift + normal(rng);
        let slope = if with_slope { ug[gi].1 } else { 0.0 };
        g.push((gi + 1) as f64);
        h.push((hi + 1) as f64);
        x.push(xs * s);
        y.push(b0 + ug[gi].0 + uh[hi] + (b1 + slope) * xs + sigma * normal(rng));
    }
    let random = if with_slope {
        "(1 + x | g) + (1 | h)"
    } else {
        "(1 | g) + (1 | h)"
    };
    let per_g = if with_slope { 2 } else { 1 };
    // Levels of h that actually occur (all of them: the first nh rows cover them when nobs ≥ nh).
    let nh_seen = nh.min(nobs);
    Data {
        family: "crossed",
        model_terms: format!("1 + x + {random}"),
        formula: format!("y ~ 1 + x + {random}"),
        columns: vec![
            ("g".into(), g),
            ("h".into(), h),
            ("x".into(), x),
            ("y".into(), y),
        ],
        factors: vec!["g", "h"],
        n_random: per_g * ng + nh_seen,
        note: format!(
            "scale {s:.3e}, sd h {sdh:.3}, slope {}",
            if with_slope {
                format!("sd {sd1:.3}, cor {r:.2}")
            } else {
                "none".into()
            }
        ),
    }
}

fn nested_family(rng: &mut ChaCha8Rng, f: Flavour, with_slope: bool) -> Data {
    let mut ng = log_uniform_int(rng, 5, 200);
    if f == Flavour::FewGroups {
        ng = 5;
    }
    // Subgroups per group and rows per subgroup, so that rows per group run 4 … 50.
    let mut sub = log_uniform_int(rng, 2, 8);
    let mut rows = log_uniform_int(rng, 2, 8);
    while ng * sub * rows > 2500 && (sub > 2 || rows > 2) {
        if rows >= sub {
            rows -= 1
        } else {
            sub -= 1
        }
    }
    let s = scale(rng);
    let shift = rng.random_range(-3.0..3.0);
    let sdg = log_uniform(rng, 0.05, 5.0);
    let sdgh = if f == Flavour::ZeroSlope && !with_slope {
        0.0
    } else {
        log_uniform(rng, 0.05, 5.0)
    };
    let sd1 = slope_sd(rng, f == Flavour::ZeroSlope);
    let r = correlation(rng, forced_cor(f));
    let (b0, b1) = (3.0 * normal(rng), normal(rng));
    let sigma = log_uniform(rng, 0.3, 3.0);
    let (mut g, mut h, mut x, mut y) = (Vec::new(), Vec::new(), Vec::new(), Vec::new());
    let mut subgroups = 0;
    for gi in 0..ng {
        let z0 = normal(rng);
        let z1 = r * z0 + (1.0 - r * r).sqrt() * normal(rng);
        let (u0, u1) = (sdg * sigma * z0, sd1 * sigma * z1);
        // A varying number of subgroups per group and rows per subgroup (at least 2 each).
        let k = (sub as f64 * rng.random_range(0.6..1.4)).round().max(2.0) as usize;
        for hi in 0..k {
            subgroups += 1;
            let v = sdgh * sigma * normal(rng);
            let m = (rows as f64 * rng.random_range(0.6..1.4)).round().max(2.0) as usize;
            for _ in 0..m {
                let xs = shift + normal(rng);
                let slope = if with_slope { u1 } else { 0.0 };
                g.push((gi + 1) as f64);
                // Subgroup ids restart in every group: only g/h (or g:h) identifies them.
                h.push((hi + 1) as f64);
                x.push(xs * s);
                y.push(b0 + u0 + v + (b1 + slope) * xs + sigma * normal(rng));
            }
        }
    }
    let random = if with_slope {
        "(1 + x | g) + (1 | g:h)"
    } else {
        "(1 | g/h)"
    };
    let per_g = if with_slope { 2 } else { 1 };
    Data {
        family: "nested",
        model_terms: format!("1 + x + {random}"),
        formula: format!("y ~ 1 + x + {random}"),
        columns: vec![
            ("g".into(), g),
            ("h".into(), h),
            ("x".into(), x),
            ("y".into(), y),
        ],
        factors: vec!["g", "h"],
        n_random: per_g * ng + subgroups,
        note: format!(
            "scale {s:.3e}, sd g:h {sdgh:.3}, slope {}",
            if with_slope {
                format!("sd {sd1:.3}, cor {r:.2}")
            } else {
                "none".into()
            }
        ),
    }
}

/// Data set `i` (0-based): its family and data.
fn dataset(i: usize) -> Data {
    let mut rng = ChaCha8Rng::seed_from_u64(SEED ^ (i as u64).wrapping_mul(0x9E37_79B9_7F4A_7C15));
    // 60 slope, 50 three, 45 crossed, 45 nested.
    match i {
        0..=59 => slope_family(&mut rng, flavour(i, "slope")),
        60..=109 => three_family(&mut rng, flavour(i - 60, "three")),
        110..=154 => {
            let k = i - 110;
            crossed_family(&mut rng, flavour(k, "crossed"), k % 3 == 2)
        }
        _ => {
            let k = i - 155;
            nested_family(&mut rng, flavour(k, "nested"), k % 2 == 1)
        }
    }
}

/// Every case: data set 0 REML, data set 0 ML, data set 1 REML, …
pub fn cases() -> Vec<Case> {
    let mut out = Vec::with_capacity(2 * DATASETS);
    for i in 0..DATASETS {
        let d = dataset(i);
        let nobs = d.columns[0].1.len();
        for reml in [true, false] {
            let method = if reml { "reml" } else { "ml" };
            out.push(Case {
                id: format!("c{i:03}_{method}"),
                dataset: format!("c{i:03}"),
                family: d.family,
                model: format!("y ~ {}\nestimate {method}\n", d.model_terms),
                reml,
                formula: d.formula.clone(),
                columns: d.columns.clone(),
                factors: d.factors.clone(),
                n_random: d.n_random,
                nobs,
                note: d.note.clone(),
            });
        }
    }
    out
}

/// The case's data as CSV; floats in Rust's shortest round-trip form, so R reads the same
/// doubles.
pub fn csv(case: &Case) -> String {
    let names: Vec<&str> = case.columns.iter().map(|(n, _)| n.as_str()).collect();
    let mut out = names.join(",");
    out.push('\n');
    for row in 0..case.nobs {
        let cells: Vec<String> = case
            .columns
            .iter()
            .map(|(_, c)| format!("{}", c[row]))
            .collect();
        out.push_str(&cells.join(","));
        out.push('\n');
    }
    out
}

// ---------------------------------------------------------------------------------------------
// Fitting a case with tandem and comparing it with lme4's frozen optimum.

/// lme4's best optimum for one case (`tests/reference/campaign.json`).
#[derive(Debug, Clone)]
pub struct Reference {
    /// lme4 refused the model (the message).
    pub refused: Option<String>,
    /// logLik (REML: the REML log-likelihood).
    pub loglik: f64,
    /// −2 logLik: the deviance (ML) or REML criterion (REML).
    pub criterion: f64,
    pub optimizer: String,
}

/// Reads the frozen lme4 optima: id → reference.
pub fn references() -> std::collections::HashMap<String, Reference> {
    let path = concat!(env!("CARGO_MANIFEST_DIR"), "/tests/reference/campaign.json");
    let text = std::fs::read_to_string(path).unwrap_or_else(|e| panic!("{path}: {e}"));
    let json: serde_json::Value = serde_json::from_str(&text).expect("campaign.json is JSON");
    let cases = json["cases"].as_object().expect("campaign.json has cases");
    cases
        .iter()
        .map(|(id, v)| {
            // Every optimizer running out of time is not a refusal: no reference (NaN).
            let refused = v["refused"]
                .as_str()
                .filter(|m| !m.contains("time limit"))
                .map(String::from);
            let num = |k: &str| v[k].as_f64().unwrap_or(f64::NAN);
            (
                id.clone(),
                Reference {
                    refused,
                    loglik: num("loglik"),
                    criterion: num("criterion"),
                    optimizer: v["optimizer"].as_str().unwrap_or("").to_string(),
                },
            )
        })
        .collect()
}

/// How tandem's fit of a case compares with lme4's.
#[derive(Debug, Clone, PartialEq)]
pub enum Verdict {
    /// Better than lme4 by more than the tolerance (Δ logLik > 0).
    Better,
    Same,
    /// Worse than lme4 by more than the tolerance.
    Worse,
    /// tandem's fit ended with `converged: false` (Δ still computed).
    NotConverged,
    /// Both refused the model.
    Refused,
    /// tandem refused (or failed) where lme4 fitted.
    TandemRefused,
    /// lme4 refused, tandem fitted.
    TandemFitted,
}

#[derive(Debug, Clone)]
pub struct Comparison {
    pub id: String,
    pub family: &'static str,
    pub verdict: Verdict,
    /// tandem's logLik − lme4's (REML: of the REML log-likelihood, i.e. −½ Δ criterion);
    /// positive is better. NaN when either refused.
    pub delta: f64,
    pub converged: bool,
    /// tandem's warnings, or its error message when it refused.
    pub warnings: Vec<String>,
    pub note: String,
    pub seconds: f64,
}

/// Log-likelihood tolerance: 1e-6 (REML: 2e-6 on the criterion).
pub const TOLERANCE: f64 = 1e-6;

pub fn compare(case: &Case, reference: &Reference) -> Comparison {
    let table = tandem::data::DataTable::from_numeric("campaign", case.columns.clone());
    let options = tandem::pipeline::FitOptions {
        format: tandem::pipeline::Format::Json,
        ..Default::default()
    };
    let start = std::time::Instant::now();
    let outcome = tandem::cli::fit_source(&case.id, &case.model, table, &options);
    let seconds = start.elapsed().as_secs_f64();
    let base = Comparison {
        id: case.id.clone(),
        family: case.family,
        verdict: Verdict::Refused,
        delta: f64::NAN,
        converged: false,
        warnings: Vec::new(),
        note: case.note.clone(),
        seconds,
    };
    let parsed: Option<serde_json::Value> = if outcome.success {
        serde_json::from_str(&outcome.stdout).ok()
    } else {
        None
    };
    let Some(json) = parsed else {
        let message = outcome.stderr.lines().next().unwrap_or("").to_string();
        // A fit that did not converge is reported as an error (exit 1) by the pipeline.
        let verdict = if message.contains("did not converge") {
            Verdict::NotConverged
        } else if reference.refused.is_some() {
            Verdict::Refused
        } else {
            Verdict::TandemRefused
        };
        return Comparison {
            verdict,
            warnings: vec![message],
            ..base
        };
    };
    let fit = &json["fit"];
    let converged = fit["converged"].as_bool().unwrap_or(false);
    let warnings: Vec<String> = fit["warnings"]
        .as_array()
        .map(|a| {
            a.iter()
                .filter_map(|w| w.as_str().map(String::from))
                .collect()
        })
        .unwrap_or_default();
    if reference.refused.is_some() {
        return Comparison {
            verdict: Verdict::TandemFitted,
            converged,
            warnings,
            ..base
        };
    }
    // Compare −½ × criterion (ML: the deviance, REML: the REML criterion), which is the
    // log-likelihood in both cases.
    let ours = -0.5 * fit["deviance"].as_f64().unwrap_or(f64::NAN);
    let delta = ours - (-0.5 * reference.criterion);
    let verdict = if !converged {
        Verdict::NotConverged
    } else if delta > TOLERANCE {
        Verdict::Better
    } else if delta >= -TOLERANCE {
        Verdict::Same
    } else {
        Verdict::Worse
    };
    Comparison {
        verdict,
        delta,
        converged,
        warnings,
        ..base
    }
}

/// Every case compared (in parallel), in case order.
pub fn run_all() -> Vec<Comparison> {
    use rayon::prelude::*;
    let refs = references();
    cases()
        .par_iter()
        .map(|case| {
            let reference = refs
                .get(&case.id)
                .unwrap_or_else(|| panic!("{} is not in campaign.json", case.id));
            compare(case, reference)
        })
        .collect()
}

/// The summary table: per family and in total.
pub fn summary(results: &[Comparison]) -> String {
    let mut out = format!(
        "{:<9} {:>5} {:>6} {:>5} {:>5} {:>14} {:>8} {:>9} {:>9}  {}\n",
        "family",
        "cases",
        "better",
        "same",
        "worse",
        "not converged",
        "refused",
        "mismatch",
        "seconds",
        "worst Δ logLik (case)"
    );
    let groups: Vec<(&str, Vec<&Comparison>)> = FAMILIES
        .iter()
        .map(|f| (*f, results.iter().filter(|c| c.family == *f).collect()))
        .chain(std::iter::once(("total", results.iter().collect())))
        .collect();
    for (name, rows) in groups {
        let count = |v: Verdict| rows.iter().filter(|c| c.verdict == v).count();
        let mismatch = count(Verdict::TandemRefused) + count(Verdict::TandemFitted);
        let worst = rows
            .iter()
            .filter(|c| c.delta.is_finite())
            .min_by(|a, b| a.delta.total_cmp(&b.delta));
        let worst = worst
            .map(|c| format!("{:+.3e} ({})", c.delta, c.id))
            .unwrap_or_else(|| "-".into());
        let seconds: f64 = rows.iter().map(|c| c.seconds).sum();
        out.push_str(&format!(
            "{:<9} {:>5} {:>6} {:>5} {:>5} {:>14} {:>8} {:>9} {:>9.2}  {}\n",
            name,
            rows.len(),
            count(Verdict::Better),
            count(Verdict::Same),
            count(Verdict::Worse),
            count(Verdict::NotConverged),
            count(Verdict::Refused),
            mismatch,
            seconds,
            worst
        ));
    }
    out
}

/// One line per case that fails the acceptance rule.
pub fn failures(results: &[Comparison]) -> Vec<String> {
    results
        .iter()
        .filter(|c| {
            !matches!(
                c.verdict,
                Verdict::Better | Verdict::Same | Verdict::Refused
            )
        })
        .map(|c| {
            format!(
                "{} [{}] {:?}: Δ logLik {:+.3e}, converged {}, warnings {:?} ({})",
                c.id, c.family, c.verdict, c.delta, c.converged, c.warnings, c.note
            )
        })
        .collect()
}
