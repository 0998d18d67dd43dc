//! The `interval` statement: the method and its named arguments, with defaults. Owns which
//! arguments each method takes and their ranges. Defaults (documented for users): `draws` 10000
//! for `monte_carlo` and 1000 for `bootstrap` and `parametric_bootstrap`, `level` 0.95, `seed` 1,
//! and a bootstrap resamples rows unless `resample` names a grouping column.

use crate::diagnostics::{did_you_mean, Diagnostic};
use crate::model::IntervalChoice;
use crate::syntax::ast::{Expr, ExprKind, IntervalSpec, ModelFile, Statement, UnaryOp};

use super::Checker;

const METHODS: &[&str] = &["monte_carlo", "bootstrap", "parametric_bootstrap", "delta"];

pub(crate) const DEFAULT_LEVEL: f64 = 0.95;
pub(crate) const DEFAULT_SEED: u64 = 1;
pub(crate) const DEFAULT_MONTE_CARLO_DRAWS: usize = 10_000;
pub(crate) const DEFAULT_BOOTSTRAP_DRAWS: usize = 1_000;
/// Most Monte Carlo draws: streamed in bounded memory, but about a minute per 10⁹ on two cores.
pub const MAX_MONTE_CARLO_DRAWS: usize = 1_000_000_000;
/// Most bootstrap replicates: each is a refit, and each keeps its parameter vector.
pub const MAX_BOOTSTRAP_DRAWS: usize = 1_000_000;

/// What computing a file's intervals costs, as a folder's scheduler needs to know it.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum IntervalWork {
    /// Formulas only (`delta`).
    Formula,
    /// Monte Carlo draws of the estimates (`monte_carlo`).
    Draws,
    /// A refit per replicate (`bootstrap`, `parametric_bootstrap`).
    Refits,
}

/// The work of the file's `interval` statement, read from the syntax tree alone (a folder
/// schedules its files before any is checked against its data); `None` without one or for a
/// method that is not known (the checker reports it).
pub fn interval_work(file: &ModelFile) -> Option<IntervalWork> {
    let method = file.statements.iter().find_map(|s| match s {
        Statement::Interval(spec) => Some(spec.method.name.as_str()),
        _ => None,
    })?;
    match method {
        "delta" => Some(IntervalWork::Formula),
        "monte_carlo" => Some(IntervalWork::Draws),
        "bootstrap" | "parametric_bootstrap" => Some(IntervalWork::Refits),
        _ => None,
    }
}

fn allowed_args(method: &str) -> &'static [&'static str] {
    match method {
        "monte_carlo" | "parametric_bootstrap" => &["draws", "level", "seed"],
        "bootstrap" => &["draws", "level", "seed", "resample"],
        _ => &["level"],
    }
}

/// The settings an `interval` statement's arguments give, from the defaults.
struct IntervalSettings {
    draws: usize,
    level: f64,
    seed: u64,
    resample: Option<String>,
}

