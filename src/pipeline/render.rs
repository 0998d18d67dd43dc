//! The edge where a file's reports (one per `vary` value) become text, JSON, Markdown or
//! LaTeX, with the comparison across `vary` values. Must not compute anything.

use super::{FitOptions, Format};
use crate::report::{self, FitReport};

pub(super) fn render_reports(
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
