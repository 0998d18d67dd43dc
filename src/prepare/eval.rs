//! Evaluating a preparation expression over the current rows to a column (or a constant).
//!
//! Owns the value rules: arithmetic with a missing value is missing, a comparison with a missing
//! value is missing, `&` and `|` follow R's three-valued logic (`NA & FALSE` is `FALSE`), a
//! logical result is a number 1/0, text can be compared with `==`/`!=` only, and a result that is
//! not a finite number (log of 0, division by 0) becomes missing with a warning that counts the
//! rows. The functions are the catalogue's preparation functions (`crate::functions`), each
//! call already bound to its entry by `check`. It must not change the rows: `keep` does that.

use std::borrow::Cow;
use std::cell::RefCell;

use super::grouped::{self, GroupIds, NONE};
use super::summaries::{call_key, GrandSums, GroupKey, SampleSummaries, SummaryMode};
use super::workspace::Workspace;
use crate::data::{Column, MISSING_CODE};
use crate::diagnostics::{Diagnostic, Location, Span};
use crate::functions::Builtin;
use crate::model::expression::{
    print as expr_text, Argument, BinaryOp, Expression as Expr, ExpressionKind as ExprKind, Name,
    UnaryOp,
};

/// The result of an expression: a column over the current rows, or a constant.
#[derive(Debug, Clone)]
pub(crate) enum Value<'a> {
    Numbers(Cow<'a, [f64]>),
    Number(f64),
    Text {
        codes: Cow<'a, [u32]>,
        levels: Cow<'a, [String]>,
    },
    String(String),
}

impl Value<'_> {
    /// An owned column of `n` rows (constants repeated).
    pub fn into_column(self, n: usize) -> Column {
        match self {
            Value::Numbers(v) => Column::Numeric(v.into_owned()),
            Value::Number(x) => Column::Numeric(vec![x; n]),
            Value::Text { codes, levels } => Column::Text {
                codes: codes.into_owned(),
                levels: levels.into_owned(),
            },
            Value::String(s) => Column::Text {
                codes: vec![0; n],
                levels: vec![s],
            },
        }
    }
}

/// Why an evaluation stopped.
#[derive(Debug)]
pub(crate) enum Failure {
    Error(Box<Diagnostic>),
    /// The expression uses a `let` whose own definition failed and was reported already.
    Poisoned,
}

impl From<Diagnostic> for Failure {
    fn from(d: Diagnostic) -> Self {
        Failure::Error(Box::new(d))
    }
}

pub(crate) type Eval<T> = Result<T, Failure>;

/// A numeric operand: a column or a constant.
enum Nums<'a> {
    Col(Cow<'a, [f64]>),
    Const(f64),
}

impl Nums<'_> {
    #[inline]
    fn get(&self, i: usize) -> f64 {
        match self {
            Nums::Col(v) => v[i],
            Nums::Const(x) => *x,
        }
    }

    fn to_vec(&self, n: usize) -> Vec<f64> {
        match self {
            Nums::Col(v) => v.to_vec(),
            Nums::Const(x) => vec![*x; n],
        }
    }
}

fn truth(x: f64) -> Option<bool> {
    if x.is_nan() {
        None
    } else {
        Some(x != 0.0)
    }
}

fn logical(b: Option<bool>) -> f64 {
    match b {
        Some(true) => 1.0,
        Some(false) => 0.0,
        None => f64::NAN,
    }
}

/// Apply `f` row by row without any missing-value rule of its own (logic, comparisons).
fn map_plain<'a>(a: &Nums, b: &Nums, n: usize, f: impl Fn(f64, f64) -> f64) -> Value<'a> {
    match (a, b) {
        (Nums::Const(x), Nums::Const(y)) => Value::Number(f(*x, *y)),
        _ => Value::Numbers(Cow::Owned((0..n).map(|i| f(a.get(i), b.get(i))).collect())),
    }
}

fn compare_numbers(op: BinaryOp, x: f64, y: f64) -> f64 {
    if x.is_nan() || y.is_nan() {
        return f64::NAN;
    }
    let b = match op {
        BinaryOp::Eq => x == y,
        BinaryOp::Ne => x != y,
        BinaryOp::Lt => x < y,
        BinaryOp::Le => x <= y,
        BinaryOp::Gt => x > y,
        BinaryOp::Ge => x >= y,
        _ => unreachable!("not a comparison"),
    };
    logical(Some(b))
}

