//! The JSON report's `defined` and `mediation` lists do not depend on the thread count: the
//! therapist oxytocin mediation model fitted by the binary with `RAYON_NUM_THREADS=1` and `=2`
//! must print byte-identical lists (Monte Carlo draws are seeded per fixed-size chunk).

use std::process::Command;

fn defined_json(threads: &str) -> (String, String) {
    let output = Command::new(env!("CARGO_BIN_EXE_tandem"))
        .args([
            "fit",
            "models/seeds/therapist_ot_mediation.tandem",
            "--format",
            "json",
            "--draws",
            "20000",
        ])
        .env("RAYON_NUM_THREADS", threads)
        .current_dir(env!("CARGO_MANIFEST_DIR"))
        .output()
        .expect("the tandem binary runs");
    let stdout = String::from_utf8_lossy(&output.stdout);
    assert!(
        output.status.success(),
        "{stdout}{}",
        String::from_utf8_lossy(&output.stderr)
    );
    // The raw text, not re-parsed numbers: byte identity is the promise. The report's keys
    // come in struct order, `defined` and `mediation` just before `data`.
    let start = stdout.find("\"defined\"").expect("a defined list");
    let end = stdout.find("\"data\"").expect("a data summary");
    let lists = stdout[start..end].to_string();
    let split = lists.find("\"mediation\"").expect("a mediation list");
    (lists[..split].to_string(), lists[split..].to_string())
}

#[test]
fn defined_and_mediation_lists_are_identical_for_one_and_two_threads() {
    let (defined, mediation) = defined_json("1");
    assert!(
        defined.contains("\"indirect\"") && defined.contains("monte carlo"),
        "{defined}"
    );
    assert!(mediation.contains("ACME"), "{mediation}");
    assert_eq!((defined, mediation), defined_json("2"));
}
