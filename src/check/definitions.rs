//! Defined quantities (`name := expr`): what their names may refer to (coefficient labels,
//! earlier definitions, the `vary` name) and the functions they may call, with `var`/`sd`/
//! `cov`/`cor` taking labels of random effects. Owns those rules and the lowering of a checked
//! body into the model's `Expression` (each name resolved, each call bound to the catalogue),
//! which `infer::defined` compiles; it must not evaluate anything.

use std::collections::{BTreeMap, BTreeSet};

use crate::diagnostics::{did_you_mean, Diagnostic};
use crate::model::{
    Argument, Coefficient, Definition, EquationSpec, Expression, ExpressionKind, Name, OutcomeKind,
    RandomTermSpec, TermKind,
};
use crate::syntax::ast::{Arg, Expr, ExprKind, Ident, ModelFile, Span, Statement, UnaryOp};

use super::names::Lookup;
use super::schema::ColumnKind;
use super::stray::expr_names;
use super::Checker;
use crate::functions::{Builtin, Context, Function};

use super::lower::{argument_name, lower_expression, Resolve};

/// The names a definition at one point of the file can use.
struct DefinitionScope {
    labels: BTreeSet<String>,
    /// Label → the random terms (indices into `ModelSpec::random`) with an effect it names.
    random_labels: BTreeMap<String, BTreeSet<usize>>,
    /// Each random term's grouping name (`session`, `cask:batch`), by index.
    groupings: Vec<String>,
    earlier: Vec<String>,
    /// The variables of each fixed term (`x:z` → [x, z]) of the equations with an observed
    /// outcome, for `ame`.
    fixed_terms: Vec<Vec<String>>,
    /// How many equations the model has (`ame` averages one equation's rows).
    equations: usize,
    /// Each `let`'s name and the names its value reads, in file order.
    lets: Vec<(String, Vec<String>)>,
    /// The `offset` columns of the equations' families.
    offsets: Vec<String>,
}