/// Text operands of a comparison, as per-row strings (`None` for missing).
enum Texts<'v> {
    Col {
        codes: &'v [u32],
        levels: &'v [String],
    },
    Const(&'v str),
}

impl Texts<'_> {
    fn get(&self, i: usize) -> Option<&str> {
        match self {
            Texts::Col { codes, levels } => {
                let c = codes[i];
                (c != MISSING_CODE).then(|| levels[c as usize].as_str())
            }
            Texts::Const(s) => Some(s),
        }
    }
}

fn texts<'v>(value: &'v Value) -> Option<Texts<'v>> {
    match value {
        Value::Text { codes, levels } => Some(Texts::Col { codes, levels }),
        Value::String(s) => Some(Texts::Const(s)),
        _ => None,
    }
}

pub(crate) struct Evaluator<'a> {
    pub ws: &'a Workspace<'a>,
    pub vary: &'a [(String, f64)],
    pub warnings: Vec<Diagnostic>,
}

impl<'a> Evaluator<'a> {
    pub fn new(ws: &'a Workspace<'a>, vary: &'a [(String, f64)]) -> Self {
        Evaluator {
            ws,
            vary,
            warnings: Vec::new(),
        }
    }

    fn n(&self) -> usize {
        self.ws.nrows()
    }

