//! Source text → typed AST (`ModelFile`) with byte spans.
//!
//! Owns running the pest grammar (`grammar/tandem.pest`) and turning its pairs into `ast` values,
//! and turning everything that goes wrong into located `Diagnostic`s: pest's failure (with its
//! expected rules in plain words), the grammar's mistake-catching rules, numbers that overflow,
//! bad escapes, invalid UTF-8 and nesting too deep to handle safely. It must not resolve names
//! or decide meaning (an empty file parses to zero statements; `check` says that is not a model).

use pest::iterators::{Pair, Pairs};
use pest::Parser;

use crate::diagnostics::{did_you_mean, Diagnostic, Location};
use crate::syntax::ast::*;

#[derive(pest_derive::Parser)]
#[grammar = "../grammar/tandem.pest"]
struct TandemParser;

/// How deeply expressions may nest (parentheses, prefix operators, exponents). Deeper input is
/// certainly not a real model, and refusing it keeps recursion (here, in `format`, in `Drop`)
/// far from the stack's limit.
const MAX_DEPTH: usize = 128;

/// The statement keywords, for "did you mean" on an unknown statement (and for telling a data
/// file from a model file).
pub const STATEMENT_KEYWORDS: [&str; 11] = [
    "data", "group", "order", "factor", "let", "keep", "residual", "family", "estimate",
    "interval", "vary",
];

const EXPECTED_STATEMENT: &str = "a statement (`data`, `group`, `order`, `factor`, `let`, `keep`, \
     `residual`, `family`, `estimate`, `interval`, `vary`, `y ~ ...` or `name := ...`)";

/// Parse a model file's text. All problems found are returned, in source order.
pub fn parse(source: &str) -> Result<ModelFile, Vec<Diagnostic>> {
    let pairs = match TandemParser::parse(Rule::file, source) {
        Ok(pairs) => pairs,
        Err(error) => return Err(vec![pest_error_to_diagnostic(&error, source)]),
    };
    let mut builder = Builder {
        diagnostics: Vec::new(),
        depth: 0,
        reported_too_deep: false,
    };
    let file = builder.file(pairs);
    if builder.diagnostics.is_empty() {
        Ok(file)
    } else {
        builder.diagnostics.sort_by_key(|d| match d.location {
            Location::Source(span) => span.start,
            _ => 0,
        });
        Err(builder.diagnostics)
    }
}

/// Parse a model file's raw bytes: invalid UTF-8 is reported at the offending byte.
pub fn parse_bytes(bytes: &[u8]) -> Result<ModelFile, Vec<Diagnostic>> {
    match std::str::from_utf8(bytes) {
        Ok(text) => parse(text),
        Err(error) => {
            let at = error.valid_up_to();
            let len = error.error_len().unwrap_or(bytes.len() - at).max(1);
            Err(vec![Diagnostic::at(
                format!(
                    "the model file is not UTF-8 text (byte 0x{:02X} at offset {at})",
                    bytes[at]
                ),
                Span::new(at, at + len),
            )
            .with_hint(
                "a model file is plain text; is this the right file?",
            )])
        }
    }
}

// ------------------------------------------------------------------------------------------------
// pest's failure → Diagnostic

fn pest_error_to_diagnostic(error: &pest::error::Error<Rule>, source: &str) -> Diagnostic {
    let pos = match error.location {
        pest::error::InputLocation::Pos(p) => p,
        pest::error::InputLocation::Span((s, _)) => s,
    };
    let (found, found_len) = found_at(source, pos);
    let span = Span::new(pos, pos + found_len);
    match &error.variant {
        pest::error::ErrorVariant::ParsingError {
            positives,
            negatives,
        } => {
            let expected = match keyword_just_before(source, pos) {
                Some(keyword) => Some(after_keyword(keyword).to_string()),
                None => describe_expected(positives),
            };
            let message = if source[pos..].starts_with('`') {
                "a backquoted name that is not closed".to_string()
            } else {
                format!("unexpected {found}")
            };
            let mut diagnostic = Diagnostic::at(message, span);
            if let Some(expected) = &expected {
                diagnostic = diagnostic.with_expected(expected.clone());
            }
            if positives.is_empty()
                && (negatives.contains(&Rule::tilde) || negatives.contains(&Rule::define_op))
            {
                // Only `residual`'s optional equation name refuses a following `~` or `:=`.
                diagnostic = diagnostic.with_hint(
                    "the name before this starts a new statement, so the statement before it is \
                     incomplete (e.g. `residual` needs `by column` or `correlated within column`)",
                );
            } else if positives.contains(&Rule::rparen) && statement_at(source, pos) == "family" {
                diagnostic = diagnostic.with_hint(
                    "a family option's value is a name (a link or a column); compute a column \
                     with `let`, e.g. `let log_exposure = log(exposure)`",
                );
            } else if positives.contains(&Rule::rparen) {
                if let Some(open) = unclosed_paren_before(source, pos) {
                    let (line, col) = line_col(source, open);
                    diagnostic = diagnostic.with_hint(format!(
                        "the `(` at line {line}, column {col} is not closed"
                    ));
                }
            } else if source[pos..].starts_with('`') {
                diagnostic = diagnostic.with_hint(
                    "a backquoted name (`Reaction Time`) is closed by a second ` on the same line",
                );
            } else if source[pos..].starts_with(|c: char| !c.is_ascii() && c.is_alphabetic()) {
                diagnostic = diagnostic.with_hint(
                    "names are made of ASCII letters, digits, `_` and `.`; write any other name \
                     between backquotes (`Reaction Time`)",
                );
            } else if source[pos..].starts_with('=')
                && positives.contains(&Rule::tilde)
                && keyword_just_before(source, pos).is_none()
            {
                diagnostic = diagnostic.with_hint(
                    "an equation is written `y ~ 1 + x`; a new variable is `let name = ...`",
                );
            }
            diagnostic
        }
        pest::error::ErrorVariant::CustomError { message } => Diagnostic::at(
            format!("the model file could not be parsed: {message}"),
            span,
        )
        .with_hint("is the nesting of parentheses or operators unreasonably deep?"),
    }
}

