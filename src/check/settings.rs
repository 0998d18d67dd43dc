//! File-wide settings: `data`, `group`, `order`, `estimate`, `interval` and `vary`, each at most
//! once. Owns the duplicate check, the missing-`data` rule and reading `vary` values; it must not
//! check what the settings name (that is `preparation` for `group`/`order`, `interval` for the
//! interval's arguments).

use crate::diagnostics::Diagnostic;
use crate::model::Vary;
use crate::syntax::ast::{
    EstimateOption, IntervalSpec, Literal, Method, ModelFile, Span, Statement,
};

use super::names::Lookup;
use super::{CheckOptions, Checker, FILE_START};

/// The settings as the file gives them (after duplicates are reported, the first one counts).
pub(crate) struct Settings<'f> {
    pub method: Method,
    /// The `estimate` statement, when the file has one (a non-Gaussian model's default differs).
    pub estimate: Option<(Span, &'f [EstimateOption])>,
    pub interval: Option<&'f IntervalSpec>,
    pub vary: Option<Vary>,
}

impl Checker<'_> {
    pub(crate) fn check_settings<'f>(
        &mut self,
        file: &'f ModelFile,
        options: CheckOptions,
    ) -> Settings<'f> {
        let mut seen: Vec<(&'static str, Span)> = Vec::new();
        let mut settings = Settings {
            method: Method::Reml,
            estimate: None,
            interval: None,
            vary: None,
        };
        for statement in &file.statements {
            let (keyword, span) = match statement {
                Statement::Data { span, .. } => ("data", *span),
                Statement::Group { span, .. } => ("group", *span),
                Statement::Order { span, .. } => ("order", *span),
                Statement::Estimate { span, .. } => ("estimate", *span),
                Statement::Interval(spec) => ("interval", spec.span),
                Statement::Vary { span, .. } => ("vary", *span),
                _ => continue,
            };
            if seen.iter().any(|(k, _)| *k == keyword) {
                // Diagnostics carry one location; the first statement is easy to find by keyword.
                self.error(
                    Diagnostic::at(format!("a second `{keyword}` statement"), span).with_hint(
                        format!(
                            "a model file has at most one `{keyword}` statement; the first one \
                             stays in effect, so remove one of them"
                        ),
                    ),
                );
                continue;
            }
            seen.push((keyword, span));
            match statement {
                Statement::Estimate {
                    method,
                    options,
                    span,
                } => {
                    settings.method = *method;
                    settings.estimate = Some((*span, options.as_slice()));
                }
                Statement::Interval(spec) => settings.interval = Some(spec),
                Statement::Vary { name, values, .. } => {
                    settings.vary = self.check_vary(&name.name, name.span, values);
                }
                _ => {}
            }
        }
        if !options.data_override && !seen.iter().any(|(k, _)| *k == "data") {
            self.error(
                Diagnostic::at("the model file has no `data` statement", FILE_START).with_hint(
                    "add `data \"file.csv\"` (relative to the model file) or pass --data",
                ),
            );
        }
        if !file
            .statements
            .iter()
            .any(|s| matches!(s, Statement::Equation(_)))
        {
            self.error(
                Diagnostic::at("the model has no equation", FILE_START)
                    .with_hint("add one, e.g. `y ~ 1 + x + (1 | g)`"),
            );
        }
        settings
    }

    fn check_vary(&mut self, name: &str, span: Span, values: &[Literal]) -> Option<Vary> {
        let mut ok = true;
        match self.scope.lookup(name, usize::MAX) {
            Lookup::Column(_) => {
                ok = false;
                self.error(
                    Diagnostic::at(
                        format!(
                            "`vary {name}`: `{name}` is already a column of {}",
                            self.scope.schema.file_name
                        ),
                        span,
                    )
                    .with_hint("choose another name for the varied value"),
                );
            }
            Lookup::Let | Lookup::LaterLet(_) => {
                ok = false;
                self.error(
                    Diagnostic::at(format!("`vary {name}`: `{name}` is already a `let`"), span)
                        .with_hint("choose another name for the varied value"),
                );
            }
            _ => {}
        }
        let mut numbers = Vec::new();
        for value in values {
            match value {
                Literal::Number { value, span } => {
                    // An error, but the name stays known: no "no column" cascade after it.
                    if numbers.contains(value) {
                        self.error(
                            Diagnostic::at(format!("`vary` value {value} is repeated"), *span)
                                .with_hint("each value is fitted once; give it once"),
                        );
                    } else {
                        numbers.push(*value)
                    }
                }
                Literal::String(s) => {
                    ok = false;
                    self.error(
                        Diagnostic::at(format!("`vary` value \"{}\" is text", s.value), s.span)
                            .with_expected("a number")
                            .with_hint("only numeric `vary` values are supported so far"),
                    );
                }
            }
        }
        if !ok {
            return None;
        }
        self.scope.vary = Some((name.to_string(), numbers.clone()));
        Some(Vary {
            name: name.to_string(),
            values: numbers,
        })
    }
}
