//! The mutation step shared by the seeded fuzzers (model files in `syntax.rs`, data files in
//! `data.rs`), and where a failing input is kept. Not a product feature.

use rand::Rng;

/// Applies 1 to `most` random edits to `bytes`: a byte flip, a deletion of up to `span` bytes,
/// a duplication of up to `2·span` bytes elsewhere, a splice of up to `3·span` bytes from one of
/// `donors`, or one of `pieces` inserted.
pub fn mutate(
    bytes: &mut Vec<u8>,
    rng: &mut impl Rng,
    most: usize,
    span: usize,
    donors: &[&[u8]],
    pieces: &[&[u8]],
) {
    for _ in 0..rng.random_range(1..=most) {
        let at = rng.random_range(0..=bytes.len());
        match rng.random_range(0..5) {
            0 if !bytes.is_empty() => {
                let k = at.min(bytes.len() - 1);
                bytes[k] = rng.random();
            }
            1 => {
                let end = (at + rng.random_range(1..span)).min(bytes.len());
                bytes.drain(at..end);
            }
            2 => {
                let end = (at + rng.random_range(1..2 * span)).min(bytes.len());
                let piece = bytes[at..end].to_vec();
                let to = rng.random_range(0..=bytes.len());
                bytes.splice(to..to, piece);
            }
            3 if !donors.is_empty() => {
                let other = donors[rng.random_range(0..donors.len())];
                if !other.is_empty() {
                    let from = rng.random_range(0..other.len());
                    let end = (from + rng.random_range(1..3 * span)).min(other.len());
                    bytes.splice(at..at, other[from..end].iter().copied());
                }
            }
            _ => {
                let piece = pieces[rng.random_range(0..pieces.len())];
                bytes.splice(at..at, piece.iter().copied());
            }
        }
    }
}

/// Writes a failing input to `target/fuzz-failures/NAME` (to be kept as a fixture) and returns
/// its path for the test's message.
pub fn keep_failure(name: &str, bytes: &[u8]) -> String {
    let dir = std::path::Path::new(env!("CARGO_MANIFEST_DIR")).join("target/fuzz-failures");
    let _ = std::fs::create_dir_all(&dir);
    let _ = std::fs::write(dir.join(name), bytes);
    dir.join(name).display().to_string()
}