/// The first word of the line holding `pos`.
fn statement_at(source: &str, pos: usize) -> &str {
    let start = source[..pos].rfind('\n').map_or(0, |i| i + 1);
    source[start..pos].split_whitespace().next().unwrap_or("")
}

/// What stands at `pos`, in words, and how many bytes of it to underline.
fn found_at(source: &str, pos: usize) -> (String, usize) {
    let rest = &source[pos..];
    let Some(first) = rest.chars().next() else {
        return ("end of file".into(), 0);
    };
    if first.is_control() && !first.is_whitespace() {
        return (
            format!(
                "control character U+{:04X} (is this a text file?)",
                first as u32
            ),
            first.len_utf8(),
        );
    }
    if first.is_ascii_alphanumeric() || first == '_' || first == '.' {
        let len = rest
            .find(|c: char| !(c.is_ascii_alphanumeric() || c == '_' || c == '.'))
            .unwrap_or(rest.len());
        return (format!("`{}`", &rest[..len]), len);
    }
    for op in ["||", ":=", "==", "!=", "<=", ">="] {
        if rest.starts_with(op) {
            return (format!("`{op}`"), op.len());
        }
    }
    (format!("`{first}`"), first.len_utf8())
}

/// The statement keyword that starts the line just before `pos`, if the error comes right after
/// it (`estimate fast`, `let = 1`): then what that statement needs next is the whole story, not
/// the readings of the keyword as an equation's outcome.
fn keyword_just_before(source: &str, pos: usize) -> Option<&'static str> {
    let before = source[..pos].trim_end();
    // After the last character that cannot be in a keyword: by its UTF-8 length, since that
    // character can be any (a comment's `é`).
    let word_start = before
        .char_indices()
        .rev()
        .find(|(_, c)| !(c.is_ascii_alphanumeric() || *c == '_' || *c == '.'))
        .map_or(0, |(i, c)| i + c.len_utf8());
    let line_start = before[..word_start].rfind('\n').map_or(0, |i| i + 1);
    if !before[line_start..word_start].trim().is_empty() {
        return None;
    }
    let word = &before[word_start..];
    STATEMENT_KEYWORDS.into_iter().find(|k| *k == word)
}

fn after_keyword(keyword: &str) -> &'static str {
    match keyword {
        "data" => "the data file's path in double quotes",
        "group" | "order" | "factor" => "a column name",
        "let" => "a name for the new variable",
        "keep" => "an expression",
        "residual" => "an equation's outcome, `by column` or `correlated within column`",
        "family" => "a family (`binomial`, `poisson` or `gaussian`), after an outcome or not",
        "estimate" => "`ml` or `reml`",
        "interval" => {
            "an interval method (`monte_carlo`, `bootstrap`, `parametric_bootstrap` or `delta`)"
        }
        _ => "a name",
    }
}

const OPERATORS: [&str; 8] = [
    "`+`",
    "`-`",
    "`*`",
    "`/`",
    "`^`",
    "`|`",
    "`&`",
    "a comparison (`==`, `!=`, `<`, `<=`, `>`, `>=`)",
];

/// Plain words for pest's expected rules, deduplicated, in a stable order.
fn describe_expected(positives: &[Rule]) -> Option<String> {
    let mut words: Vec<&'static str> = Vec::new();
    // End of file is possible exactly where a statement may start; pest then reports the name
    // that would start an equation, which reads better as "a statement".
    let at_statement_boundary = positives.contains(&Rule::EOI);
    for rule in positives {
        let word = match describe(*rule) {
            Some("a name") if at_statement_boundary => Some(EXPECTED_STATEMENT),
            other => other,
        };
        if let Some(word) = word {
            if !words.contains(&word) {
                words.push(word);
            }
        }
    }
    // A term may be a random term, so `(` says nothing more.
    if words.iter().any(|w| w.starts_with("a term")) {
        words.retain(|w| *w != "`(`");
    }
    // A long list of operators (an expression could go on) reads better as one word.
    if words.iter().filter(|w| OPERATORS.contains(w)).count() >= 5 {
        let first = words
            .iter()
            .position(|w| OPERATORS.contains(w))
            .unwrap_or(0);
        words[first] = "an operator";
        words.retain(|w| !OPERATORS.contains(w));
    }
    // Statements and end of file are the fallback readings: list them last.
    for last in [EXPECTED_STATEMENT, "end of file"] {
        if let Some(i) = words.iter().position(|w| *w == last) {
            let w = words.remove(i);
            words.push(w);
        }
    }
    match words.len() {
        0 => None,
        1 => Some(words[0].to_string()),
        n => Some(format!("{} or {}", words[..n - 1].join(", "), words[n - 1])),
    }
}

