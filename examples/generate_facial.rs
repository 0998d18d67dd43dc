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
//! ```
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
const PATIENTS: usize = 94;
const SECONDS: usize = 2700;
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

fn main() -> std::io::Result<()> {
    let mut args = std::env::args().skip(1);
    let (out, patients, seconds) = match args.next() {
        Some(out) => (std::path::PathBuf::from(out), PATIENTS, SECONDS),
        None => (
            std::env::temp_dir().join("tandem_facial_small.csv"),
            SMALL_PATIENTS,
            SMALL_SECONDS,
        ),
    };
    let seed: u64 = match args.next().map(|s| s.parse()) {
        None => 20_240_601,
        Some(Ok(s)) => s,
        Some(Err(_)) => {
            eprintln!("the seed must be a non-negative integer");
            std::process::exit(2);
        }
    };
    let mut rng = ChaCha8Rng::seed_from_u64(seed);
    let mut normal = move || -> f64 { rng.sample(StandardNormal) };
    let mut w = BufWriter::with_capacity(1 << 20, File::create(&out)?);
    writeln!(
        w,
        "\"patient\",\"session\",\"second\",\"patient_expr\",\"therapist_expr\",\"alliance\""
    )?;

    let (mut rows, mut sessions) = (0usize, 0usize);
    for p in 1..=patients {
        // Patient-level deviations: intercepts and the four lag coefficients.
        let patient_level_t = 0.3 * normal();
        let patient_level_p = 0.3 * normal();
        let patient_stab_t = 0.05 * normal();
        let patient_reac_t = 0.03 * normal();
        let patient_stab_p = 0.05 * normal();
        let patient_reac_p = 0.03 * normal();
        let patient_alliance = 0.5 * normal();
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
            let stab_t = coefficient(
                T_STABILITY + T_STABILITY_BY_ALLIANCE * a,
                patient_stab_t,
                0.05,
                normal(),
            );
            let reac_t = coefficient(
                T_REACTIVITY + T_REACTIVITY_BY_ALLIANCE * a,
                patient_reac_t,
                0.03,
                normal(),
            );
            let stab_p = coefficient(P_STABILITY, patient_stab_p, 0.05, normal());
            let reac_p = coefficient(
                P_REACTIVITY + P_REACTIVITY_BY_ALLIANCE * a,
                patient_reac_p,
                0.03,
                normal(),
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
    let out = out.display();
    eprintln!("{out}: {patients} patients, {sessions} sessions, {rows} rows (seed {seed})");
    if patients == SMALL_PATIENTS {
        eprintln!(
            "full size: generate_facial FULL.csv [seed]; fit this one with\n  \
             cargo run --release -- fit models/seeds/facial_dynamics.tandem --data {out} --vary span=1"
        );
    }
    Ok(())
}