impl Checker<'_> {
    pub(crate) fn check_definitions(
        &mut self,
        file: &ModelFile,
        equations: &[EquationSpec],
        random: &[RandomTermSpec],
    ) -> Vec<Definition> {
        let mut labels = BTreeSet::new();
        for equation in equations {
            let coefficients = equation
                .intercept
                .iter()
                .chain(equation.terms.iter().map(|t| &t.coefficient));
            for coefficient in coefficients {
                if let Coefficient::Free { label: Some(label) } = coefficient {
                    labels.insert(label.clone());
                }
            }
        }
        let mut random_labels: BTreeMap<String, BTreeSet<usize>> = BTreeMap::new();
        for (index, term) in random.iter().enumerate() {
            for effect in &term.effects {
                if let Some(label) = &effect.label {
                    random_labels
                        .entry(label.clone())
                        .or_default()
                        .insert(index);
                }
            }
        }
        let fixed_terms = equations
            .iter()
            .filter(|e| e.outcome_kind == OutcomeKind::Variable)
            .flat_map(|e| &e.terms)
            .filter(|t| t.kind == TermKind::Variables)
            .map(|t| t.variables.clone())
            .collect();
        let lets = file
            .statements
            .iter()
            .filter_map(|s| match s {
                Statement::Let { name, value, .. } => {
                    let mut names = Vec::new();
                    expr_names(value, &mut names);
                    Some((
                        name.name.clone(),
                        names.into_iter().map(|(n, _)| n).collect(),
                    ))
                }
                _ => None,
            })
            .collect();
        let mut scope = DefinitionScope {
            labels,
            random_labels,
            groupings: random.iter().map(|t| t.name.clone()).collect(),
            earlier: Vec::new(),
            fixed_terms,
            equations: equations.len(),
            lets,
            offsets: (equations.iter())
                .filter_map(|e| e.family.offset.clone())
                .collect(),
        };
        let mut definitions = Vec::new();
        for statement in &file.statements {
            let Statement::Define { name, value, span } = statement else {
                continue;
            };
            let before = self.errors.len();
            self.check_definition_name(name, &scope);
            self.check_definition_expr(value, &scope);
            // A body with an error is not lowered (the model is refused anyway).
            if self.errors.len() == before {
                let vary = self.scope.vary.as_ref().map(|(v, _)| v.as_str());
                let mut lowering = Lowering::new(&scope.earlier, vary);
                let value = lower_expression(value, &mut lowering);
                self.errors.extend(lowering.errors);
                definitions.push(Definition {
                    name: name.name.clone(),
                    value,
                    span: *span,
                });
            }
            scope.earlier.push(name.name.clone());
        }
        definitions
    }

    fn check_definition_name(&mut self, name: &Ident, scope: &DefinitionScope) {
        let clash = if scope.earlier.contains(&name.name) {
            Some("an earlier definition")
        } else if self
            .scope
            .vary
            .as_ref()
            .is_some_and(|(v, _)| *v == name.name)
        {
            Some("the `vary` name")
        } else {
            None
        };
        // A label with this name is reported at the label (equations check it).
        if let Some(what) = clash {
            self.error(
                Diagnostic::at(format!("`{}` is already {what}", name.name), name.span)
                    .with_hint("give the defined quantity a new name"),
            );
        }
    }

    fn check_definition_expr(&mut self, expr: &Expr, scope: &DefinitionScope) {
        match &expr.kind {
            ExprKind::Number(_) => {}
            ExprKind::String(_) | ExprKind::Missing => self.error(
                Diagnostic::at("a definition computes with numbers only", expr.span)
                    .with_expected("labels, numbers and + - * / ^"),
            ),
            ExprKind::Name(name) => self.check_definition_name_use(name, expr.span, scope),
            ExprKind::Unary { op, operand } => {
                if *op == UnaryOp::Not {
                    self.error(Diagnostic::at(
                        "`!` has no place in a definition",
                        expr.span,
                    ));
                }
                self.check_definition_expr(operand, scope);
            }
            ExprKind::Binary { op, lhs, rhs } => {
                use crate::syntax::ast::BinaryOp::*;
                if !matches!(op, Add | Sub | Mul | Div | Pow) {
                    self.error(
                        Diagnostic::at(
                            format!("`{}` has no place in a definition", op.symbol()),
                            expr.span,
                        )
                        .with_expected("+ - * / ^"),
                    );
                }
                self.check_definition_expr(lhs, scope);
                self.check_definition_expr(rhs, scope);
            }
            ExprKind::Call { function, args } => {
                self.check_definition_call(function, args, expr.span, scope)
            }
        }
    }

    fn check_definition_name_use(&mut self, name: &str, span: Span, scope: &DefinitionScope) {
        let known = scope.labels.contains(name)
            || scope.earlier.iter().any(|d| d == name)
            || self.scope.is_vary(name);
        if known {
            return;
        }
        let mut d = Diagnostic::at(format!("no label or definition `{name}`"), span)
            .with_expected("a coefficient label, an earlier definition or the `vary` name");
        let candidates = scope
            .labels
            .iter()
            .chain(scope.earlier.iter())
            .map(String::as_str);
        if let Some(hint) = did_you_mean(name, candidates) {
            d = d.with_hint(hint);
        } else if self.scope.is_frame_variable(name, usize::MAX) {
            d = d.with_hint(format!(
                "`{name}` is a column; label its coefficient (`a*{name}`) and use the label"
            ));
        } else if self.definition_names_later(name) {
            d = d.with_hint(format!(
                "`{name}` is defined further down; move its definition up"
            ));
        }
        self.error(d);
    }

    fn definition_names_later(&self, name: &str) -> bool {
        self.definition_names.iter().any(|(d, _)| d == name)
    }

    fn check_definition_call(
        &mut self,
        function: &Ident,
        args: &[Arg],
        span: Span,
        scope: &DefinitionScope,
    ) {
        let name = function.name.as_str();
        for arg in args {
            if let Some(arg_name) = &arg.name {
                self.error(Diagnostic::at(
                    format!("`{name}` takes no named argument `{}`", arg_name.name),
                    arg_name.span,
                ));
            }
        }
        let Some(function_spec) = crate::functions::find(name, Context::Definition) else {
            self.error(unknown_function(function));
            return;
        };
        let (fewest, most) = function_spec.definition_arity;
        if !(fewest..=most).contains(&args.len()) {
            self.error(Diagnostic::at(
                format!(
                    "`{name}` takes {}, not {}",
                    function_spec.definition_arguments,
                    args.len()
                ),
                span,
            ));
            return;
        }
        if function_spec.id == Builtin::Ame {
            self.check_marginal_effect(&args[0].value, span, scope);
            return;
        }
        if function_spec.labels == 0 {
            self.check_definition_expr(&args[0].value, scope);
            return;
        }
        self.check_random_part_call(name, function_spec.labels, args, span, scope);
    }

    /// var/sd/cov/cor: labels of random parts that share one random term (the grouping
    /// argument, if given, choosing among several).
    fn check_random_part_call(
        &mut self,
        name: &str,
        nlabels: usize,
        args: &[Arg],
        span: Span,
        scope: &DefinitionScope,
    ) {
        let mut terms = Vec::new();
        for arg in &args[..nlabels] {
            if let Some(term) = self.random_label_arg(&arg.value, name, scope) {
                terms.push(term);
            }
        }
        let grouping = args
            .get(nlabels)
            .map(|arg| self.grouping_arg(&arg.value, name, scope));
        if terms.len() < nlabels || matches!(grouping, Some(None)) {
            return;
        }
        let mut shared: BTreeSet<usize> = terms[0].clone();
        for t in &terms[1..] {
            shared = shared.intersection(t).copied().collect();
        }
        if shared.is_empty() {
            self.error(unshared_random_parts(name, span));
            return;
        }
        let labels: Vec<&str> = args[..nlabels]
            .iter()
            .filter_map(|a| match &a.value.kind {
                ExprKind::Name(l) => Some(l.as_str()),
                _ => None,
            })
            .collect();
        if let Some(Some(g)) = &grouping {
            let all: Vec<String> = shared
                .iter()
                .map(|&k| format!("`{}`", scope.groupings[k]))
                .collect();
            shared.retain(|&k| scope.groupings[k] == *g);
            if shared.is_empty() {
                self.error(
                    Diagnostic::at(
                        format!(
                            "`{}` has no random part in a term of `{g}`",
                            labels.join("` and `")
                        ),
                        args[nlabels].value.span,
                    )
                    .with_expected(format!("one of the groupings {}", all.join(", "))),
                );
                return;
            }
        }
        if shared.len() > 1 {
            self.report_several_terms(name, &labels, &shared, span, scope);
        }
    }

    /// The labels share more than one random term and no grouping says which.
    fn report_several_terms(
        &mut self,
        name: &str,
        labels: &[&str],
        shared: &BTreeSet<usize>,
        span: Span,
        scope: &DefinitionScope,
    ) {
        let names: Vec<String> = shared
            .iter()
            .map(|&k| format!("`{}`", scope.groupings[k]))
            .collect();
        let last = shared
            .last()
            .map(|&k| scope.groupings[k].clone())
            .unwrap_or_default();
        self.error(
            Diagnostic::at(
                format!(
                    "`{}` has random parts in several terms ({}): `{name}` needs to know \
                     which",
                    labels.join("` and `"),
                    names.join(", ")
                ),
                span,
            )
            .with_hint(format!(
                "name the grouping after the label{}, e.g. `{name}({}, {last})`",
                if labels.len() == 1 { "" } else { "s" },
                labels.join(", ")
            )),
        );
    }

    /// The grouping argument of var/sd/cov/cor: the name of a random term's grouping.
    fn grouping_arg(
        &mut self,
        expr: &Expr,
        function: &str,
        scope: &DefinitionScope,
    ) -> Option<String> {
        let expected = || {
            let mut names: Vec<String> = scope.groupings.iter().map(|g| format!("`{g}`")).collect();
            names.dedup();
            format!("a grouping of a random term: {}", names.join(", "))
        };
        match &expr.kind {
            ExprKind::Name(g) if scope.groupings.contains(g) => Some(g.clone()),
            ExprKind::Name(g) => {
                let mut d =
                    Diagnostic::at(format!("no random term is grouped by `{g}`"), expr.span)
                        .with_expected(expected());
                if let Some(hint) = did_you_mean(g, scope.groupings.iter().map(String::as_str)) {
                    d = d.with_hint(hint);
                }
                self.error(d);
                None
            }
            _ => {
                self.error(
                    Diagnostic::at(
                        format!("`{function}`'s last argument names a grouping, not an expression"),
                        expr.span,
                    )
                    .with_expected(expected()),
                );
                None
            }
        }
    }

    /// An argument of var/sd/cov/cor: a label with a random part; gives its terms.
    fn random_label_arg(
        &mut self,
        expr: &Expr,
        function: &str,
        scope: &DefinitionScope,
    ) -> Option<BTreeSet<usize>> {
        let ExprKind::Name(label) = &expr.kind else {
            self.error(
                Diagnostic::at(
                    format!("`{function}` takes labels, not expressions"),
                    expr.span,
                )
                .with_expected("the label of a coefficient with a random part"),
            );
            return None;
        };
        if let Some(terms) = scope.random_labels.get(label) {
            return Some(terms.clone());
        }
        let mut d = if scope.labels.contains(label) {
            Diagnostic::at(
                format!("`{label}` labels a coefficient without a random part"),
                expr.span,
            )
            .with_hint(format!(
                "`{function}` needs a random effect: add `{label}` to a random term, e.g. \
                 `(1 + {label} | group)`"
            ))
        } else if self.scope.is_frame_variable(label, usize::MAX) {
            Diagnostic::at(format!("`{label}` is a column, not a label"), expr.span).with_hint(
                format!(
                    "label the coefficient (`s*{label}`), give it a random part \
                     (`(1 + s | group)`) and write `{function}(s)`"
                ),
            )
        } else {
            Diagnostic::at(format!("no random effect is labelled `{label}`"), expr.span)
        };
        d = d.with_expected("the label of a coefficient with a random part");
        if d.hint.is_none() {
            if let Some(hint) = did_you_mean(label, scope.random_labels.keys().map(String::as_str))
            {
                d = d.with_hint(hint);
            }
        }
        self.error(d);
        None
    }
}