fn describe(rule: Rule) -> Option<&'static str> {
    use Rule::*;
    Some(match rule {
        equation | define | data_stmt | group_stmt | order_stmt | factor_stmt | let_stmt
        | keep_stmt | residual_stmt | family_stmt | estimate_stmt | interval_stmt | vary_stmt
        | equals_equation | unknown_statement => EXPECTED_STATEMENT,
        EOI => "end of file",
        tilde => "`~`",
        define_op => "`:=`",
        assign | equals_sign => "`=`",
        plus => "`+`",
        minus => "`-`",
        star => "`*`",
        divide | slash => "`/`",
        caret => "`^`",
        colon => "`:`",
        comma => "`,`",
        lparen => "`(`",
        rparen => "`)`",
        bar => "`|` or `||`",
        or_op => "`|`",
        and_op => "`&`",
        not_op => "`!`",
        compare_op => "a comparison (`==`, `!=`, `<`, `<=`, `>`, `>=`)",
        minus_one => "`- 1`",
        formula_rhs | coef_term | random_term => {
            "a term (`1`, `0`, `x`, `a*x`, `x:z` or `(1 + x | g)`)"
        }
        coefficient | interaction => "a variable",
        intercept_lit => "the intercept (`1` or `0`)",
        random_effects | random_effect => "a random effect (`1`, `0` or a variable)",
        grouping | grouping_level => "a grouping factor",
        expr | or_expr | and_expr | not_expr | comparison | additive | multiplicative | unary
        | power | number | missing | call | name => "an expression",
        ident => "a name",
        string | quote => "a string in double quotes",
        method | kw_ml | kw_reml => "`ml` or `reml`",
        missing_spec | kw_missing => "`missing \"code\", ...` (cells to read as missing)",
        reference_spec | levels_spec | kw_reference | kw_levels => {
            "`reference \"level\"` or `levels \"level\", ...`"
        }
        residual_equation | by_clause | correlated_clause | ar1_clause | arma_error => {
            "an equation's outcome, `by column` or `correlated within column`"
        }
        kw_within => "`within`",
        ar1_within => "`within COLUMN` (the column whose values name the series)",
        family_equation | family_name => "a family (`binomial`, `poisson` or `gaussian`)",
        family_options | estimate_options => "`(`",
        family_option => "an option (`link = ...`, `trials = column` or `offset = column`)",
        estimate_option => "an option (`agq = number`)",
        option_number => "a number",
        literal | signed_number => "a number or a string",
        arg => "an argument",
        _ => return None,
    })
}

/// The last `(` before `pos` that is not closed before `pos` (strings and comments skipped).
fn unclosed_paren_before(source: &str, pos: usize) -> Option<usize> {
    let mut open = Vec::new();
    let mut chars = source[..pos].char_indices();
    while let Some((i, c)) = chars.next() {
        match c {
            '(' => open.push(i),
            ')' => {
                open.pop();
            }
            '#' => {
                for (_, c) in chars.by_ref() {
                    if c == '\n' {
                        break;
                    }
                }
            }
            '"' => {
                while let Some((_, c)) = chars.next() {
                    match c {
                        '\\' => {
                            chars.next();
                        }
                        '"' | '\n' => break,
                        _ => {}
                    }
                }
            }
            _ => {}
        }
    }
    open.pop()
}

/// 1-based line and column (in chars) of a byte offset.
pub fn line_col(source: &str, pos: usize) -> (usize, usize) {
    let before = &source[..pos.min(source.len())];
    let line = before.matches('\n').count() + 1;
    let line_start = before.rfind('\n').map_or(0, |i| i + 1);
    (line, before[line_start..].chars().count() + 1)
}

// ------------------------------------------------------------------------------------------------
// pest pairs → AST

/// A pair's span without trailing whitespace and comments. pest keeps the whitespace it skipped
/// before trying a repetition that then matched nothing (`x` in `x:z`-or-`x`), so a rule's own end
/// may lie past its text; its last token's end does not.
fn span_of(pair: &Pair<Rule>) -> Span {
    let start = pair.as_span().start();
    let mut end = pair.as_span().end();
    let mut current = pair.clone();
    while let Some(last) = current.clone().into_inner().last() {
        end = last.as_span().end();
        current = last;
    }
    Span::new(start, end)
}

fn ident_of(pair: Pair<Rule>) -> Ident {
    Ident {
        name: super::ast::unquoted_name(pair.as_str()).to_string(),
        span: span_of(&pair),
    }
}

