//! A file's reports (one per `vary` value) as text, JSON, Markdown or LaTeX, with the
//! comparison across `vary` values, and the `--timings` table. Must not compute anything.

use crate::pipeline::{FitOptions, Format};
use crate::report::{self, FitReport};

/// The stages' wall times (`--timings`), in the order they ran, and their total.
pub(super) fn timings(stages: &[(String, f64)]) -> String {
    let total: f64 = stages.iter().map(|(_, t)| t).sum();
    let mut out = String::from("timings (wall clock):\n");
    for (stage, t) in stages {
        out.push_str(&format!("  {stage:<32} {:>8.3} s\n", t));
    }
    out.push_str(&format!("  {:<32} {:>8.3} s\n", "total", total));
    out
}

/// The reports of one file (one per `vary` value) in the chosen format: a `vary` file as one
/// JSON document, or its reports in turn followed by the comparison across values.
pub(super) fn reports(
    reports: &[(Option<(String, f64)>, FitReport)],
    options: &FitOptions,
) -> String {
    let format = options.format;
    let text_options = report::TextOptions {
        stars: options.stars,
    };
    let render_one = |r: &FitReport| match format {
        Format::Text => report::text_with(r, text_options),
        Format::Json => report::json(r),
        Format::Markdown => report::markdown(r),
        Format::Latex => report::latex(r),
    };
    match reports {
        [] => String::new(),
        [(None, r)] => {
            let mut out = render_one(r);
            if format == Format::Json {
                out.push('\n');
            }
            out
        }
        _ => match format {
            Format::Json => {
                let fits: Vec<serde_json::Value> = reports
                    .iter()
                    .map(|(value, r)| {
                        let mut object = serde_json::Map::new();
                        if let Some((name, x)) = value {
                            // `span = 1` reads back as 1, not 1.0.
                            let x = if x.fract() == 0.0 && x.abs() < 1e15 {
                                serde_json::json!(*x as i64)
                            } else {
                                serde_json::json!(x)
                            };
                            object.insert("values".into(), serde_json::json!({ name: x }));
                        }
                        if let Ok(serde_json::Value::Object(fields)) = serde_json::to_value(r) {
                            object.extend(fields);
                        }
                        serde_json::Value::Object(object)
                    })
                    .collect();
                let mut out = serde_json::to_string_pretty(&serde_json::json!({ "vary": fits }))
                    .unwrap_or_default();
                out.push('\n');
                out
            }
            _ => {
                let mut out = String::new();
                for (k, (_, r)) in reports.iter().enumerate() {
                    if k > 0 {
                        out.push('\n');
                    }
                    out.push_str(&render_one(r));
                }
                out.push('\n');
                out.push_str(&report::across_values(reports));
                out
            }
        },
    }
}