impl Checker<'_> {
    /// `ame(x)`: `x` a numeric variable of the fixed part of the model's one equation, with no
    /// other predictor (or family offset) computed from it in a `let` (which the slope would
    /// hold fixed).
    fn check_marginal_effect(&mut self, arg: &Expr, span: Span, scope: &DefinitionScope) {
        let ExprKind::Name(x) = &arg.kind else {
            self.error(
                Diagnostic::at(
                    "`ame` takes the name of a predictor, not an expression",
                    arg.span,
                )
                .with_expected("a numeric predictor of the fixed part"),
            );
            return;
        };
        if scope.equations > 1 {
            self.error(
                Diagnostic::at(
                    "`ame` in a model with several equations is not supported yet",
                    span,
                )
                .with_hint("fit the equation whose effect you want in a file of its own"),
            );
            return;
        }
        let predictors: BTreeSet<&str> = (scope.fixed_terms.iter().flatten())
            .map(String::as_str)
            .collect();
        if !predictors.contains(x.as_str()) {
            let mut d = Diagnostic::at(
                format!("`{x}` is not a predictor of the model's fixed part"),
                arg.span,
            )
            .with_expected("a variable of a fixed term");
            if let Some(hint) = did_you_mean(x, predictors.iter().copied()) {
                d = d.with_hint(hint);
            }
            self.error(d);
            return;
        }
        if self.scope.lookup(x, usize::MAX) == Lookup::Column(ColumnKind::Text) {
            self.error(
                Diagnostic::at(
                    format!("`{x}` is a factor; `ame` takes a numeric predictor"),
                    arg.span,
                )
                .with_hint("compare the factor's levels with their coefficients' labels"),
            );
            return;
        }
        let offsets = scope.offsets.iter().map(String::as_str);
        for v in predictors.iter().copied().chain(offsets) {
            if v != x.as_str() && reads_transitively(v, x, &scope.lets) {
                self.error(
                    Diagnostic::at(
                        format!(
                            "`ame({x})` would hold `{v}` fixed, but `{v}` is computed from `{x}` \
                             in a `let`"
                        ),
                        arg.span,
                    )
                    .with_hint(format!(
                        "`ame` differentiates the terms that name `{x}`; following `{x}` through \
                         a `let` is not supported yet"
                    )),
                );
            }
        }
    }
}