/// The children that carry meaning: punctuation and keywords are dropped.
fn meaningful(pairs: Pairs<Rule>) -> impl Iterator<Item = Pair<Rule>> {
    pairs.filter(|p| {
        !matches!(
            p.as_rule(),
            Rule::tilde
                | Rule::define_op
                | Rule::assign
                | Rule::plus
                | Rule::star
                | Rule::colon
                | Rule::slash
                | Rule::comma
                | Rule::lparen
                | Rule::rparen
                | Rule::EOI
                | Rule::kw_data
                | Rule::kw_group
                | Rule::kw_order
                | Rule::kw_factor
                | Rule::kw_reference
                | Rule::kw_levels
                | Rule::kw_missing
                | Rule::kw_let
                | Rule::kw_keep
                | Rule::kw_residual
                | Rule::kw_family
                | Rule::kw_by
                | Rule::kw_correlated
                | Rule::kw_within
                | Rule::kw_estimate
                | Rule::kw_interval
                | Rule::kw_vary
        )
    })
}

struct Builder {
    diagnostics: Vec<Diagnostic>,
    /// How deep the expression being built can already be (see `MAX_DEPTH`).
    depth: usize,
    reported_too_deep: bool,
}

impl Builder {
    fn file(&mut self, mut pairs: Pairs<Rule>) -> ModelFile {
        let file = pairs
            .next()
            .expect("the grammar's `file` rule always yields one pair");
        let mut statements: Vec<Statement> = Vec::new();
        for pair in meaningful(file.into_inner()) {
            let is_unknown = pair.as_rule() == Rule::unknown_statement;
            let errors_before = self.diagnostics.len();
            match self.statement(pair) {
                Some(statement) => statements.push(statement),
                None if is_unknown && self.diagnostics.len() > errors_before => {
                    if let Some(Statement::Equation(equation)) = statements.last() {
                        if let Some(hint) = swallowed_keyword_hint(equation) {
                            if let Some(last) = self.diagnostics.last_mut() {
                                last.hint = Some(hint);
                            }
                        }
                    }
                }
                None => {}
            }
        }
        ModelFile { statements }
    }

    fn statement(&mut self, pair: Pair<Rule>) -> Option<Statement> {
        let span = span_of(&pair);
        let rule = pair.as_rule();
        let mut inner = meaningful(pair.into_inner());
        let statement = match rule {
            Rule::data_stmt => self.data_statement(inner, span)?,
            Rule::group_stmt => Statement::Group {
                name: ident_of(inner.next()?),
                span,
            },
            Rule::order_stmt => Statement::Order {
                name: ident_of(inner.next()?),
                span,
            },
            Rule::factor_stmt => self.factor_statement(inner, span)?,
            Rule::let_stmt => Statement::Let {
                name: ident_of(inner.next()?),
                value: self.expr(inner.next()?),
                span,
            },
            Rule::keep_stmt => Statement::Keep {
                condition: self.expr(inner.next()?),
                span,
            },
            Rule::define => Statement::Define {
                name: ident_of(inner.next()?),
                value: self.expr(inner.next()?),
                span,
            },
            Rule::equation => {
                let lhs = ident_of(inner.next()?);
                let terms = self.formula(inner.next()?);
                Statement::Equation(Equation { lhs, terms, span })
            }
            Rule::residual_stmt => self.residual_statement(inner, span),
            Rule::family_stmt => family_statement(inner, span)?,
            Rule::estimate_stmt => {
                let method = inner.next()?.into_inner().next()?;
                let method = if method.as_rule() == Rule::kw_ml {
                    Method::Ml
                } else {
                    Method::Reml
                };
                let options = match inner.next() {
                    Some(options) => self.estimate_options(options),
                    None => Vec::new(),
                };
                Statement::Estimate {
                    method,
                    options,
                    span,
                }
            }
            Rule::interval_stmt => {
                let method = ident_of(inner.next()?);
                let args = inner.map(|p| self.arg(p)).collect();
                Statement::Interval(IntervalSpec { method, args, span })
            }
            Rule::vary_stmt => {
                let name = ident_of(inner.next()?);
                let values = inner.filter_map(|p| self.literal(p)).collect();
                Statement::Vary { name, values, span }
            }
            Rule::equals_equation => return self.equals_instead_of_tilde(inner),
            Rule::unknown_statement => return self.unknown_statement(inner),
            _ => return None,
        };
        Some(statement)
    }