impl Checker<'_> {
    pub(crate) fn check_interval(&mut self, spec: Option<&IntervalSpec>) -> Option<IntervalChoice> {
        let spec = spec?;
        let method = spec.method.name.as_str();
        let known = self.check_method(spec);
        let allowed = allowed_args(method);
        let mut settings = IntervalSettings {
            draws: if method == "monte_carlo" {
                DEFAULT_MONTE_CARLO_DRAWS
            } else {
                DEFAULT_BOOTSTRAP_DRAWS
            },
            level: DEFAULT_LEVEL,
            seed: DEFAULT_SEED,
            resample: None,
        };
        let mut given: Vec<&str> = Vec::new();
        for arg in &spec.args {
            let Some(name) = &arg.name else {
                self.error(
                    Diagnostic::at("interval arguments are named", arg.value.span)
                        .with_expected(format!("one of {} as `name = value`", allowed.join(", "))),
                );
                continue;
            };
            let arg_name = name.name.as_str();
            if given.contains(&arg_name) {
                self.error(Diagnostic::at(
                    format!("`{arg_name}` is given twice"),
                    name.span,
                ));
                continue;
            }
            given.push(arg_name);
            if known && !allowed.contains(&arg_name) {
                let mut d = Diagnostic::at(
                    format!("`interval {method}` takes no argument `{arg_name}`"),
                    name.span,
                )
                .with_expected(format!("one of {}", allowed.join(", ")));
                if let Some(hint) = did_you_mean(arg_name, allowed.iter().copied()) {
                    d = d.with_hint(hint);
                }
                self.error(d);
                continue;
            }
            self.interval_argument(method, arg_name, &arg.value, &mut settings);
        }
        let IntervalSettings {
            draws,
            level,
            seed,
            resample,
        } = settings;
        match method {
            "monte_carlo" => Some(IntervalChoice::MonteCarlo { draws, level, seed }),
            "bootstrap" => Some(IntervalChoice::Bootstrap {
                draws,
                level,
                seed,
                resample,
            }),
            "parametric_bootstrap" => {
                Some(IntervalChoice::ParametricBootstrap { draws, level, seed })
            }
            "delta" => Some(IntervalChoice::Delta { level }),
            _ => None,
        }
    }

    /// Whether the method is known; an unknown one is reported.
    fn check_method(&mut self, spec: &IntervalSpec) -> bool {
        let method = spec.method.name.as_str();
        let known = METHODS.contains(&method);
        if !known {
            let mut d = Diagnostic::at(
                format!("unknown interval method `{method}`"),
                spec.method.span,
            )
            .with_expected(format!("one of {}", METHODS.join(", ")));
            if let Some(hint) = did_you_mean(method, METHODS.iter().copied()) {
                d = d.with_hint(hint);
            }
            self.error(d);
        }
        known
    }

    /// One named argument the method takes, into `settings` when its value is valid.
    fn interval_argument(
        &mut self,
        method: &str,
        arg_name: &str,
        value: &Expr,
        settings: &mut IntervalSettings,
    ) {
        match arg_name {
            "draws" => {
                if let Some(v) = self.whole_number(value, "draws", 1.0) {
                    self.check_draws(method, v, value);
                    settings.draws = v as usize;
                }
            }
            "seed" => {
                if let Some(v) = self.whole_number(value, "seed", 0.0) {
                    settings.seed = v as u64;
                }
            }
            "level" => match number(value) {
                Some(v) if v > 0.0 && v < 1.0 => settings.level = v,
                _ => self.error(
                    Diagnostic::at("`level` must be a number between 0 and 1", value.span)
                        .with_expected("a confidence level such as 0.95"),
                ),
            },
            "resample" => match &value.kind {
                ExprKind::Name(column) => {
                    if self.scope.is_frame_variable(column, usize::MAX) {
                        settings.resample = Some(column.clone());
                    } else {
                        let d = self
                            .scope
                            .unknown_variable(column, value.span, usize::MAX, &[]);
                        self.error(d);
                    }
                }
                _ => self.error(
                    Diagnostic::at("`resample` names a grouping column", value.span)
                        .with_expected("a column name, e.g. resample = patient"),
                ),
            },
            _ => {}
        }
    }

    /// A whole number of draws must lie between 2 and the method's most.
    fn check_draws(&mut self, method: &str, v: f64, value: &Expr) {
        let most = if method == "monte_carlo" {
            MAX_MONTE_CARLO_DRAWS
        } else {
            MAX_BOOTSTRAP_DRAWS
        };
        if v < 2.0 {
            // One draw gives an interval of zero width and no spread.
            self.error(
                Diagnostic::at("`draws` must be at least 2", value.span)
                    .with_expected("a number of draws such as 1000"),
            );
        } else if v > most as f64 {
            self.error(
                Diagnostic::at(
                    format!("`interval {method}` takes at most {most} draws"),
                    value.span,
                )
                .with_expected(format!("a number of draws from 2 to {most}")),
            );
        }
    }

    /// A whole number at least `min` (and below 2^53, where f64 still counts in ones).
    fn whole_number(&mut self, expr: &Expr, what: &str, min: f64) -> Option<f64> {
        match number(expr) {
            Some(v) if v >= min && v.fract() == 0.0 && v < 9.0e15 => Some(v),
            _ => {
                let expected = if min >= 1.0 {
                    "a positive whole number"
                } else {
                    "a non-negative whole number"
                };
                self.error(
                    Diagnostic::at(format!("`{what}` must be {expected}"), expr.span)
                        .with_expected(expected),
                );
                None
            }
        }
    }
}

/// A number literal, possibly negated.
fn number(expr: &Expr) -> Option<f64> {
    match &expr.kind {
        ExprKind::Number(v) => Some(*v),
        ExprKind::Unary {
            op: UnaryOp::Neg,
            operand,
        } => number(operand).map(|v| -v),
        _ => None,
    }
}
