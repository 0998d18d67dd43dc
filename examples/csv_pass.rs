//! The floor for reading a CSV: one sequential pass of the `csv` crate over the file's records,
//! touching every field but building nothing, for comparison with `tandem fit --timings`.
//!
//! ```sh
//! cargo run --release --example csv_pass -- FULL.csv
//! ```

use std::time::Instant;

fn main() {
    let Some(path) = std::env::args().nth(1) else {
        eprintln!("usage: csv_pass FILE.csv");
        std::process::exit(2);
    };
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