    fn data_statement<'i>(
        &mut self,
        mut inner: impl Iterator<Item = Pair<'i, Rule>>,
        span: Span,
    ) -> Option<Statement> {
        Some(Statement::Data {
            path: self.string(inner.next()?),
            missing: inner
                .next()
                .map(|spec| {
                    meaningful(spec.into_inner())
                        .map(|p| self.string(p))
                        .collect()
                })
                .unwrap_or_default(),
            span,
        })
    }

    fn factor_statement<'i>(
        &mut self,
        mut inner: impl Iterator<Item = Pair<'i, Rule>>,
        span: Span,
    ) -> Option<Statement> {
        let column = ident_of(inner.next()?);
        let spec_pair = inner.next()?;
        let spec_rule = spec_pair.as_rule();
        let mut strings = meaningful(spec_pair.into_inner()).map(|p| self.string(p));
        let spec = if spec_rule == Rule::reference_spec {
            FactorSpec::Reference(strings.next()?)
        } else {
            FactorSpec::Levels(strings.collect())
        };
        Some(Statement::Factor { column, spec, span })
    }

    fn residual_statement<'i>(
        &mut self,
        inner: impl Iterator<Item = Pair<'i, Rule>>,
        span: Span,
    ) -> Statement {
        let mut residual = ResidualSpec {
            equation: None,
            by: None,
            correlated_within: None,
            ar1_within: None,
            span,
        };
        for clause in inner {
            let rule = clause.as_rule();
            if rule == Rule::arma_error {
                self.arma_not_supported(&clause);
                continue;
            }
            let name = if rule == Rule::ar1_clause {
                self.ar1_series(clause)
            } else {
                meaningful(clause.into_inner()).next().map(ident_of)
            };
            match rule {
                Rule::residual_equation => residual.equation = name,
                Rule::by_clause => residual.by = name,
                Rule::correlated_clause => residual.correlated_within = name,
                Rule::ar1_clause => residual.ar1_within = name,
                _ => {}
            }
        }
        Statement::Residual(residual)
    }

    /// The series column of `ar1 within COLUMN`; `ar1` alone is reported.
    fn ar1_series(&mut self, clause: Pair<Rule>) -> Option<Ident> {
        let keyword = span_of(&clause);
        let part = clause
            .into_inner()
            .find(|p| matches!(p.as_rule(), Rule::ar1_within | Rule::ar1_no_series))?;
        if part.as_rule() == Rule::ar1_no_series {
            self.diagnostics.push(
                Diagnostic::at(
                    "`ar1` needs the column whose values name the series",
                    keyword,
                )
                .with_expected("`within COLUMN`")
                .with_hint(
                    "AR(1) residuals are correlated within each series, in the file's `order`: \
                         `residual ar1 within subject`",
                ),
            );
            return None;
        }
        part.into_inner()
            .find(|p| p.as_rule() == Rule::ident)
            .map(ident_of)
    }

    /// `residual arma(1, 1) within s`, `ar(2)`, `ma1`: a structure nlme has and tandem has not.
    fn arma_not_supported(&mut self, clause: &Pair<Rule>) {
        let name = clause
            .as_str()
            .split(['(', ' ', '\t', '\n'])
            .next()
            .unwrap_or("");
        let series = meaningful(clause.clone().into_inner())
            .find(|p| p.as_rule() == Rule::ident)
            .map_or_else(|| "COLUMN".to_string(), |p| p.as_str().to_string());
        self.diagnostics.push(
            Diagnostic::at(
                "ARMA(p, q) residuals are not supported; only `ar1`",
                span_of(clause),
            )
            .with_hint(format!(
                "`{name}` is not available: AR(1) residuals within each series are \
                 `residual ar1 within {series}` (nlme's `corAR1`)"
            )),
        );
    }

    /// `y = 1 + x`: an equation written with `=`; reported, never a statement.
    fn equals_instead_of_tilde<'i>(
        &mut self,
        mut inner: impl Iterator<Item = Pair<'i, Rule>>,
    ) -> Option<Statement> {
        let lhs = inner.next()?;
        let equals = inner.next()?;
        // lavaan's measurement operator: say what is not supported, not that `=` was mistyped.
        if equals.get_input()[equals.as_span().end()..].starts_with('~') {
            let span = Span::new(equals.as_span().start(), equals.as_span().end() + 1);
            self.diagnostics.push(
                Diagnostic::at(
                    "latent variables (`=~`, lavaan's measurement models) are not supported",
                    span,
                )
                .with_hint(format!(
                    "tandem fits models of observed variables: compute a score of the indicators \
                     with `let {} = ...`, or fit the measurement model in lavaan",
                    lhs.as_str()
                )),
            );
            return None;
        }
        self.diagnostics.push(
            Diagnostic::at("`=` used instead of `~`", span_of(&equals))
                .with_expected("`~`")
                .with_hint(format!(
                    "an equation is written `{} ~ 1 + x`; a new variable is `let {} = ...`",
                    lhs.as_str(),
                    lhs.as_str()
                )),
        );
        None
    }

    /// A line that starts with a word no statement starts with; reported, never a statement.
    fn unknown_statement<'i>(
        &mut self,
        mut inner: impl Iterator<Item = Pair<'i, Rule>>,
    ) -> Option<Statement> {
        let word = inner.next()?;
        if word.as_str() == "missing" {
            // `data "x.csv" missing -999`: the codes did not parse as strings, so the
            // `data` statement ended before `missing`.
            self.diagnostics.push(
                Diagnostic::at("missing codes must be strings", span_of(&word))
                    .with_expected("`missing \"code\", ...` after `data \"file.csv\"`")
                    .with_hint(
                        "quote every code, as R's `na.strings` does: \
                         `data \"file.csv\" missing \"-999\", \".\"`",
                    ),
            );
            return None;
        }
        let mut diagnostic = Diagnostic::at(
            format!("`{}` does not start a statement", word.as_str()),
            span_of(&word),
        )
        .with_expected(EXPECTED_STATEMENT);
        if let Some(hint) = did_you_mean(word.as_str(), STATEMENT_KEYWORDS) {
            diagnostic = diagnostic.with_hint(hint);
        }
        self.diagnostics.push(diagnostic);
        None
    }

    fn formula(&mut self, rhs: Pair<Rule>) -> Vec<FormulaTerm> {
        let mut terms = Vec::new();
        for term in meaningful(rhs.into_inner()) {
            let span = span_of(&term);
            match term.as_rule() {
                Rule::minus_one => {
                    if term.as_str().trim().trim_start_matches('-').trim() == "0" {
                        // R reads `- 0` as keeping the intercept, a reader as removing it.
                        self.diagnostics.push(
                            Diagnostic::at("`- 0` does not say whether the intercept stays", span)
                                .with_expected("`+ 0` or `- 1` to remove the intercept")
                                .with_hint(
                                    "R keeps the intercept with `- 0`; to keep it, leave `- 0` out",
                                ),
                        );
                    }
                    terms.push(FormulaTerm::Intercept {
                        present: false,
                        coefficient: None,
                        span,
                    })
                }
                Rule::coef_term => {
                    let mut coefficient = None;
                    for part in meaningful(term.into_inner()) {
                        match part.as_rule() {
                            Rule::coefficient => coefficient = self.coefficient(part),
                            Rule::intercept_lit => terms.push(FormulaTerm::Intercept {
                                present: part.as_str() == "1",
                                coefficient: coefficient.take(),
                                span,
                            }),
                            Rule::interaction => terms.push(FormulaTerm::Fixed {
                                coefficient: coefficient.take(),
                                factors: meaningful(part.into_inner()).map(ident_of).collect(),
                                span,
                            }),
                            _ => {}
                        }
                    }
                }
                Rule::random_term => terms.push(FormulaTerm::Random(self.random(term))),
                _ => {}
            }
        }
        terms
    }

    fn coefficient(&mut self, pair: Pair<Rule>) -> Option<Coefficient> {
        let inner = pair.into_inner().next()?;
        match inner.as_rule() {
            Rule::ident => Some(Coefficient::Label(ident_of(inner))),
            _ => {
                let span = span_of(&inner);
                let value = self.number(inner.as_str(), span);
                Some(Coefficient::Fixed { value, span })
            }
        }
    }

    fn random(&mut self, pair: Pair<Rule>) -> RandomTerm {
        let span = span_of(&pair);
        let mut term = RandomTerm {
            effects: Vec::new(),
            correlated: true,
            grouping: Grouping {
                levels: Vec::new(),
                span,
            },
            span,
        };
        for part in meaningful(pair.into_inner()) {
            match part.as_rule() {
                Rule::random_effects => {
                    for effect in meaningful(part.into_inner()) {
                        let span = span_of(&effect);
                        let Some(inner) = effect.into_inner().next() else {
                            continue;
                        };
                        term.effects
                            .push(if inner.as_rule() == Rule::intercept_lit {
                                RandomEffect::Intercept {
                                    present: inner.as_str() == "1",
                                    span,
                                }
                            } else {
                                RandomEffect::Slope {
                                    factors: meaningful(inner.into_inner()).map(ident_of).collect(),
                                    span,
                                }
                            });
                    }
                }
                Rule::bar => term.correlated = part.as_str() == "|",
                Rule::grouping => {
                    term.grouping.span = span_of(&part);
                    term.grouping.levels = meaningful(part.into_inner())
                        .map(|level| meaningful(level.into_inner()).map(ident_of).collect())
                        .collect();
                }
                _ => {}
            }
        }
        term
    }

    /// `(agq = 25, ...)` after `estimate ml`.
    fn estimate_options(&mut self, pair: Pair<Rule>) -> Vec<EstimateOption> {
        let mut options = Vec::new();
        for option in meaningful(pair.into_inner()) {
            let span = span_of(&option);
            let mut parts = meaningful(option.into_inner());
            if let (Some(name), Some(value)) = (parts.next(), parts.next()) {
                let value = self.number(value.as_str(), span_of(&value));
                options.push(EstimateOption {
                    name: ident_of(name),
                    value,
                    span,
                });
            }
        }
        options
    }

    fn literal(&mut self, pair: Pair<Rule>) -> Option<Literal> {
        let inner = pair.into_inner().next()?;
        let span = span_of(&inner);
        Some(match inner.as_rule() {
            Rule::string => Literal::String(self.string(inner)),
            _ => Literal::Number {
                value: self.number(inner.as_str(), span),
                span,
            },
        })
    }

    /// A number literal's value; an overflow is an error (its value becomes 0 to keep going).
    fn number(&mut self, text: &str, span: Span) -> f64 {
        match text.parse::<f64>() {
            Ok(value) if value.is_finite() => value,
            _ => {
                self.diagnostics.push(
                    Diagnostic::at(format!("the number `{text}` is too large"), span)
                        .with_expected("a number of at most about 1.8e308 in size"),
                );
                0.0
            }
        }
    }

    fn string(&mut self, pair: Pair<Rule>) -> StringLit {
        let span = span_of(&pair);
        let mut value = String::new();
        for part in pair.into_inner() {
            match part.as_rule() {
                Rule::string_content => {
                    let base = part.as_span().start();
                    let mut chars = part.as_str().char_indices();
                    while let Some((i, c)) = chars.next() {
                        if c != '\\' {
                            value.push(c);
                            continue;
                        }
                        match chars.next() {
                            Some((_, '"')) => value.push('"'),
                            Some((_, '\\')) => value.push('\\'),
                            Some((_, 'n')) => value.push('\n'),
                            Some((_, 't')) => value.push('\t'),
                            Some((_, other)) => {
                                self.diagnostics.push(
                                    Diagnostic::at(
                                        format!("unknown escape `\\{other}` in a string"),
                                        Span::new(base + i, base + i + 1 + other.len_utf8()),
                                    )
                                    .with_expected("`\\\"`, `\\\\`, `\\n` or `\\t`"),
                                );
                            }
                            None => {}
                        }
                    }
                }
                Rule::unterminated_string => self.diagnostics.push(
                    Diagnostic::at("this string is not closed", span)
                        .with_expected("`\"` before the end of the line"),
                ),
                _ => {}
            }
        }
        StringLit { value, span }
    }

    fn arg(&mut self, pair: Pair<Rule>) -> Arg {
        let mut name = None;
        let mut value = None;
        for part in meaningful(pair.into_inner()) {
            match part.as_rule() {
                Rule::ident => name = Some(ident_of(part)),
                _ => value = Some(self.expr(part)),
            }
        }
        Arg {
            name,
            value: value.unwrap_or(Expr {
                kind: ExprKind::Missing,
                span: Span::default(),
            }),
        }
    }

    /// Any expression-level pair (from `expr` down to atoms).
    fn expr(&mut self, pair: Pair<Rule>) -> Expr {
        let span = span_of(&pair);
        // Only levels that nest the tree count (an operator, a call, parentheses); the grammar's
        // pass-through levels (`or_expr` holding just one `and_expr`, ...) do not.
        let nests = match pair.as_rule() {
            Rule::call => true,
            Rule::unary | Rule::not_expr | Rule::comparison | Rule::power => {
                pair.clone().into_inner().nth(1).is_some()
            }
            _ => false,
        };
        if !nests {
            return self.expr_inner(pair, span);
        }
        if self.too_deep(span) {
            return missing_at(span);
        }
        self.depth += 1;
        let expr = self.expr_inner(pair, span);
        self.depth -= 1;
        expr
    }

    /// Whether the tree is already as deep as allowed; the first time, say so.
    fn too_deep(&mut self, span: Span) -> bool {
        if self.depth < MAX_DEPTH {
            return false;
        }
        if !self.reported_too_deep {
            self.reported_too_deep = true;
            self.diagnostics.push(
                Diagnostic::at(
                    "this expression is nested too deeply or is too long",
                    Span::new(span.start, span.start + 1),
                )
                .with_hint(format!(
                    "at most {MAX_DEPTH} levels of nesting (parentheses, operators) are supported"
                )),
            );
        }
        true
    }

    fn expr_inner(&mut self, pair: Pair<Rule>, span: Span) -> Expr {
        let rule = pair.as_rule();
        match rule {
            Rule::number => Expr {
                kind: ExprKind::Number(self.number(pair.as_str(), span)),
                span,
            },
            Rule::string => Expr {
                kind: ExprKind::String(self.string(pair).value),
                span,
            },
            Rule::missing => Expr {
                kind: ExprKind::Missing,
                span,
            },
            Rule::name => Expr {
                kind: ExprKind::Name(super::ast::unquoted_name(pair.as_str()).to_string()),
                span,
            },
            Rule::call => {
                let mut inner = meaningful(pair.into_inner());
                let function = inner.next().map(ident_of).unwrap_or(Ident {
                    name: String::new(),
                    span,
                });
                let args = inner.map(|p| self.arg(p)).collect();
                Expr {
                    kind: ExprKind::Call { function, args },
                    span,
                }
            }
            Rule::unary | Rule::not_expr => self.unary(pair, span),
            Rule::comparison => self.comparison(pair, span),
            Rule::power => {
                // `atom` is silent, so a parenthesised base arrives as `( expr )`.
                let mut inner = pair
                    .into_inner()
                    .filter(|p| !matches!(p.as_rule(), Rule::lparen | Rule::rparen | Rule::caret));
                match (inner.next(), inner.next()) {
                    (Some(base), Some(exponent)) => {
                        self.binary(BinaryOp::Pow, base, exponent, span)
                    }
                    (Some(only), None) => self.expr(only),
                    _ => missing_at(span),
                }
            }
            Rule::or_expr | Rule::and_expr | Rule::additive | Rule::multiplicative => {
                self.left_chain(pair, span)
            }
            Rule::expr => match pair.into_inner().next() {
                Some(inner) => self.expr(inner),
                None => missing_at(span),
            },
            _ => missing_at(span),
        }
    }

    fn unary(&mut self, pair: Pair<Rule>, span: Span) -> Expr {
        let mut inner = pair.into_inner();
        let first = inner.next();
        match (first, inner.next()) {
            (Some(op), Some(operand)) => {
                let op = if op.as_rule() == Rule::not_op {
                    UnaryOp::Not
                } else {
                    UnaryOp::Neg
                };
                Expr {
                    kind: ExprKind::Unary {
                        op,
                        operand: Box::new(self.expr(operand)),
                    },
                    span,
                }
            }
            (Some(only), None) => self.expr(only),
            _ => missing_at(span),
        }
    }

    fn comparison(&mut self, pair: Pair<Rule>, span: Span) -> Expr {
        let mut inner = pair.into_inner();
        let lhs = inner.next();
        let op = inner.next();
        let rhs = inner.next();
        if let Some(chained) = inner.next() {
            self.diagnostics.push(
                Diagnostic::at("comparisons cannot be chained", span_of(&chained))
                    .with_hint("write `a < b & b < c` instead of `a < b < c`"),
            );
        }
        match (lhs, op, rhs) {
            (Some(lhs), Some(op), Some(rhs)) => {
                let op = binary_op(op.as_str());
                self.binary(op, lhs, rhs, span)
            }
            (Some(only), _, _) => self.expr(only),
            _ => missing_at(span),
        }
    }

    /// Left-associative chains: fold `a op b op c` into `(a op b) op c`.
    fn left_chain(&mut self, pair: Pair<Rule>, span: Span) -> Expr {
        let mut inner = pair.into_inner();
        let Some(first) = inner.next() else {
            return missing_at(span);
        };
        let mut acc = self.expr(first);
        // Each step makes the (left-deep) tree one level deeper.
        let depth_before = self.depth;
        while let (Some(op), Some(rhs)) = (inner.next(), inner.next()) {
            if self.too_deep(span) {
                break;
            }
            self.depth += 1;
            let rhs = self.expr(rhs);
            let span = Span::new(acc.span.start, rhs.span.end);
            acc = Expr {
                kind: ExprKind::Binary {
                    op: binary_op(op.as_str()),
                    lhs: Box::new(acc),
                    rhs: Box::new(rhs),
                },
                span,
            };
        }
        self.depth = depth_before;
        acc
    }

    fn binary(&mut self, op: BinaryOp, lhs: Pair<Rule>, rhs: Pair<Rule>, span: Span) -> Expr {
        Expr {
            kind: ExprKind::Binary {
                op,
                lhs: Box::new(self.expr(lhs)),
                rhs: Box::new(self.expr(rhs)),
            },
            span,
        }
    }
}