/// Whether the `let` named `name` reads `x`, directly or through earlier `let`s.
fn reads_transitively(name: &str, x: &str, lets: &[(String, Vec<String>)]) -> bool {
    let Some(position) = lets.iter().position(|(l, _)| l == name) else {
        return false;
    };
    let earlier = &lets[..position];
    lets[position].1.iter().any(|read| {
        read == x
            || (earlier.iter().any(|(l, _)| l == read) && reads_transitively(read, x, earlier))
    })
}

fn unknown_function(function: &Ident) -> Diagnostic {
    let name = function.name.as_str();
    let names = crate::functions::names(Context::Definition);
    let mut d = Diagnostic::at(format!("unknown function `{name}`"), function.span)
        .with_expected(format!("one of {}", names.join(", ")));
    if let Some(hint) = did_you_mean(name, names.iter().copied()) {
        d = d.with_hint(hint);
    }
    d
}

/// The `:=` definitions of `file` lowered without the rest of the checks, for tools and tests
/// that compile definitions against a parameter table of their own (which then says whether a
/// label exists): each name an earlier definition, the `vary` name or else a label. A call of
/// an unknown function cannot be lowered: it is reported and its definition left out.
pub fn lower_definitions(file: &ModelFile) -> (Vec<Definition>, Vec<Diagnostic>) {
    let vary = file.statements.iter().find_map(|s| match s {
        Statement::Vary { name, .. } => Some(name.name.as_str()),
        _ => None,
    });
    let mut earlier: Vec<String> = Vec::new();
    let mut definitions = Vec::new();
    let mut errors = Vec::new();
    for statement in &file.statements {
        let Statement::Define { name, value, span } = statement else {
            continue;
        };
        let mut lowering = Lowering::new(&earlier, vary);
        let value = lower_expression(value, &mut lowering);
        if lowering.errors.is_empty() {
            definitions.push(Definition {
                name: name.name.clone(),
                value,
                span: *span,
            });
        }
        errors.extend(lowering.errors);
        earlier.push(name.name.clone());
    }
    (definitions, errors)
}

