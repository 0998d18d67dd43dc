//! Reading CSV files into typed columns: kinds, missing cells, factor levels, and the errors a bad
//! file gives. Every expected value here is worked out by hand from the inline CSV text.

use std::path::{Path, PathBuf};

use tandem::data::{read_csv, Column, DataTable, MISSING_CODE};
use tandem::diagnostics::Location;

use crate::fuzz;

/// Write `text` to a fresh file in the system temp dir (unique per test and process).
fn temp_csv(name: &str, text: &str) -> PathBuf {
    let dir = std::env::temp_dir().join(format!("tandem-data-{}", std::process::id()));
    std::fs::create_dir_all(&dir).unwrap();
    let path = dir.join(format!("{name}.csv"));
    std::fs::write(&path, text).unwrap();
    path
}

fn numeric<'a>(table: &'a DataTable, name: &str) -> &'a [f64] {
    match table.column(name) {
        Some(Column::Numeric(v)) => v,
        other => panic!("{name} is not numeric: {other:?}"),
    }
}

fn text<'a>(table: &'a DataTable, name: &str) -> (&'a [u32], &'a [String]) {
    match table.column(name) {
        Some(Column::Text { codes, levels }) => (codes, levels),
        other => panic!("{name} is not text: {other:?}"),
    }
}

fn same(a: &[f64], b: &[f64]) -> bool {
    a.len() == b.len()
        && a.iter()
            .zip(b)
            .all(|(x, y)| (x.is_nan() && y.is_nan()) || x == y)
}

#[test]
fn numbers_text_and_missing_cells() {
    let path = temp_csv(
        "kinds",
        "id,x,sex,note\n\"b\",1.5,Male,\na,NA,Female,hi\nc, -2e1 ,,NA\nb,.5,Male,x\n",
    );
    let table = read_csv(&path).unwrap();
    assert_eq!(table.nrows, 4);
    assert_eq!(table.names, ["id", "x", "sex", "note"]);
    assert!(same(numeric(&table, "x"), &[1.5, f64::NAN, -20.0, 0.5]));
    // Levels in byte order; codes point into them.
    let (codes, levels) = text(&table, "id");
    assert_eq!(levels, ["a", "b", "c"]);
    assert_eq!(codes, [1, 0, 2, 1]);
    let (codes, levels) = text(&table, "sex");
    assert_eq!(levels, ["Female", "Male"]);
    assert_eq!(codes, [1, 0, MISSING_CODE, 1]);
    let (codes, levels) = text(&table, "note");
    assert_eq!(levels, ["hi", "x"]);
    assert_eq!(codes, [MISSING_CODE, 0, MISSING_CODE, 1]);
    // Only a mostly-numeric text column keeps its first non-number.
    assert!(table.stray_text.iter().all(Option::is_none));
}

#[test]
fn byte_order_puts_upper_case_first() {
    let path = temp_csv("order", "g\nb\nB\na\nA\n10\n9\n");
    let table = read_csv(&path).unwrap();
    let (codes, levels) = text(&table, "g");
    assert_eq!(levels, ["10", "9", "A", "B", "a", "b"]);
    assert_eq!(codes, [5, 3, 4, 2, 0, 1]);
}

#[test]
fn a_stray_text_cell_makes_a_text_column_and_is_remembered() {
    // Rows 1-3 are numbers, row 4 is not: the column is text, with the numbers as levels as
    // written (not re-formatted), and the stray cell is kept for messages.
    let path = temp_csv("stray", "x,y\n1.0,1\n2,2\n,3\nabc,4\n2,5\n");
    let table = read_csv(&path).unwrap();
    let (codes, levels) = text(&table, "x");
    assert_eq!(levels, ["1.0", "2", "abc"]);
    assert_eq!(codes, [0, 1, MISSING_CODE, 2, 1]);
    let stray = table.stray_text("x").unwrap();
    assert_eq!(stray.row, 4);
    assert_eq!(stray.text, "abc");
    assert!(table.stray_text("y").is_none());
    assert!(same(numeric(&table, "y"), &[1.0, 2.0, 3.0, 4.0, 5.0]));
}

