//! Whether a data file can be read into this machine's memory, asked before reading it: a file
//! larger than memory otherwise ends minutes later in an allocation failure (an abort, not a
//! message). Owns the estimate and where the available memory is read from; it must not read
//! the file itself.
//!
//! The estimate is a lower bound: a plain CSV's typed columns, the preparation's copies and the
//! design pass together peak at about 3.2–3.4 times the file's size (the facial design: 142 MB
//! of CSV, 446–484 MB at peak), so a file needing more than `CSV_EXPANSION` times its size
//! than is available cannot be fitted. Compressed files (gzip, Parquet) are not estimated.

use std::path::Path;

use crate::diagnostics::{Diagnostic, Location};

/// Peak memory per byte of a plain CSV file, rounded down.
const CSV_EXPANSION: u64 = 3;

/// The environment variable that overrides the memory tandem may assume available, in bytes
/// (for a machine whose limit tandem cannot see, and for tests).
pub const AVAILABLE_MEMORY_VARIABLE: &str = "TANDEM_AVAILABLE_MEMORY";

/// Why a plain CSV file cannot be read into the memory available (its size, the memory it
/// needs and the memory available), or `None` when it can, or cannot be told.
pub fn memory_shortfall(path: &Path) -> Option<String> {
    let plain_csv = path.extension().is_some_and(|e| {
        ["csv", "tsv", "tab", "txt"]
            .iter()
            .any(|x| e.eq_ignore_ascii_case(x))
    });
    if !plain_csv {
        return None;
    }
    let size = std::fs::metadata(path).ok()?.len();
    let available = available_memory()?;
    let needed = size.saturating_mul(CSV_EXPANSION);
    (needed > available).then(|| {
        format!(
            "the data file is {}: reading it whole needs at least {} of memory, and about {} \
             are available",
            bytes(size),
            bytes(needed),
            bytes(available)
        )
    })
}

/// Refuses a plain CSV file that cannot fit in the memory available, naming both sizes (the
/// model-file pipeline reads such a file out of core instead).
pub fn check_fits_in_memory(path: &Path) -> Result<(), Diagnostic> {
    match memory_shortfall(path) {
        None => Ok(()),
        Some(why) => Err(
            Diagnostic::error(why, Location::File(path.to_path_buf())).with_hint(
                "fit it from a model file (`tandem fit`), which reads a file this large out of \
                 core, or fit a sample",
            ),
        ),
    }
}

/// `b` bytes as people write them: "512 kB", "1.4 GB".
fn bytes(b: u64) -> String {
    let b = b as f64;
    match b {
        b if b >= 1e9 => format!("{:.1} GB", b / 1e9),
        b if b >= 1e6 => format!("{:.1} MB", b / 1e6),
        b if b >= 1e3 => format!("{:.1} kB", b / 1e3),
        b => format!("{b} bytes"),
    }
}

/// `TANDEM_AVAILABLE_MEMORY`, else the smaller of the kernel's `MemAvailable` and what the
/// cgroup (a container's limit) still allows; `None` where neither can be read.
fn available_memory() -> Option<u64> {
    if let Some(v) = std::env::var(AVAILABLE_MEMORY_VARIABLE)
        .ok()
        .and_then(|v| v.trim().parse().ok())
    {
        return Some(v);
    }
    let meminfo = std::fs::read_to_string("/proc/meminfo")
        .ok()
        .and_then(|text| {
            let line = text.lines().find(|l| l.starts_with("MemAvailable:"))?;
            let kib: u64 = line.split_whitespace().nth(1)?.parse().ok()?;
            Some(kib * 1024)
        });
    let read = |p: &str| -> Option<u64> { std::fs::read_to_string(p).ok()?.trim().parse().ok() };
    let cgroup = read("/sys/fs/cgroup/memory.max")
        .map(|max| max.saturating_sub(read("/sys/fs/cgroup/memory.current").unwrap_or(0)));
    match (meminfo, cgroup) {
        (Some(a), Some(b)) => Some(a.min(b)),
        (a, b) => a.or(b),
    }
}