    pub fn eval(&mut self, expr: &Expr) -> Eval<Value<'a>> {
        match &expr.kind {
            ExprKind::Number(v) => Ok(Value::Number(*v)),
            ExprKind::Text(s) => Ok(Value::String(s.clone())),
            ExprKind::Missing => Ok(Value::Number(f64::NAN)),
            ExprKind::Name(name) => self.lookup(name, expr.span),
            ExprKind::Unary { op, operand } => {
                let x = self.numbers(operand)?;
                Ok(match op {
                    UnaryOp::Neg => self.map_numeric(&x, &Nums::Const(0.0), expr, |v, _| -v),
                    UnaryOp::Not => map_plain(&x, &Nums::Const(0.0), self.n(), |v, _| {
                        logical(truth(v).map(|b| !b))
                    }),
                })
            }
            ExprKind::Binary { op, lhs, rhs } => self.binary(*op, lhs, rhs, expr),
            ExprKind::Call { function, args } => self.call(*function, args, expr),
        }
    }

    /// A name's value: a column of the rows (data or `let`), or the `vary` value. `check`
    /// resolved the name; a column may still be absent from a table other than the one checked.
    fn lookup(&self, name: &Name, span: Span) -> Eval<Value<'a>> {
        let ws: &'a Workspace<'a> = self.ws;
        let text = name.text();
        if let Name::Constant(_) = name {
            if let Some(v) = crate::functions::constant(text) {
                return Ok(Value::Number(v));
            }
        }
        let found = match name {
            Name::Vary(_) => None,
            _ => ws.column(text),
        };
        if let Some(column) = found {
            return Ok(match column {
                Column::Numeric(v) => Value::Numbers(Cow::Borrowed(v)),
                Column::Text { codes, levels } => Value::Text {
                    codes: Cow::Borrowed(codes),
                    levels: Cow::Borrowed(levels),
                },
            });
        }
        if let Some((_, v)) = self.vary.iter().find(|(n, _)| n == text) {
            return Ok(Value::Number(*v));
        }
        if ws.failed.contains(text) {
            return Err(Failure::Poisoned);
        }
        Err(Diagnostic::at(
            format!("`{text}` is not a column, an earlier `let` or a `vary` name"),
            span,
        )
        .into())
    }

    fn numbers(&mut self, expr: &Expr) -> Eval<Nums<'a>> {
        let value = self.eval(expr)?;
        self.as_numbers(value, expr)
    }

    fn as_numbers(&self, value: Value<'a>, expr: &Expr) -> Eval<Nums<'a>> {
        match value {
            Value::Numbers(v) => Ok(Nums::Col(v)),
            Value::Number(x) => Ok(Nums::Const(x)),
            Value::Text { .. } | Value::String(_) => Err(self.not_a_number(expr).into()),
        }
    }

    /// Text where a number is needed. For a data column that is text only because of a few
    /// cells, name the first such cell: that is what the user has to fix.
    fn not_a_number(&self, expr: &Expr) -> Diagnostic {
        if let ExprKind::Name(name) = &expr.kind {
            let name = name.text();
            if let Some(stray) = self.ws.stray.get(name) {
                return Diagnostic::at(
                    format!(
                        "{}, column `{name}`: `{}` is not a number",
                        stray.place(),
                        stray.text
                    ),
                    expr.span,
                )
                .with_hint(
                    "the column is read as text because of this cell; correct it, or leave it \
                     empty (or NA) if the value is missing",
                );
            }
            return Diagnostic::at(
                format!("`{name}` is a text column, not a number"),
                expr.span,
            );
        }
        Diagnostic::at(
            format!("`{}` is text, not a number", expr_text(expr)),
            expr.span,
        )
    }

    fn warn_not_finite(&mut self, expr: &Expr, rows: usize, first: Option<usize>) {
        let place = first
            .and_then(|i| self.ws.source_rows.get(i))
            .map(|&r| self.ws.row_place(r));
        let what = expr_text(expr);
        let message = match (rows, place) {
            (1, Some(place)) => {
                format!("`{what}` is not a finite number on {place}; it is missing")
            }
            (1, None) => format!("`{what}` is not a finite number in 1 row; it is missing"),
            (_, Some(place)) => format!(
                "`{what}` is not a finite number in {rows} rows, the first on {place}; they are \
                 missing"
            ),
            (_, None) => {
                format!("`{what}` is not a finite number in {rows} rows; they are missing")
            }
        };
        self.warnings
            .push(Diagnostic::warning(message, Location::Source(expr.span)));
    }

    /// Arithmetic: missing in, missing out; a non-finite result from non-missing operands (log of
    /// 0, division by 0) becomes missing and is counted in a warning at `expr`.
    fn map_numeric(
        &mut self,
        a: &Nums,
        b: &Nums,
        expr: &Expr,
        f: impl Fn(f64, f64) -> f64,
    ) -> Value<'a> {
        let apply = |x: f64, y: f64| -> (f64, bool) {
            if x.is_nan() || y.is_nan() {
                return (f64::NAN, false);
            }
            let v = f(x, y);
            if v.is_finite() {
                (v, false)
            } else {
                (f64::NAN, true)
            }
        };
        if let (Nums::Const(x), Nums::Const(y)) = (a, b) {
            let (v, bad) = apply(*x, *y);
            if bad {
                self.warn_not_finite(expr, self.n(), Some(0));
            }
            return Value::Number(v);
        }
        let n = self.n();
        let mut out = Vec::with_capacity(n);
        let (mut bad, mut first) = (0usize, None);
        for i in 0..n {
            let (v, is_bad) = apply(a.get(i), b.get(i));
            if is_bad {
                bad += 1;
                first.get_or_insert(i);
            }
            out.push(v);
        }
        if bad > 0 {
            self.warn_not_finite(expr, bad, first);
        }
        Value::Numbers(Cow::Owned(out))
    }

    fn binary(&mut self, op: BinaryOp, lhs: &Expr, rhs: &Expr, expr: &Expr) -> Eval<Value<'a>> {
        let n = self.n();
        match op {
            BinaryOp::Add | BinaryOp::Sub | BinaryOp::Mul | BinaryOp::Div | BinaryOp::Pow => {
                let a = self.numbers(lhs)?;
                let b = self.numbers(rhs)?;
                Ok(self.map_numeric(&a, &b, expr, |x, y| match op {
                    BinaryOp::Add => x + y,
                    BinaryOp::Sub => x - y,
                    BinaryOp::Mul => x * y,
                    BinaryOp::Div => x / y,
                    _ => x.powf(y),
                }))
            }
            BinaryOp::And | BinaryOp::Or => {
                let a = self.numbers(lhs)?;
                let b = self.numbers(rhs)?;
                Ok(map_plain(&a, &b, n, |x, y| {
                    let (p, q) = (truth(x), truth(y));
                    logical(if op == BinaryOp::And {
                        match (p, q) {
                            (Some(false), _) | (_, Some(false)) => Some(false),
                            (Some(true), Some(true)) => Some(true),
                            _ => None,
                        }
                    } else {
                        match (p, q) {
                            (Some(true), _) | (_, Some(true)) => Some(true),
                            (Some(false), Some(false)) => Some(false),
                            _ => None,
                        }
                    })
                }))
            }
            _ => {
                let a = self.eval(lhs)?;
                let b = self.eval(rhs)?;
                match (texts(&a), texts(&b)) {
                    (None, None) => {
                        let a = self.as_numbers(a, lhs)?;
                        let b = self.as_numbers(b, rhs)?;
                        Ok(map_plain(&a, &b, n, |x, y| compare_numbers(op, x, y)))
                    }
                    (Some(ta), Some(tb)) => self.compare_texts(op, &ta, &tb, expr),
                    (Some(_), None) => Err(self.text_vs_number(lhs, expr).into()),
                    (None, Some(_)) => Err(self.text_vs_number(rhs, expr).into()),
                }
            }
        }
    }

    fn text_vs_number(&self, text_side: &Expr, expr: &Expr) -> Diagnostic {
        let d = self.not_a_number(text_side);
        if self.ws.stray.contains_key(match &text_side.kind {
            ExprKind::Name(n) => n.text(),
            _ => "",
        }) {
            return d;
        }
        Diagnostic::at(
            format!("`{}` compares text with a number", expr_text(expr)),
            expr.span,
        )
        .with_hint("compare a text column with a string in quotes: `sex == \"Male\"`")
    }

    fn compare_texts(
        &mut self,
        op: BinaryOp,
        a: &Texts,
        b: &Texts,
        expr: &Expr,
    ) -> Eval<Value<'a>> {
        let equal = match op {
            BinaryOp::Eq => true,
            BinaryOp::Ne => false,
            _ => {
                return Err(Diagnostic::at(
                    format!(
                        "text can be compared with `==` and `!=` only, not `{}`",
                        op.symbol()
                    ),
                    expr.span,
                )
                .into())
            }
        };
        let row = |i: usize| match (a.get(i), b.get(i)) {
            (Some(x), Some(y)) => logical(Some((x == y) == equal)),
            _ => f64::NAN,
        };
        if let (Texts::Const(_), Texts::Const(_)) = (a, b) {
            return Ok(Value::Number(row(0)));
        }
        // A column against a constant compares codes, not strings.
        let out: Vec<f64> = match (a, b) {
            (Texts::Col { codes, levels }, Texts::Const(s))
            | (Texts::Const(s), Texts::Col { codes, levels }) => {
                let target = levels.iter().position(|l| l == s).map(|p| p as u32);
                codes
                    .iter()
                    .map(|&c| {
                        if c == MISSING_CODE {
                            f64::NAN
                        } else {
                            logical(Some((Some(c) == target) == equal))
                        }
                    })
                    .collect()
            }
            _ => (0..self.n()).map(row).collect(),
        };
        Ok(Value::Numbers(Cow::Owned(out)))
    }

    /// Match a call's arguments to the function's parameters (positional, or by name).
    fn bind<'e>(
        &self,
        function: Builtin,
        call: &Expr,
        args: &'e [Argument],
    ) -> Eval<Vec<Option<&'e Expr>>> {
        let entry = function.entry();
        let (params, required, function) = (entry.parameters, entry.required, entry.name);
        let mut bound: Vec<Option<&'e Expr>> = vec![None; params.len()];
        let mut next = 0;
        for arg in args {
            let slot = match &arg.name {
                Some(name) => match params.iter().position(|p| *p == name.text) {
                    Some(slot) => slot,
                    None => {
                        return Err(Diagnostic::at(
                            format!("`{function}` has no argument `{}`", name.text),
                            name.span,
                        )
                        .with_expected(format!("one of: {}", params.join(", ")))
                        .into())
                    }
                },
                None => {
                    while next < params.len() && bound[next].is_some() {
                        next += 1;
                    }
                    if next == params.len() {
                        return Err(self.arity(function, call, params, required).into());
                    }
                    next
                }
            };
            if bound[slot].is_some() {
                return Err(Diagnostic::at(
                    format!("argument `{}` of `{function}` is given twice", params[slot]),
                    arg.value.span,
                )
                .into());
            }
            bound[slot] = Some(&arg.value);
        }
        if bound[..required].iter().any(Option::is_none) {
            return Err(self.arity(function, call, params, required).into());
        }
        Ok(bound)
    }

    fn arity(&self, function: &str, call: &Expr, params: &[&str], required: usize) -> Diagnostic {
        let count = if required == params.len() {
            format!("{required}")
        } else {
            format!("{required} to {}", params.len())
        };
        Diagnostic::at(
            format!(
                "`{function}` takes {count} argument{} ({})",
                if params.len() == 1 { "" } else { "s" },
                params.join(", ")
            ),
            call.span,
        )
    }

    fn call(&mut self, function: Builtin, args: &[Argument], call: &Expr) -> Eval<Value<'a>> {
        if let Some(f) = function.scalar() {
            return self.elementwise(f, function, args, call);
        }
        match function {
            Builtin::Center | Builtin::Scale => self.standardise(function, args, call),
            Builtin::Within | Builtin::Between => self.group_deviation(function, args, call),
            Builtin::Lag | Builtin::Lead | Builtin::Diff => self.shift(function, args, call),
            Builtin::IsMissing => {
                let [x] = self.bind(function, call, args)?[..] else {
                    unreachable!()
                };
                let missing = self.missing_rows(x.unwrap())?;
                Ok(Value::Numbers(Cow::Owned(
                    missing.iter().map(|&m| logical(Some(m))).collect(),
                )))
            }
            Builtin::Complete => self.complete(args, call),
            Builtin::Ifelse => {
                let [c, yes, no] = self.bind(function, call, args)?[..] else {
                    unreachable!()
                };
                let (c, yes, no) = (c.unwrap(), yes.unwrap(), no.unwrap());
                let cond = self.numbers(c)?;
                let a = self.eval(yes)?;
                let b = self.eval(no)?;
                self.ifelse(&cond, (a, yes), (b, no), call)
            }
            _ => Err(Diagnostic::at(
                format!(
                    "`{}` is not a function of `let` and `keep`",
                    function.name()
                ),
                call.span,
            )
            .into()),
        }
    }

    /// A function of one number (`log`, `exp`, `sqrt`, `abs`): its catalogue rule, row by row.
    fn elementwise(
        &mut self,
        f: fn(f64) -> f64,
        function: Builtin,
        args: &[Argument],
        call: &Expr,
    ) -> Eval<Value<'a>> {
        let [x] = self.bind(function, call, args)?[..] else {
            unreachable!()
        };
        let x = self.numbers(x.unwrap())?;
        Ok(self.map_numeric(&x, &Nums::Const(0.0), call, |v, _| f(v)))
    }

    /// `center` and `scale`: by the mean and sd of all rows (out of core, of the whole file).
    fn standardise(
        &mut self,
        function: Builtin,
        args: &[Argument],
        call: &Expr,
    ) -> Eval<Value<'a>> {
        let n = self.n();
        let [x] = self.bind(function, call, args)?[..] else {
            unreachable!()
        };
        let x = self.numbers(x.unwrap())?.to_vec(n);
        let Some((mean, sd)) = self.grand_mean_sd(&x, call) else {
            // Provisional: missing where the final value is.
            return Ok(Value::Numbers(Cow::Owned(x)));
        };
        let divisor = if function == Builtin::Center {
            Some(1.0)
        } else {
            sd.filter(|s| *s > 0.0)
        };
        match (mean, divisor) {
            (Some(m), Some(s)) => Ok(Value::Numbers(Cow::Owned(
                x.iter().map(|v| (v - m) / s).collect(),
            ))),
            _ => {
                let why = if mean.is_none() {
                    "no value is present"
                } else {
                    "its values do not vary (sd 0, or a single value)"
                };
                self.warnings.push(Diagnostic::warning(
                    format!(
                        "`{}` cannot be computed: {why}; it is missing in every row",
                        expr_text(call)
                    ),
                    Location::Source(call.span),
                ));
                Ok(Value::Numbers(Cow::Owned(vec![f64::NAN; n])))
            }
        }
    }

    /// The mean and sd `center`/`scale` use: of these rows, or out of core of the whole file's
    /// sums; `None` while the sums are being collected (the sums of `x` are recorded).
    fn grand_mean_sd(&self, x: &[f64], call: &Expr) -> Option<(Option<f64>, Option<f64>)> {
        match self.ws.summaries {
            None => Some(grouped::mean_sd(x)),
            Some(summaries) => {
                let key = call_key(call.span);
                let mut summaries = summaries.borrow_mut();
                if summaries.mode == SummaryMode::Collect {
                    summaries.record_grand(key, GrandSums::of(x));
                    return None;
                }
                Some(
                    summaries
                        .grand
                        .get(&key)
                        .copied()
                        .unwrap_or_default()
                        .mean_sd(),
                )
            }
        }
    }

    /// `within` and `between`: deviations from, or the value of, each group's mean.
    fn group_deviation(
        &mut self,
        function: Builtin,
        args: &[Argument],
        call: &Expr,
    ) -> Eval<Value<'a>> {
        let n = self.n();
        let [x, g] = self.bind(function, call, args)?[..] else {
            unreachable!()
        };
        let x = self.numbers(x.unwrap())?.to_vec(n);
        let group = match g {
            Some(g) => g.clone(),
            None => self.grouping_for(function, call)?,
        };
        let Some(summaries) = self.ws.summaries else {
            let groups = self.groups_of(&group)?;
            let out = if function == Builtin::Within {
                grouped::within(&x, &groups)
            } else {
                grouped::between(&x, &groups)
            };
            return Ok(Value::Numbers(Cow::Owned(out)));
        };
        self.group_deviation_over_pieces(summaries, function, x, &group, call)
    }

    /// The `group` statement's grouping for `within`/`between` called without one.
    fn grouping_for(&self, function: Builtin, call: &Expr) -> Eval<Expr> {
        let function = function.name();
        match self.group_statement() {
            Some(group) => Ok(group),
            None => Err(Diagnostic::at(
                format!("`{function}` needs a grouping, and the file has no `group` statement"),
                call.span,
            )
            .with_hint(format!(
                "add `group <column>` before this line, or write `{function}(x, <column>)`"
            ))
            .into()),
        }
    }

    /// Out of core: group means over all rows, by the group's value.
    fn group_deviation_over_pieces(
        &mut self,
        summaries: &RefCell<SampleSummaries>,
        function: Builtin,
        x: Vec<f64>,
        group: &Expr,
        call: &Expr,
    ) -> Eval<Value<'a>> {
        let value = self.eval(group)?;
        let keys = self.group_keys(value, group)?;
        let key = call_key(call.span);
        let mut summaries = summaries.borrow_mut();
        if summaries.mode == SummaryMode::Collect {
            summaries.record_groups(key, &x, &keys);
            return Ok(Value::Numbers(Cow::Owned(x)));
        }
        let mut last: Option<(&GroupKey, f64)> = None;
        let out = x
            .iter()
            .zip(&keys)
            .map(|(&v, g)| {
                let Some(g) = g else { return f64::NAN };
                let mean = match last {
                    Some((k, m)) if k == g => m,
                    _ => {
                        let m = summaries.group_mean(key, g);
                        last = Some((g, m));
                        m
                    }
                };
                if function == Builtin::Within {
                    v - mean
                } else {
                    mean
                }
            })
            .collect();
        Ok(Value::Numbers(Cow::Owned(out)))
    }

    /// `lag`, `lead` and `diff`: rows shifted within the `group` statement's groups, in the
    /// `order` statement's order.
    fn shift(&mut self, function: Builtin, args: &[Argument], call: &Expr) -> Eval<Value<'a>> {
        let n = self.n();
        let [x, k] = self.bind(function, call, args)?[..] else {
            unreachable!()
        };
        let x_expr = x.unwrap();
        let value = self.eval(x_expr)?;
        let k = self.steps(k)?;
        let groups = self
            .default_groups()?
            .unwrap_or_else(|| GroupIds::single(n));
        let order = self.order_key()?;
        let sources =
            grouped::shift_sources(&groups, order.as_deref(), k, function == Builtin::Lead);
        if function == Builtin::Diff {
            let x = self.as_numbers(value, x_expr)?;
            let x = x.to_vec(n);
            let lagged: Vec<f64> = sources
                .iter()
                .map(|&s| if s == NONE { f64::NAN } else { x[s as usize] })
                .collect();
            return Ok(self.map_numeric(
                &Nums::Col(Cow::Owned(x)),
                &Nums::Col(Cow::Owned(lagged)),
                call,
                |a, b| a - b,
            ));
        }
        Ok(shifted(value.into_column(n), &sources))
    }

    /// `complete`: 1 where none of the columns is missing.
    fn complete(&mut self, args: &[Argument], call: &Expr) -> Eval<Value<'a>> {
        if args.is_empty() {
            return Err(Diagnostic::at("`complete` takes one or more columns", call.span).into());
        }
        let mut missing = vec![false; self.n()];
        for arg in args {
            if let Some(name) = &arg.name {
                return Err(Diagnostic::at(
                    "`complete` takes columns, not named arguments",
                    name.span,
                )
                .into());
            }
            for (m, x) in missing.iter_mut().zip(self.missing_rows(&arg.value)?) {
                *m |= x;
            }
        }
        Ok(Value::Numbers(Cow::Owned(
            missing.iter().map(|&m| logical(Some(!m))).collect(),
        )))
    }

    fn ifelse(
        &mut self,
        cond: &Nums,
        (a, yes): (Value<'a>, &Expr),
        (b, no): (Value<'a>, &Expr),
        call: &Expr,
    ) -> Eval<Value<'a>> {
        let n = self.n();
        let pick = |i: usize| truth(cond.get(i));
        match (texts(&a), texts(&b)) {
            (None, None) => {
                let a = self.as_numbers(a, yes)?;
                let b = self.as_numbers(b, no)?;
                Ok(Value::Numbers(Cow::Owned(
                    (0..n)
                        .map(|i| match pick(i) {
                            Some(true) => a.get(i),
                            Some(false) => b.get(i),
                            None => f64::NAN,
                        })
                        .collect(),
                )))
            }
            (Some(ta), Some(tb)) => Ok(ifelse_text(n, pick, &ta, &tb)),
            _ => Err(Diagnostic::at(
                "`ifelse` needs both results to be numbers or both to be text",
                call.span,
            )
            .into()),
        }
    }

    /// Which rows of the expression's value are missing.
    fn missing_rows(&mut self, expr: &Expr) -> Eval<Vec<bool>> {
        let n = self.n();
        Ok(match self.eval(expr)? {
            Value::Numbers(v) => v.iter().map(|x| x.is_nan()).collect(),
            Value::Text { codes, .. } => codes.iter().map(|&c| c == MISSING_CODE).collect(),
            Value::Number(x) => vec![x.is_nan(); n],
            Value::String(_) => vec![false; n],
        })
    }

    /// Groups given by an expression (the second argument of `within`/`between`).
    fn groups_of(&mut self, expr: &Expr) -> Eval<GroupIds> {
        match self.eval(expr)? {
            Value::Numbers(v) => Ok(GroupIds::from_numbers(&v)),
            Value::Text { codes, .. } => Ok(GroupIds::from_codes(&codes)),
            Value::Number(_) | Value::String(_) => Err(Diagnostic::at(
                format!("`{}` is a constant, not a grouping column", expr_text(expr)),
                expr.span,
            )
            .into()),
        }
    }

    /// Each row's group value, for summaries over pieces of a file (`None`: missing).
    fn group_keys(&self, value: Value<'a>, expr: &Expr) -> Eval<Vec<Option<GroupKey>>> {
        match value {
            Value::Numbers(v) => Ok(v
                .iter()
                .map(|x| (!x.is_nan()).then(|| GroupKey::Number((x + 0.0).to_bits())))
                .collect()),
            Value::Text { codes, levels } => {
                let keys: Vec<GroupKey> =
                    levels.iter().map(|l| GroupKey::Text(l.clone())).collect();
                Ok(codes
                    .iter()
                    .map(|&c| (c != MISSING_CODE).then(|| keys[c as usize].clone()))
                    .collect())
            }
            Value::Number(_) | Value::String(_) => Err(Diagnostic::at(
                format!("`{}` is a constant, not a grouping column", expr_text(expr)),
                expr.span,
            )
            .into()),
        }
    }

    /// The `group` statement's grouping, if the file has one.
    fn default_groups(&mut self) -> Eval<Option<GroupIds>> {
        match self.group_statement() {
            Some(expr) => self.groups_of(&expr).map(Some),
            None => Ok(None),
        }
    }

    /// The `group` statement's column as an expression, if the file has one.
    fn group_statement(&self) -> Option<Expr> {
        self.ws.group.clone().map(|group| Expr {
            kind: ExprKind::Name(group.name),
            span: group.span,
        })
    }

    /// The `order` statement's column as sortable numbers (text by level), if there is one.
    fn order_key(&mut self) -> Eval<Option<Vec<f64>>> {
        let Some(order) = self.ws.order.clone() else {
            return Ok(None);
        };
        Ok(Some(match self.lookup(&order.name, order.span)? {
            Value::Numbers(v) => v.into_owned(),
            Value::Text { codes, .. } => codes
                .iter()
                .map(|&c| {
                    if c == MISSING_CODE {
                        f64::NAN
                    } else {
                        c as f64
                    }
                })
                .collect(),
            Value::Number(_) | Value::String(_) => {
                return Err(Diagnostic::at(
                    format!(
                        "`order` needs a column; `{}` is a constant",
                        order.name.text()
                    ),
                    order.span,
                )
                .into())
            }
        }))
    }

    /// The `k` of lag/lead/diff: a whole number 0 or more, written or from a `vary` name.
    fn steps(&mut self, arg: Option<&Expr>) -> Eval<usize> {
        let Some(arg) = arg else {
            return Ok(1);
        };
        match self.eval(arg)? {
            Value::Number(k) if k >= 0.0 && k.fract() == 0.0 && k < 1e9 => Ok(k as usize),
            Value::Number(k) => Err(Diagnostic::at(
                format!("the number of steps must be a whole number, 0 or more, not {k}"),
                arg.span,
            )
            .into()),
            _ => Err(Diagnostic::at(
                "the number of steps must be a number or a `vary` name, not a column",
                arg.span,
            )
            .into()),
        }
    }
}

