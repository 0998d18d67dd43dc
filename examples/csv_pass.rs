//! The floor for reading a CSV: one sequential pass of the `csv` crate over the file's records,
//! touching every field but building nothing, for comparison with `tandem fit --timings`.
//!
//! ```sh
//! cargo run --release --example csv_pass               # models/data/synthetic/facial.csv
//! cargo run --release --example csv_pass -- FULL.csv   # e.g. generate_facial's output
//! ```

use std::time::Instant;

fn main() {
    let path = std::env::args().nth(1).unwrap_or_else(|| {
        concat!(
            env!("CARGO_MANIFEST_DIR"),
            "/models/data/synthetic/facial.csv"
        )
        .to_string()
    });
    let start = Instant::now();
    let bytes = match std::fs::read(&path) {
        Ok(b) => b,
        Err(e) => {
            eprintln!("cannot read {path}: {e}");
            std::process::exit(1);
        }
    };
    let read = start.elapsed();
    let mut rdr = csv::ReaderBuilder::new().from_reader(bytes.as_slice());
    let mut record = csv::ByteRecord::new();
    let (mut rows, mut field_bytes) = (0usize, 0usize);
    while rdr.read_byte_record(&mut record).unwrap_or(false) {
        rows += 1;
        field_bytes += record.iter().map(<[u8]>::len).sum::<usize>();
    }
    let total = start.elapsed();
    println!(
        "{path}: {rows} records, {field_bytes} field bytes; file read {:.3} s, read + csv pass {:.3} s",
        read.as_secs_f64(),
        total.as_secs_f64()
    );
}
