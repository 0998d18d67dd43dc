//! Defined quantities (`name := expr`) compiled once into small postfix programs over the rows
//! of the parameter table, so that Monte Carlo can evaluate them millions of times without
//! allocating, and the delta method can differentiate them exactly (forward mode).
//!
//! Compiles the model's lowered definitions (`check` has resolved each name to a label, an
//! earlier definition or the `vary` name, and bound each call to the catalogue of functions);
//! owns what only the fitted table says: the row of each label, the terms and rows of
//! `var`/`sd`/`cov`/`cor` of random effects, and the value of each `vary` constant; and
//! evaluation, the functions of one number by the catalogue's rule. It must not draw, estimate
//! covariances or decide intervals: those belong to `delta`, `monte_carlo` and `mediation`.

use nalgebra::DMatrix;

use super::marginal_effect::AverageMarginalEffect;
use crate::diagnostics::{Diagnostic, Span};
use crate::functions::{Builtin, Context};
use crate::model::{Argument, BinaryOp, Definition, Expression, ExpressionKind, Name, UnaryOp};
use crate::parameters::ParameterTable;

/// The evaluation stack lives in a fixed array so evaluation never allocates; an expression
/// deeper than this is refused at compile time (no hand-written definition comes close).
pub const MAX_STACK: usize = 64;

/// One instruction of a definition's postfix program.
#[derive(Debug, Clone, Copy, PartialEq)]
pub enum Op {
    Constant(f64),
    /// The value of a row of the parameter table.
    Parameter(usize),
    /// The value of an earlier definition.
    Defined(usize),
    Neg,
    Add,
    Sub,
    Mul,
    Div,
    Pow,
    /// A function of one number (`exp`, `log`, `sqrt`, `abs`), by the catalogue's rule.
    Function(Builtin),
    /// The value of an average marginal effect (`ame(x)`), an index into `effects`.
    MarginalEffect(usize),
}

/// One compiled definition.
#[derive(Debug, Clone, PartialEq)]
pub struct Program {
    pub name: String,
    pub span: Span,
    pub ops: Vec<Op>,
}

/// All definitions of a file, compiled, in file order (a definition reads only earlier ones).
#[derive(Debug, Clone, PartialEq)]
pub struct DefinedQuantities {
    pub programs: Vec<Program>,
    /// The number of parameter-table rows a parameter vector must have.
    pub parameters: usize,
    /// The average marginal effects the programs read (`Op::MarginalEffect`).
    pub effects: Vec<AverageMarginalEffect>,
}

/// Compiles every definition, collecting all errors.
pub fn compile(
    definitions: &[Definition],
    table: &ParameterTable,
    constants: &[(String, f64)],
) -> Result<DefinedQuantities, Vec<Diagnostic>> {
    compile_with_effects(definitions, table, constants, Vec::new())
}

/// Compiles every definition, with `effects` the average marginal effects `ame(x)` calls
/// name (one per predictor they use, built from the analysis rows by the caller).
pub fn compile_with_effects(
    definitions: &[Definition],
    table: &ParameterTable,
    constants: &[(String, f64)],
    effects: Vec<AverageMarginalEffect>,
) -> Result<DefinedQuantities, Vec<Diagnostic>> {
    let mut compiler = Compiler {
        table,
        constants,
        effects: &effects,
        earlier: Vec::new(),
        errors: Vec::new(),
    };
    let mut programs = Vec::with_capacity(definitions.len());
    for definition in definitions {
        let mut ops = Vec::new();
        let before = compiler.errors.len();
        compiler.expr(&definition.value, &mut ops);
        if compiler.errors.len() == before && stack_depth(&ops) > MAX_STACK {
            compiler.errors.push(
                Diagnostic::at("this definition is nested too deeply", definition.span)
                    .with_hint("split it into several definitions"),
            );
        }
        compiler.earlier.push(definition.name.clone());
        programs.push(Program {
            name: definition.name.clone(),
            span: definition.span,
            ops,
        });
    }
    if compiler.errors.is_empty() {
        Ok(DefinedQuantities {
            programs,
            parameters: table.len(),
            effects,
        })
    } else {
        Err(compiler.errors)
    }
}

