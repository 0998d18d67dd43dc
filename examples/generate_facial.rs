//! A deterministic generator of the facial-expression design at the published study's full size:
//! 94 patients with 10–16 sessions each, 2,700 seconds per session (about 3.35 million rows),
//! with the columns of `models/data/synthetic/facial.csv`
//! (`patient, session, second, patient_expr, therapist_expr, alliance`).
//!
//! Each session is a bivariate lag-1 process: each partner's expression depends on its own value
//! one second earlier (stability) and on the other partner's (reactivity). Stability and
//! reactivity vary over patients and over sessions, and move with the session's alliance
//! (alliance = 5 + 0.8 z); the fixed values are those of `models/data/synthetic/truth.json`.
//! Same seed, same bytes: one ChaCha stream, consumed in a fixed order.
//!
//! ```sh
//! cargo run --release --example generate_facial                      # small version, temp dir
//! cargo run --release --example generate_facial -- FULL.csv [seed]   # full size
//! cargo run --release --example generate_facial -- FULL.csv --truth boundary [--seed N]
//! cargo run --release --example generate_facial -- BIG.csv --copies 9   # 30 M rows, 1.3 GB
//! ```
//!
//! `--copies K` writes the full-size design K times, the k-th copy's patients and sessions
//! relabelled `c{k}.P001`, `c{k}.P001S01` (the first copy keeps its labels): a file K times
//! larger whose ML log-likelihood is exactly K times the original's, at the same estimates,
//! for fitting out of core.
//!
//! `--truth boundary` is a second truth that puts the fit near the boundary of the parameter
//! space: each patient's levels are chosen so that its intercepts (in both partners' equations,
//! at alliance 5) equal the population's, so the patient intercept variances are near zero; and
//! the two lag slopes of each partner are correlated +0.97 over patients and −0.97 over sessions.
//! It draws the same normals in the same order as the default truth (seed 20240602 unless
//! `--seed` says otherwise). The default truth's output is unchanged.
//!
//! With no arguments it writes a small version (4 patients, 59 sessions of 300 seconds,
//! 17,700 rows) to `tandem_facial_small.csv` in the system's temporary folder and prints the path
//! and a command that fits it. It exists to measure tandem at scale; it is not part of the library.

use std::fs::File;
use std::io::{BufWriter, Write};

use rand::{Rng, SeedableRng};
use rand_chacha::ChaCha8Rng;
use rand_distr::StandardNormal;

/// The published study's size.
pub const PATIENTS: usize = 94;
pub const SECONDS: usize = 2700;
/// The no-argument demonstration: large enough to fit, small enough to write in a blink.
const SMALL_PATIENTS: usize = 4;
const SMALL_SECONDS: usize = 300;
/// Discarded steps at the start of each session, so that it starts near stationarity.
const BURN_IN: usize = 50;

/// truth.json's values: per unit of alliance for the `_by_alliance` ones.
const T_STABILITY: f64 = 0.5;
const T_STABILITY_BY_ALLIANCE: f64 = 0.0625;
const T_REACTIVITY: f64 = 0.1;
const T_REACTIVITY_BY_ALLIANCE: f64 = 0.05;
const P_STABILITY: f64 = 0.55;
const P_REACTIVITY: f64 = 0.08;
const P_REACTIVITY_BY_ALLIANCE: f64 = 0.0125;

/// Which generating values: the study-like default, or the near-boundary one.
#[derive(Clone, Copy, PartialEq, Debug)]
pub enum Truth {
    Default,
    Boundary,
}

impl Truth {
    pub fn default_seed(self) -> u64 {
        match self {
            Truth::Default => 20_240_601,
            Truth::Boundary => 20_240_602,
        }
    }
}

/// The correlation of the two lag slopes under `--truth boundary`: + over patients, − over
/// sessions.
const BOUNDARY_CORRELATION: f64 = 0.97;

fn usage(message: &str) -> ! {
    eprintln!(
        "{message}\nusage: generate_facial [OUT.csv [SEED]] [--truth default|boundary] [--seed N] \
         [--copies K]"
    );
    std::process::exit(2);
}

fn parse_seed(s: &str) -> u64 {
    s.parse()
        .unwrap_or_else(|_| usage("the seed must be a non-negative integer"))
}