/// A definition's body lowered: names resolved in the order the checker accepts them (an
/// earlier definition, the `vary` name, a label), calls bound to the catalogue.
struct Lowering<'a> {
    earlier: &'a [String],
    vary: Option<&'a str>,
    errors: Vec<Diagnostic>,
}

impl<'a> Lowering<'a> {
    fn new(earlier: &'a [String], vary: Option<&'a str>) -> Self {
        Lowering {
            earlier,
            vary,
            errors: Vec::new(),
        }
    }
}

impl Resolve for Lowering<'_> {
    const CONTEXT: Context = Context::Definition;

    fn name(&mut self, name: &str, _span: Span) -> Name {
        if self.earlier.iter().any(|d| d == name) {
            Name::Definition(name.to_string())
        } else if self.vary == Some(name) {
            Name::Vary(name.to_string())
        } else {
            Name::Label(name.to_string())
        }
    }

    /// The arguments of a call; of `var`/`sd`/`cov`/`cor` the first `labels` names are labels
    /// of random effects and the one after them a grouping.
    fn arguments(&mut self, function: &Function, args: &[Arg]) -> Vec<Argument> {
        let labels = function.labels;
        let mut out = Vec::with_capacity(args.len());
        for (position, arg) in args.iter().enumerate() {
            let value = match &arg.value.kind {
                ExprKind::Name(n) if function.id == Builtin::Ame => Expression {
                    kind: ExpressionKind::Name(Name::Column(n.clone())),
                    span: arg.value.span,
                },
                ExprKind::Name(n) if labels > 0 => Expression {
                    kind: ExpressionKind::Name(if position < labels {
                        Name::Label(n.clone())
                    } else {
                        Name::Grouping(n.clone())
                    }),
                    span: arg.value.span,
                },
                _ => lower_expression(&arg.value, self),
            };
            out.push(Argument {
                name: argument_name(arg),
                value,
            });
        }
        out
    }

    /// The call is not lowered further: its arguments would only add errors of their own.
    fn unknown_call(&mut self, function: &Ident, _args: &[Arg]) {
        self.errors.push(unknown_function(function));
    }
}

/// Random parts in different random terms: the model makes their covariance zero.
fn unshared_random_parts(name: &str, span: Span) -> Diagnostic {
    Diagnostic::at(
        format!(
            "the random parts in `{name}` are in different random terms, so the \
             model makes their covariance zero"
        ),
        span,
    )
    .with_hint(
        "random effects are correlated only within one grouping's block \
         (written with `|`, not `||`)",
    )
}