#[test]
fn ragged_row_is_named() {
    let path = temp_csv("ragged", "a,b,c\n1,2,3\n4,5\n6,7,8\n9,10,11,12\n");
    let err = read_csv(&path).unwrap_err();
    assert!(err.is_error());
    assert_eq!(
        err.message,
        "line 3 (data row 2) has 2 fields, but the header has 3 (2 rows like this in all)"
    );
    assert_eq!(
        err.location,
        Location::Data {
            path: path.clone(),
            row: Some(2),
            line: Some(3),
            column: None
        }
    );
}

#[test]
fn missing_file_points_at_the_file() {
    let path = Path::new("/nonexistent/tandem/nothing.csv");
    let err = read_csv(path).unwrap_err();
    assert_eq!(err.location, Location::File(path.to_path_buf()));
    assert!(
        err.message.contains("cannot read data file"),
        "{}",
        err.message
    );
}

#[test]
fn header_problems_are_all_reported() {
    let path = temp_csv("header", "a,,b,a\n1,2,3,4\n");
    let err = read_csv(&path).unwrap_err();
    assert!(
        err.message.contains("column 2 has an empty name"),
        "{}",
        err.message
    );
    assert!(
        err.message
            .contains("column name `a` appears more than once"),
        "{}",
        err.message
    );
}

#[test]
fn header_without_rows_and_empty_file() {
    let err = read_csv(&temp_csv("norows", "a,b\n")).unwrap_err();
    assert!(err.message.contains("no rows"), "{}", err.message);
    let err = read_csv(&temp_csv("empty", "")).unwrap_err();
    assert!(err.message.contains("empty"), "{}", err.message);
}

#[test]
fn quoted_fields_and_crlf() {
    let path = temp_csv(
        "quoted",
        "\"name\",\"v\"\r\n\"a, b\",1\r\n\"say \"\"hi\"\"\",2\r\n",
    );
    let table = read_csv(&path).unwrap();
    let (_, levels) = text(&table, "name");
    assert_eq!(levels, ["a, b", "say \"hi\""]);
    assert!(same(numeric(&table, "v"), &[1.0, 2.0]));
}

#[test]
fn shipped_facial_data_reads_with_the_expected_shape() {
    let table = read_csv(Path::new("models/data/synthetic/facial.csv")).unwrap();
    // `wc -l` gives 93001 lines including the header.
    assert_eq!(table.nrows, 93000);
    assert_eq!(
        table.names,
        [
            "patient",
            "session",
            "second",
            "patient_expr",
            "therapist_expr",
            "alliance"
        ]
    );
    let (_, patients) = text(&table, "patient");
    assert_eq!(patients.first().map(String::as_str), Some("P001"));
    assert!(numeric(&table, "second").iter().all(|s| *s >= 1.0));
}

#[test]
fn a_utf8_byte_order_mark_is_not_part_of_the_first_name() {
    let path = temp_csv("bom", "\u{feff}x,y\n1,2\n");
    let table = read_csv(&path).unwrap();
    assert_eq!(table.names, ["x", "y"]);
}

/// Messages name the file line an editor shows, not only the data row: a blank line and a
/// quoted field spanning two lines shift them apart, in the sequential and the chunked reader.
#[test]
fn data_rows_know_their_file_lines() {
    let path = temp_csv("lines", "a,b\n1,2\n\n3,\"x\ny\"\n4,5\n\n\n6,7\n");
    let table = read_csv(&path).unwrap();
    let lines = table.lines.as_ref().unwrap();
    let got: Vec<u64> = (1..=4).map(|row| lines.line(row)).collect();
    assert_eq!(got, [2, 4, 6, 9]);
    // The chunked reader (files over 8 MB, no field spanning lines): blank lines in several
    // chunks.
    let mut text = String::from("a,b\n");
    let mut want = Vec::new();
    let mut line = 1u64;
    for row in 1..=600_000u64 {
        if row % 150_001 == 0 {
            text.push('\n');
            line += 1;
        }
        text.push_str(&format!("{row},{}.123456\n", row % 7));
        line += 1;
        want.push((row as usize, line));
    }
    let path = temp_csv("lines_chunked", &text);
    let table = tandem::data::read_csv(&path).unwrap();
    assert!(text.len() > 8 << 20);
    let lines = table.lines.as_ref().unwrap();
    for (row, line) in want.into_iter().step_by(997) {
        assert_eq!(lines.line(row), line, "data row {row}");
    }
}