fn main() -> std::io::Result<()> {
    let (mut positional, mut truth, mut seed) = (Vec::new(), Truth::Default, None);
    let mut copies = 1usize;
    let mut args = std::env::args().skip(1);
    while let Some(arg) = args.next() {
        match arg.as_str() {
            "--truth" => {
                truth = match args.next().as_deref() {
                    Some("default") => Truth::Default,
                    Some("boundary") => Truth::Boundary,
                    _ => usage("--truth takes `default` or `boundary`"),
                }
            }
            "--copies" => match args.next().and_then(|k| k.parse().ok()) {
                Some(k) if k >= 1 => copies = k,
                _ => usage("--copies takes a whole number, 1 or more"),
            },
            "--seed" => match args.next() {
                Some(s) => seed = Some(parse_seed(&s)),
                None => usage("--seed takes a non-negative integer"),
            },
            _ => positional.push(arg),
        }
    }
    if positional.len() > 2 {
        usage("too many arguments");
    }
    let mut positional = positional.into_iter();
    let (out, patients, seconds) = match positional.next() {
        Some(out) => (std::path::PathBuf::from(out), PATIENTS, SECONDS),
        None => (
            std::env::temp_dir().join("tandem_facial_small.csv"),
            SMALL_PATIENTS,
            SMALL_SECONDS,
        ),
    };
    if let Some(s) = positional.next() {
        seed = Some(parse_seed(&s));
    }
    let seed = seed.unwrap_or_else(|| truth.default_seed());
    let (sessions, rows) = if copies > 1 {
        let single = out.with_extension("single.partial");
        let (sessions, rows) = generate(&single, patients, seconds, seed, truth)?;
        replicate(&single, &out, copies)?;
        std::fs::remove_file(&single)?;
        (sessions * copies, rows * copies)
    } else {
        generate(&out, patients, seconds, seed, truth)?
    };
    let out = out.display();
    let truth = if truth == Truth::Boundary {
        ", boundary truth"
    } else {
        ""
    };
    let patients = patients * copies;
    eprintln!("{out}: {patients} patients, {sessions} sessions, {rows} rows (seed {seed}{truth})");
    if patients == SMALL_PATIENTS {
        eprintln!(
            "full size: generate_facial FULL.csv [seed]; fit this one with\n  \
             cargo run --release -- fit models/seeds/facial_dynamics.tandem --data {out} --vary span=1"
        );
    }
    Ok(())
}

/// Write the rows of `source` (a generated design) `copies` times to `out`, the k-th copy's
/// patient and session labels (the first two fields) prefixed `c{k}.` (none for the first).
pub fn replicate(
    source: &std::path::Path,
    out: &std::path::Path,
    copies: usize,
) -> std::io::Result<()> {
    use std::io::{BufRead, BufReader};
    let mut w = BufWriter::with_capacity(1 << 20, File::create(out)?);
    for k in 0..copies {
        let mut lines = BufReader::with_capacity(1 << 20, File::open(source)?).lines();
        let header = lines.next().transpose()?.unwrap_or_default();
        if k == 0 {
            writeln!(w, "{header}")?;
        }
        for line in lines {
            let line = line?;
            if k == 0 {
                writeln!(w, "{line}")?;
                continue;
            }
            // `"P001","P001S01",rest`: quote, label, quote, comma, quote, label, ...
            let mut fields = line.splitn(3, ',');
            let (patient, session, rest) = (
                fields.next().unwrap_or_default(),
                fields.next().unwrap_or_default(),
                fields.next().unwrap_or_default(),
            );
            let relabel = |f: &str| format!("\"c{k}.{}", f.trim_start_matches('"'));
            writeln!(w, "{},{},{rest}", relabel(patient), relabel(session))?;
        }
    }
    w.flush()
}