/// A column's rows taken from `sources` (missing where a source is `NONE`).
fn shifted<'a>(column: Column, sources: &[u32]) -> Value<'a> {
    match column {
        Column::Numeric(x) => Value::Numbers(Cow::Owned(
            sources
                .iter()
                .map(|&s| if s == NONE { f64::NAN } else { x[s as usize] })
                .collect(),
        )),
        Column::Text { codes, levels } => Value::Text {
            codes: Cow::Owned(
                sources
                    .iter()
                    .map(|&s| {
                        if s == NONE {
                            MISSING_CODE
                        } else {
                            codes[s as usize]
                        }
                    })
                    .collect(),
            ),
            levels: Cow::Owned(levels),
        },
    }
}

/// `ifelse` with text results: codes into the sorted union of both sides' levels.
fn ifelse_text<'a>(
    n: usize,
    pick: impl Fn(usize) -> Option<bool>,
    ta: &Texts,
    tb: &Texts,
) -> Value<'a> {
    let mut levels: Vec<String> = Vec::new();
    for t in [ta, tb] {
        match t {
            Texts::Col { levels: l, .. } => levels.extend(l.iter().cloned()),
            Texts::Const(s) => levels.push(s.to_string()),
        }
    }
    levels.sort_by(|x, y| x.as_bytes().cmp(y.as_bytes()));
    levels.dedup();
    let code_of = |s: Option<&str>| {
        s.and_then(|s| {
            levels
                .binary_search_by(|l| l.as_bytes().cmp(s.as_bytes()))
                .ok()
        })
        .map_or(MISSING_CODE, |p| p as u32)
    };
    let codes: Vec<u32> = (0..n)
        .map(|i| match pick(i) {
            Some(true) => code_of(ta.get(i)),
            Some(false) => code_of(tb.get(i)),
            None => MISSING_CODE,
        })
        .collect();
    let (codes, kept) = picked_levels(codes, levels);
    Value::Text {
        codes: Cow::Owned(codes),
        levels: Cow::Owned(kept),
    }
}

/// As R's character result: only the strings that were picked are levels.
fn picked_levels(codes: Vec<u32>, levels: Vec<String>) -> (Vec<u32>, Vec<String>) {
    let mut used = vec![false; levels.len()];
    for &c in codes.iter().filter(|&&c| c != MISSING_CODE) {
        used[c as usize] = true;
    }
    let mut remap = vec![MISSING_CODE; levels.len()];
    let mut kept = Vec::new();
    for (i, level) in levels.into_iter().enumerate() {
        if used[i] {
            remap[i] = kept.len() as u32;
            kept.push(level);
        }
    }
    (crate::data::remap_codes(codes, &remap), kept)
}