/// A seeded mutation fuzzer over the CSV reader (issue 14): sleepstudy's file (and a
/// semicolon, decimal-comma copy) mutated by byte flips, deletions, duplications and inserted
/// quotes, delimiters, line breaks and control bytes, read, checked against the sleepstudy model
/// and prepared, whole and out of core: each must come back as a value or a diagnostic, never a
/// panic. A bounded run
/// (`TANDEM_FUZZ_ITERATIONS` / 4 runs longer); a failing input is written to
/// `target/fuzz-failures/` to be kept as a fixture.
#[test]
fn mutated_data_files_never_panic() {
    use rand::SeedableRng;
    use std::panic::{catch_unwind, AssertUnwindSafe};
    const PIECES: &[&[u8]] = &[
        b"\"",
        b",",
        b";",
        b"\t",
        b"\n",
        b"\r\n",
        b"\0",
        b"\xe9",
        b"\xff\xfe",
        b"NA",
        b"1e999",
        b"-",
        b".",
        b"\"\"",
        b",,,,",
        b"\n\n",
        b"  ",
    ];
    let iterations: usize = std::env::var("TANDEM_FUZZ_ITERATIONS")
        .ok()
        .and_then(|v| v.parse::<usize>().ok())
        .map_or(300, |n| n / 4);
    let root = Path::new(env!("CARGO_MANIFEST_DIR"));
    let model_text = std::fs::read_to_string(root.join("models/lme4/sleepstudy.tandem")).unwrap();
    let ast = tandem::syntax::parse(&model_text).unwrap();
    let comma = std::fs::read(root.join("models/data/lme4/sleepstudy.csv")).unwrap();
    let semicolon: Vec<u8> = String::from_utf8(comma.clone())
        .unwrap()
        .replace(',', ";")
        .replace('.', ",")
        .into_bytes();
    let corpus = [comma, semicolon];
    let dir = std::env::temp_dir().join(format!("tandem-csv-fuzz-{}", std::process::id()));
    std::fs::create_dir_all(&dir).unwrap();
    let mut rng = rand_chacha::ChaCha8Rng::seed_from_u64(9);
    let mut failures = Vec::new();
    for i in 0..iterations {
        let mut bytes = corpus[i % 2].clone();
        fuzz::mutate(&mut bytes, &mut rng, 5, 30, &[], PIECES);
        let path = dir.join("d.csv");
        std::fs::write(&path, &bytes).unwrap();
        let outcome = catch_unwind(AssertUnwindSafe(|| {
            let Ok(table) = tandem::data::read_csv(&path) else {
                return;
            };
            let schema = tandem::check::Schema::from_table(&table);
            if let Ok(checked) = tandem::check::check(&ast, &schema) {
                if let Ok(frame) = tandem::prepare::prepare(&checked.preparation, &table, &[]) {
                    let _ = tandem::design::build(&checked.spec, &frame);
                }
                // The same file read out of core, in pieces of about 300 bytes.
                use tandem::out_of_core;
                if let Ok(plan) = out_of_core::plan(&ast, &checked.spec, &schema) {
                    let source = out_of_core::Source {
                        path: &path,
                        missing: &[],
                        schema: &schema,
                        check: Default::default(),
                        piece_bytes: 300,
                    };
                    if let Ok(collected) = out_of_core::collect(&ast, &source, &plan, &[]) {
                        let _ = out_of_core::design(&checked.spec, &path, &plan, collected, &[]);
                    }
                }
            }
        }));
        if outcome.is_err() {
            failures.push(fuzz::keep_failure(&format!("sleepstudy-{i}.csv"), &bytes));
        }
    }
    let _ = std::fs::remove_dir_all(&dir);
    assert!(
        failures.is_empty(),
        "{} of {iterations} mutated data files panicked:\n{}",
        failures.len(),
        failures.join("\n")
    );
}