fn stack_depth(ops: &[Op]) -> usize {
    let mut depth = 0usize;
    let mut max = 0usize;
    for op in ops {
        match op {
            Op::Constant(_) | Op::Parameter(_) | Op::Defined(_) | Op::MarginalEffect(_) => {
                depth += 1
            }
            Op::Add | Op::Sub | Op::Mul | Op::Div | Op::Pow => depth = depth.saturating_sub(1),
            Op::Neg | Op::Function(_) => {}
        }
        max = max.max(depth);
    }
    max
}

struct Compiler<'a> {
    table: &'a ParameterTable,
    constants: &'a [(String, f64)],
    effects: &'a [AverageMarginalEffect],
    earlier: Vec<String>,
    errors: Vec<Diagnostic>,
}

impl Compiler<'_> {
    fn expr(&mut self, expr: &Expression, ops: &mut Vec<Op>) {
        match &expr.kind {
            ExpressionKind::Number(x) => ops.push(Op::Constant(*x)),
            ExpressionKind::Text(_) | ExpressionKind::Missing => self.errors.push(Diagnostic::at(
                "a definition computes with numbers only",
                expr.span,
            )),
            ExpressionKind::Name(name) => self.name(name, expr.span, ops),
            ExpressionKind::Unary { op, operand } => {
                self.expr(operand, ops);
                match op {
                    UnaryOp::Neg => ops.push(Op::Neg),
                    UnaryOp::Not => self.errors.push(Diagnostic::at(
                        "`!` has no place in a definition",
                        expr.span,
                    )),
                }
            }
            ExpressionKind::Binary { op, lhs, rhs } => {
                self.expr(lhs, ops);
                self.expr(rhs, ops);
                let op = match op {
                    BinaryOp::Add => Op::Add,
                    BinaryOp::Sub => Op::Sub,
                    BinaryOp::Mul => Op::Mul,
                    BinaryOp::Div => Op::Div,
                    BinaryOp::Pow => Op::Pow,
                    other => {
                        self.errors.push(
                            Diagnostic::at(
                                format!("`{}` has no place in a definition", other.symbol()),
                                expr.span,
                            )
                            .with_expected("+ - * / ^"),
                        );
                        return;
                    }
                };
                ops.push(op);
            }
            ExpressionKind::Call { function, args } => self.call(*function, args, expr.span, ops),
        }
    }

    /// A resolved name's operation: a label's row of the table, an earlier definition's
    /// value, the `vary` constant's value for this fit.
    fn name(&mut self, name: &Name, span: Span, ops: &mut Vec<Op>) {
        let op = match name {
            Name::Definition(d) => self.earlier.iter().position(|e| e == d).map(Op::Defined),
            Name::Label(label) => self.table.fixed(label).map(Op::Parameter),
            Name::Vary(v) => (self.constants.iter())
                .find(|(c, _)| c == v)
                .map(|(_, value)| Op::Constant(*value)),
            Name::Column(_) | Name::Let(_) | Name::Grouping(_) | Name::Constant(_) => None,
        };
        match op {
            Some(op) => ops.push(op),
            None => self.errors.push(
                Diagnostic::at(format!("no label or definition `{}`", name.text()), span)
                    .with_expected("a coefficient label, an earlier definition or the `vary` name"),
            ),
        }
    }

    fn call(&mut self, builtin: Builtin, args: &[Argument], span: Span, ops: &mut Vec<Op>) {
        let spec = builtin.entry();
        let function = spec.name;
        if !spec.allowed(Context::Definition) {
            let names = crate::functions::names(Context::Definition);
            self.errors.push(
                Diagnostic::at(format!("unknown function `{function}`"), span)
                    .with_expected(format!("one of {}", names.join(", "))),
            );
            return;
        }
        let (fewest, most) = spec.definition_arity;
        if !(fewest..=most).contains(&args.len()) {
            self.errors.push(Diagnostic::at(
                format!(
                    "`{function}` takes {}, not {}",
                    spec.definition_arguments,
                    args.len()
                ),
                span,
            ));
            return;
        }
        if builtin.scalar().is_some() {
            self.expr(&args[0].value, ops);
            ops.push(Op::Function(builtin));
            return;
        }
        if builtin == Builtin::Ame {
            self.marginal_effect(&args[0].value, ops);
            return;
        }
        self.random_effect_call(builtin, spec.labels, args, span, ops);
    }

    /// `ame(x)`: the effect the caller built for `x`; none means the caller could not (and
    /// has said why) or the argument is not a predictor's name.
    fn marginal_effect(&mut self, arg: &Expression, ops: &mut Vec<Op>) {
        let ExpressionKind::Name(name) = &arg.kind else {
            self.errors.push(Diagnostic::at(
                "`ame` takes the name of a predictor, not an expression",
                arg.span,
            ));
            return;
        };
        match self.effects.iter().position(|e| e.variable == name.text()) {
            Some(k) => ops.push(Op::MarginalEffect(k)),
            None => self.errors.push(Diagnostic::at(
                format!(
                    "the average marginal effect of `{}` is not available for this fit",
                    name.text()
                ),
                arg.span,
            )),
        }
    }

    /// `var`, `sd`, `cov` or `cor` of the random effects labelled by the first `nlabels` of
    /// `args`, in the term of the grouping the next argument names, if any.
    fn random_effect_call(
        &mut self,
        builtin: Builtin,
        nlabels: usize,
        args: &[Argument],
        span: Span,
        ops: &mut Vec<Op>,
    ) {
        let function = builtin.name();
        let labels: Vec<Option<&str>> = args[..nlabels]
            .iter()
            .map(|a| self.label_arg(&a.value, function))
            .collect();
        let grouping = args
            .get(nlabels)
            .and_then(|a| self.label_arg(&a.value, function));
        let labels: Option<Vec<&str>> = labels.into_iter().collect();
        let Some(labels) = labels else {
            return;
        };
        if args.len() > nlabels && grouping.is_none() {
            return;
        }
        let spans: Vec<Span> = args[..nlabels].iter().map(|a| a.value.span).collect();
        let Some(term) = self.random_term(function, &labels, &spans, grouping, span) else {
            return;
        };
        self.random_effect_ops(builtin, &labels, term, span, ops);
    }

    /// The program of `function` of `labels` in random term `term`: rows of the table, with
    /// `sd` and `cor` computed from the variances and the covariance.
    fn random_effect_ops(
        &mut self,
        function: Builtin,
        labels: &[&str],
        term: usize,
        span: Span,
        ops: &mut Vec<Op>,
    ) {
        let table = self.table;
        let var = |label: &str| table.variance_in(label, term);
        match (function, labels) {
            (Builtin::Var, [a]) => ops.extend(var(a).map(Op::Parameter)),
            (Builtin::Sd, [a]) => {
                if let Some(row) = var(a) {
                    ops.extend([Op::Parameter(row), Op::Function(Builtin::Sqrt)]);
                }
            }
            (Builtin::Cov, [a, b]) => {
                let row = if a == b {
                    var(a)
                } else {
                    self.covariance(a, b, term, span)
                };
                ops.extend(row.map(Op::Parameter));
            }
            (Builtin::Cor, [a, b]) => {
                if a == b {
                    ops.push(Op::Constant(1.0));
                } else if let (Some(cov), Some(var1), Some(var2)) =
                    (self.covariance(a, b, term, span), var(a), var(b))
                {
                    ops.extend([
                        Op::Parameter(cov),
                        Op::Parameter(var1),
                        Op::Parameter(var2),
                        Op::Mul,
                        Op::Function(Builtin::Sqrt),
                        Op::Div,
                    ]);
                }
            }
            _ => {}
        }
    }

    /// The one random term that `labels` (of `function`'s call at `span`) refer to: a term
    /// with an effect for every label, of `grouping` when given. A label with random parts in
    /// several terms is ambiguous without a grouping; so is a grouping with several such terms.
    fn random_term(
        &mut self,
        function: &str,
        labels: &[&str],
        spans: &[Span],
        grouping: Option<&str>,
        span: Span,
    ) -> Option<usize> {
        let mut candidates = self.common_terms(labels, spans, span)?;
        if let Some(g) = grouping {
            candidates = self.terms_of_grouping(candidates, g, labels, span)?;
        }
        if candidates.len() > 1 {
            let names: Vec<String> = candidates.iter().map(|(_, n)| format!("`{n}`")).collect();
            let last = &candidates[candidates.len() - 1].1;
            self.errors.push(
                Diagnostic::at(
                    format!(
                        "`{}` has random parts in several terms ({}): `{function}` needs to know \
                         which",
                        labels.join("` and `"),
                        names.join(", ")
                    ),
                    span,
                )
                .with_hint(format!(
                    "name the grouping after the label{}, e.g. `{function}({}, {last})`",
                    if labels.len() == 1 { "" } else { "s" },
                    labels.join(", ")
                )),
            );
            return None;
        }
        candidates.first().map(|(k, _)| *k)
    }

    /// The random terms (index and grouping name) with an effect for every label; none is an
    /// error at the label without random parts, or at `span` when the labels share no term.
    fn common_terms(
        &mut self,
        labels: &[&str],
        spans: &[Span],
        span: Span,
    ) -> Option<Vec<(usize, String)>> {
        let mut candidates: Option<Vec<(usize, String)>> = None;
        for (label, label_span) in labels.iter().zip(spans) {
            let terms = self.table.random_terms_of(label);
            if terms.is_empty() {
                self.errors.push(
                    Diagnostic::at(
                        format!("no random effect is labelled `{label}`"),
                        *label_span,
                    )
                    .with_expected("the label of a coefficient with a random part"),
                );
                return None;
            }
            candidates = Some(match candidates {
                None => terms,
                Some(c) => c.into_iter().filter(|t| terms.contains(t)).collect(),
            });
        }
        let candidates = candidates.unwrap_or_default();
        if candidates.is_empty() {
            self.errors.push(
                Diagnostic::at(
                    format!(
                        "`{}` and `{}` have no covariance in the fitted model: they are not in \
                         one correlated random term",
                        labels[0],
                        labels.last().copied().unwrap_or_default()
                    ),
                    span,
                )
                .with_hint(
                    "random effects are correlated only within one grouping's block (written \
                     with `|`, not `||`)",
                ),
            );
            return None;
        }
        Some(candidates)
    }

    /// The `candidates` of grouping `g`; none is an error naming the groupings there are.
    fn terms_of_grouping(
        &mut self,
        mut candidates: Vec<(usize, String)>,
        g: &str,
        labels: &[&str],
        span: Span,
    ) -> Option<Vec<(usize, String)>> {
        let all = candidates.clone();
        candidates.retain(|(_, name)| name == g);
        if candidates.is_empty() {
            let names: Vec<String> = all.iter().map(|(_, n)| format!("`{n}`")).collect();
            self.errors.push(
                Diagnostic::at(
                    format!(
                        "`{}` has no random part in a term of `{g}`",
                        labels.join("` and `")
                    ),
                    span,
                )
                .with_expected(format!("one of the groupings {}", names.join(", "))),
            );
            return None;
        }
        Some(candidates)
    }

    fn label_arg<'e>(&mut self, expr: &'e Expression, function: &str) -> Option<&'e str> {
        match &expr.kind {
            ExpressionKind::Name(name) => Some(name.text()),
            _ => {
                self.errors.push(
                    Diagnostic::at(
                        format!("`{function}` takes labels, not expressions"),
                        expr.span,
                    )
                    .with_expected("the label of a coefficient with a random part"),
                );
                None
            }
        }
    }

    /// The covariance row of two distinct random effects in `term`: the term must correlate
    /// them (the checker says so too; this guards against a table that disagrees with it).
    fn covariance(&mut self, a: &str, b: &str, term: usize, span: Span) -> Option<usize> {
        let row = self.table.covariance_in(a, b, term);
        if row.is_none() {
            self.errors.push(
                Diagnostic::at(
                    format!(
                        "`{a}` and `{b}` have no covariance in the fitted model: they are not in \
                         one correlated random term"
                    ),
                    span,
                )
                .with_hint(
                    "random effects are correlated only within one grouping's block (written \
                     with `|`, not `||`)",
                ),
            );
        }
        row
    }
}