/// Write the design for `patients` patients and `seconds` seconds per session to `out`;
/// returns the number of sessions and rows. (`benches/scale.rs` calls it too.)
pub fn generate(
    out: &std::path::Path,
    patients: usize,
    seconds: usize,
    seed: u64,
    truth: Truth,
) -> std::io::Result<(usize, usize)> {
    let boundary = truth == Truth::Boundary;
    let rho = BOUNDARY_CORRELATION;
    let rest = (1.0 - rho * rho).sqrt();
    let mut rng = ChaCha8Rng::seed_from_u64(seed);
    let mut normal = move || -> f64 { rng.sample(StandardNormal) };
    let mut w = BufWriter::with_capacity(1 << 20, File::create(out)?);
    writeln!(
        w,
        "\"patient\",\"session\",\"second\",\"patient_expr\",\"therapist_expr\",\"alliance\""
    )?;

    let (mut rows, mut sessions) = (0usize, 0usize);
    for p in 1..=patients {
        // Patient-level deviations: intercepts and the four lag coefficients.
        let mut patient_level_t = 0.3 * normal();
        let mut patient_level_p = 0.3 * normal();
        let patient_stab_t = 0.05 * normal();
        let mut patient_reac_t = 0.03 * normal();
        let patient_stab_p = 0.05 * normal();
        let mut patient_reac_p = 0.03 * normal();
        let patient_alliance = 0.5 * normal();
        if boundary {
            // Reactivity correlated +rho with stability over patients (same SDs as the default).
            patient_reac_t = rho * patient_stab_t * 0.03 / 0.05 + rest * patient_reac_t;
            patient_reac_p = rho * patient_stab_p * 0.03 / 0.05 + rest * patient_reac_p;
            // Levels such that the patient's intercepts, L_t (1 − S_t) − R_t L_p and
            // L_p (1 − S_p) − R_p L_t, are the population's: solve the 2 × 2 system.
            let (s_t, r_t) = (T_STABILITY + patient_stab_t, T_REACTIVITY + patient_reac_t);
            let (s_p, r_p) = (P_STABILITY + patient_stab_p, P_REACTIVITY + patient_reac_p);
            let c_t = 0.3 * (1.0 - T_STABILITY) - T_REACTIVITY * 0.5;
            let c_p = 0.5 * (1.0 - P_STABILITY) - P_REACTIVITY * 0.3;
            let det = (1.0 - s_t) * (1.0 - s_p) - r_t * r_p;
            patient_level_t = (c_t * (1.0 - s_p) + r_t * c_p) / det - 0.3;
            patient_level_p = ((1.0 - s_t) * c_p + r_p * c_t) / det - 0.5;
        }
        // 10–16 sessions, spread evenly, 1,238 in all (the study's 1,256 minus a few).
        let spread = (3 * p) % 7;
        let nsessions = 10 + spread + usize::from(p <= 17 && spread < 6);
        for s in 1..=nsessions {
            sessions += 1;
            let z = (patient_alliance + 0.85 * normal()).clamp(-3.0, 3.0);
            let alliance = 5.0 + 0.8 * z;
            let a = alliance - 5.0;
            let coefficient = |mean: f64, patient: f64, sd: f64, e: f64| {
                (mean + patient + sd * e).clamp(-0.95, 0.95)
            };
            // Session deviations of the four lag coefficients, drawn in this order.
            let (e_stab_t, mut e_reac_t) = (normal(), normal());
            let (e_stab_p, mut e_reac_p) = (normal(), normal());
            if boundary {
                // Reactivity correlated −rho with stability over sessions.
                e_reac_t = -rho * e_stab_t + rest * e_reac_t;
                e_reac_p = -rho * e_stab_p + rest * e_reac_p;
            }
            let stab_t = coefficient(
                T_STABILITY + T_STABILITY_BY_ALLIANCE * a,
                patient_stab_t,
                0.05,
                e_stab_t,
            );
            let reac_t = coefficient(
                T_REACTIVITY + T_REACTIVITY_BY_ALLIANCE * a,
                patient_reac_t,
                0.03,
                e_reac_t,
            );
            let stab_p = coefficient(P_STABILITY, patient_stab_p, 0.05, e_stab_p);
            let reac_p = coefficient(
                P_REACTIVITY + P_REACTIVITY_BY_ALLIANCE * a,
                patient_reac_p,
                0.03,
                e_reac_p,
            );
            let level_t = 0.3 + patient_level_t + 0.2 * normal();
            let level_p = 0.5 + patient_level_p + 0.2 * normal();
            let (mut t, mut q) = (level_t, level_p);
            for second in 0..BURN_IN + seconds {
                let (et, ep) = (normal(), normal());
                let next_t = level_t * (1.0 - stab_t) + stab_t * t + reac_t * (q - level_p) + et;
                let next_q = level_p * (1.0 - stab_p) + stab_p * q + reac_p * (t - level_t) + ep;
                t = next_t;
                q = next_q;
                if second >= BURN_IN {
                    writeln!(
                        w,
                        "\"P{p:03}\",\"P{p:03}S{s:02}\",{},{q:.4},{t:.4},{alliance:.3}",
                        second - BURN_IN + 1
                    )?;
                    rows += 1;
                }
            }
        }
    }
    w.flush()?;
    Ok((sessions, rows))
}