/// `family [outcome] name[(option = name, ...)]`.
fn family_statement<'i>(
    inner: impl Iterator<Item = Pair<'i, Rule>>,
    span: Span,
) -> Option<Statement> {
    let mut equation = None;
    let mut family = None;
    let mut options = Vec::new();
    for part in inner {
        match part.as_rule() {
            Rule::family_equation => equation = meaningful(part.into_inner()).next().map(ident_of),
            Rule::family_name => family = meaningful(part.into_inner()).next().map(ident_of),
            Rule::family_options => {
                for option in meaningful(part.into_inner()) {
                    let mut names = meaningful(option.into_inner()).map(ident_of);
                    if let (Some(name), Some(value)) = (names.next(), names.next()) {
                        options.push(FamilyOption { name, value });
                    }
                }
            }
            _ => {}
        }
    }
    Some(Statement::Family(FamilyStatement {
        equation,
        family: family?,
        options,
        span,
    }))
}

/// `y ~` followed by `estimate reml` reads `estimate` as the equation's only term and then
/// stumbles on `reml`: say so.
fn swallowed_keyword_hint(equation: &Equation) -> Option<String> {
    match equation.terms.last()? {
        FormulaTerm::Fixed {
            coefficient: None,
            factors,
            ..
        } if factors.len() == 1 && STATEMENT_KEYWORDS.contains(&factors[0].name.as_str()) => {
            Some(format!(
                "the equation for `{}` ends in `{}`, read as a variable; is its right-hand side missing?",
                equation.lhs.name, factors[0].name
            ))
        }
        _ => None,
    }
}

fn missing_at(span: Span) -> Expr {
    Expr {
        kind: ExprKind::Missing,
        span,
    }
}

fn binary_op(symbol: &str) -> BinaryOp {
    match symbol {
        "+" => BinaryOp::Add,
        "-" => BinaryOp::Sub,
        "*" => BinaryOp::Mul,
        "/" => BinaryOp::Div,
        "^" => BinaryOp::Pow,
        "==" => BinaryOp::Eq,
        "!=" => BinaryOp::Ne,
        "<" => BinaryOp::Lt,
        "<=" => BinaryOp::Le,
        ">" => BinaryOp::Gt,
        ">=" => BinaryOp::Ge,
        "&" => BinaryOp::And,
        _ => BinaryOp::Or,
    }
}