/// The value of the function of one number `f` at `x`, by the catalogue's rule (compiled
/// programs hold only such functions).
fn apply(f: Builtin, x: f64) -> f64 {
    f.scalar().map_or(f64::NAN, |rule| rule(x))
}

/// The derivative of the function of one number `f` at `x`, by the catalogue's rule.
fn derivative(f: Builtin, x: f64) -> f64 {
    f.derivative().map_or(f64::NAN, |rule| rule(x))
}

impl DefinedQuantities {
    pub fn len(&self) -> usize {
        self.programs.len()
    }

    pub fn is_empty(&self) -> bool {
        self.programs.is_empty()
    }

    pub fn names(&self) -> impl Iterator<Item = &str> {
        self.programs.iter().map(|p| p.name.as_str())
    }

    /// Evaluates every definition at `params` (one value per table row) into `out` (one per
    /// definition). Never allocates. Out-of-domain operations give NaN, as in R.
    pub fn evaluate(&self, params: &[f64], out: &mut [f64]) {
        debug_assert_eq!(params.len(), self.parameters);
        debug_assert_eq!(out.len(), self.programs.len());
        let mut stack = [0.0f64; MAX_STACK];
        for (k, program) in self.programs.iter().enumerate() {
            let mut top = 0usize;
            for op in &program.ops {
                match *op {
                    Op::Constant(x) => {
                        stack[top] = x;
                        top += 1;
                    }
                    Op::Parameter(row) => {
                        stack[top] = params[row];
                        top += 1;
                    }
                    Op::Defined(j) => {
                        stack[top] = out[j];
                        top += 1;
                    }
                    Op::MarginalEffect(j) => {
                        stack[top] = self.effects[j].value(params);
                        top += 1;
                    }
                    Op::Neg => stack[top - 1] = -stack[top - 1],
                    Op::Function(f) => stack[top - 1] = apply(f, stack[top - 1]),
                    binary => {
                        top -= 1;
                        let (x, y) = (stack[top - 1], stack[top]);
                        stack[top - 1] = match binary {
                            Op::Add => x + y,
                            Op::Sub => x - y,
                            Op::Mul => x * y,
                            Op::Div => x / y,
                            _ => x.powf(y),
                        };
                    }
                }
            }
            out[k] = stack[0];
        }
    }

    /// The values at `params`, allocating (for one-off use).
    pub fn values(&self, params: &[f64]) -> Vec<f64> {
        let mut out = vec![0.0; self.programs.len()];
        self.evaluate(params, &mut out);
        out
    }

    /// The exact Jacobian at `params` by forward-mode differentiation: row `k` is the gradient
    /// of definition `k` over the table's rows. Exact derivatives avoid choosing steps near
    /// a variance's boundary (a step below zero would make `sd` NaN).
    pub fn jacobian(&self, params: &[f64]) -> DMatrix<f64> {
        let n = self.parameters;
        let mut values = Vec::with_capacity(self.programs.len());
        let mut jacobian = DMatrix::zeros(self.programs.len(), n);
        let mut stack: Vec<(f64, Vec<f64>)> = Vec::new();
        for (k, program) in self.programs.iter().enumerate() {
            stack.clear();
            for op in &program.ops {
                match *op {
                    Op::Constant(x) => stack.push((x, vec![0.0; n])),
                    Op::Parameter(row) => {
                        let mut g = vec![0.0; n];
                        g[row] = 1.0;
                        stack.push((params[row], g));
                    }
                    Op::Defined(j) => {
                        let g = jacobian.row(j).iter().copied().collect();
                        stack.push((values[j], g));
                    }
                    Op::MarginalEffect(j) => stack.push(self.effects[j].value_and_gradient(params)),
                    Op::Neg | Op::Function(_) => {
                        let (x, g) = stack.last_mut().expect("compiled programs are balanced");
                        let (value, slope) = match *op {
                            Op::Function(f) => (apply(f, *x), derivative(f, *x)),
                            _ => (-*x, -1.0),
                        };
                        *x = value;
                        g.iter_mut().for_each(|gi| *gi *= slope);
                    }
                    binary => {
                        let (y, gy) = stack.pop().expect("compiled programs are balanced");
                        let (x, gx) = stack.last_mut().expect("compiled programs are balanced");
                        let (value, dx, dy) = match binary {
                            Op::Add => (*x + y, 1.0, 1.0),
                            Op::Sub => (*x - y, 1.0, -1.0),
                            Op::Mul => (*x * y, y, *x),
                            Op::Div => (*x / y, 1.0 / y, -*x / (y * y)),
                            _ => {
                                let value = x.powf(y);
                                // d/dy x^y = x^y ln x; only needed when the exponent varies,
                                // and 0·ln(x) would be NaN for x ≤ 0 with a constant exponent.
                                let dy = if gy.iter().all(|&v| v == 0.0) {
                                    0.0
                                } else {
                                    value * x.ln()
                                };
                                (value, y * x.powf(y - 1.0), dy)
                            }
                        };
                        *x = value;
                        for (a, b) in gx.iter_mut().zip(&gy) {
                            *a = dx * *a + dy * b;
                        }
                    }
                }
            }
            let (value, gradient) = stack.pop().expect("compiled programs are balanced");
            values.push(value);
            for (j, g) in gradient.into_iter().enumerate() {
                jacobian[(k, j)] = g;
            }
        }
        jacobian
    }
}
