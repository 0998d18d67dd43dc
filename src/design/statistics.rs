//! The sufficient statistics of a linear mixed model, accumulated in ONE pass over the rows.
//!
//! Per residual class (the weight of a class is a parameter, so classes are kept apart and
//! combined per evaluation): n, [X y]'[X y]; per level of each random term Z'Z and Z'[X y]; per
//! pair of terms the blocks Z_a'Z_b of level pairs that co-occur; with residuals correlated within
//! units, per unit size and pair of classes the summed outer products of the units' per-class
//! [X y] sums. Matrices are flat column-major `Vec<f64>`. This module must not estimate anything.

use std::collections::HashMap;

use rayon::prelude::*;

use crate::data::Column;
use crate::diagnostics::{Diagnostic, Location};
use crate::model::ModelSpec;
use crate::prepare::AnalysisFrame;

use super::columns::{column_value, is_missing, EquationColumns};
use super::grouping::Grouping;
use super::{EquationObservations, ParameterMap, ResidualClass, Target};

#[derive(Debug, Clone, PartialEq)]
pub struct SufficientStatistics {
    /// Number of free fixed-effect parameters (columns of X).
    pub p: usize,
    /// Observations per residual class.
    pub n: Vec<usize>,
    /// Per class: [X y]'[X y], (p+1)×(p+1) column-major; y is offset-corrected.
    pub xy: Vec<Vec<f64>>,
    /// Per random term (in `ModelSpec::random` order).
    pub factors: Vec<FactorStatistics>,
    /// Per pair of random terms `a < b` whose levels co-occur.
    pub cross: Vec<CrossStatistics>,
    /// With `residual correlated within unit`: the within-unit sums compound symmetry needs.
    pub within: Option<WithinUnitStatistics>,
}

/// What compound symmetry within units adds to the likelihood. With V_u = D_u C_u D_u (D_u the
/// units' relative residual SDs, C_u = (1 − ρ)I + ρ11'), V_u⁻¹ = D⁻¹(a I − b_u 11')D⁻¹ where b_u
/// depends on the unit's size only; so besides the per-class [X y]'[X y] the likelihood needs,
/// per unit size k, the number of units and Σ_u S_uc S_ud' over the units of that size, where
/// S_uc sums the [x y] rows of unit u in class c. An evaluation then costs per size, not per unit.
#[derive(Debug, Clone, PartialEq)]
pub struct WithinUnitStatistics {
    /// The unit column's name.
    pub unit: String,
    pub nunits: usize,
    /// By increasing size.
    pub sizes: Vec<UnitSize>,
}

#[derive(Debug, Clone, PartialEq)]
pub struct UnitSize {
    /// Observations per unit.
    pub size: usize,
    /// Units with that many observations.
    pub units: usize,
    /// Per class pair `(c, d)` at index `c * nclasses + d`: Σ_u S_uc S_ud', (p+1)×(p+1).
    pub outer: Vec<Vec<f64>>,
}

/// One unit's running sums while the rows are read.
struct UnitSums {
    n: usize,
    /// (class as first numbered, Σ [x y] of the unit's rows in that class).
    classes: Vec<(usize, Vec<f64>)>,
}

#[derive(Debug, Clone, PartialEq)]
pub struct FactorStatistics {
    pub q: usize,
    pub nlevels: usize,
    /// Blocks of level `j` are `blocks[level_start[j]..level_start[j + 1]]`, one per class.
    pub level_start: Vec<usize>,
    pub blocks: Vec<LevelBlock>,
}

#[derive(Debug, Clone, PartialEq)]
pub struct LevelBlock {
    pub class: usize,
    /// Z_j'Z_j, q×q.
    pub zz: Vec<f64>,
    /// Z_j'[X y], q×(p+1).
    pub zxy: Vec<f64>,
}

#[derive(Debug, Clone, PartialEq)]
pub struct CrossStatistics {
    pub a: usize,
    pub b: usize,
    pub blocks: Vec<CrossBlock>,
}

#[derive(Debug, Clone, PartialEq)]
pub struct CrossBlock {
    pub level_a: usize,
    pub level_b: usize,
    pub class: usize,
    /// Z_a'Z_b restricted to the rows of both levels, q_a×q_b.
    pub zz: Vec<f64>,
}

struct Accumulator {
    q: usize,
    index: HashMap<(u32, u32), usize>,
    last: Option<((u32, u32), usize)>,
    blocks: Vec<(u32, u32, Vec<f64>, Vec<f64>)>,
}

struct CrossAccumulator {
    a: usize,
    b: usize,
    index: HashMap<(u32, u32, u32), usize>,
    last: Option<((u32, u32, u32), usize)>,
    blocks: Vec<((u32, u32, u32), Vec<f64>)>,
}

/// The statistics, the residual classes, the observations per equation, per random term the
/// (first-appearance) indices of the levels that have observations, and the number of rows no
/// equation uses.
pub(super) type Accumulated = (
    SufficientStatistics,
    Vec<ResidualClass>,
    Vec<EquationObservations>,
    Vec<Vec<usize>>,
    usize,
);

pub(super) fn accumulate(
    spec: &ModelSpec,
    frame: &AnalysisFrame,
    equations: &[EquationColumns],
    fixed: &ParameterMap,
    groupings: &[Grouping],
    chunk_rows: usize,
) -> Result<Accumulated, Vec<Diagnostic>> {
    let pass = sum_rows(spec, frame, equations, fixed, groupings, chunk_rows);
    let nlevels: Vec<usize> = groupings.iter().map(Grouping::nlevels).collect();
    finish(spec, pass, &nlevels, frame.nrows, fixed.len())
}

/// The running sums of the rows of `frame` (its groupings numbered for it, or continued from
/// earlier pieces of the same file).
pub(super) fn sum_rows(
    spec: &ModelSpec,
    frame: &AnalysisFrame,
    equations: &[EquationColumns],
    fixed: &ParameterMap,
    groupings: &[Grouping],
    chunk_rows: usize,
) -> Pass {
    let chunk_rows = chunk_rows.max(1);
    let p = fixed.len();
    let m = p + 1;
    // Per term, per effect: (equation, frame columns of the slope's variables).
    let effects: Vec<Vec<(usize, Vec<usize>)>> = spec
        .random
        .iter()
        .map(|t| {
            t.effects
                .iter()
                .map(|e| {
                    let cols = e
                        .variables
                        .iter()
                        .filter_map(|v| frame.names.iter().position(|n| n == v))
                        .collect();
                    (e.equation, cols)
                })
                .collect()
        })
        .collect();
    let in_equation: Vec<Vec<bool>> = effects
        .iter()
        .map(|es| {
            (0..equations.len())
                .map(|e| es.iter().any(|(eq, _)| *eq == e))
                .collect()
        })
        .collect();
    let context = Context {
        frame,
        equations,
        fixed,
        groupings,
        effects: &effects,
        in_equation: &in_equation,
        p,
    };
    // Fixed-size chunks of rows, accumulated in parallel and merged in chunk order: the same
    // sums (to the last bit) for any number of threads. A frame of one chunk is summed exactly
    // as a single sequential pass.
    let chunks: Vec<std::ops::Range<usize>> = (0..frame.nrows)
        .step_by(chunk_rows)
        .map(|start| start..(start + chunk_rows).min(frame.nrows))
        .collect();
    let mut passes: Vec<Pass> = chunks
        .into_par_iter()
        .map(|rows| {
            let mut pass = Pass::new(&context, spec);
            pass.rows(&context, rows);
            pass
        })
        .collect();
    let mut pass = if passes.is_empty() {
        Pass::new(&context, spec)
    } else {
        passes.remove(0)
    };
    for other in passes {
        pass.merge(other, m);
    }
    pass
}

/// The statistics from the sums of all rows: classes in a stable order, levels without
/// observations dropped, symmetric blocks completed. `nlevels` per random term; `nrows` only
/// for messages.
pub(super) fn finish(
    spec: &ModelSpec,
    pass: Pass,
    nlevels: &[usize],
    nrows: usize,
    p: usize,
) -> Result<Accumulated, Vec<Diagnostic>> {
    let m = p + 1;
    let Pass {
        mut factors,
        crosses,
        class_keys,
        n,
        mut xy,
        observations,
        units,
        unused,
        ..
    } = pass;

    for s in &mut xy {
        mirror_lower(s, m);
    }
    for acc in &mut factors {
        for (_, _, zz, _) in &mut acc.blocks {
            mirror_lower(zz, acc.q);
        }
    }

    // An equation without observations: say which variables emptied it, at the equation.
    let empty: Vec<Diagnostic> = observations
        .iter()
        .zip(&spec.equations)
        .filter(|(obs, _)| obs.used == 0)
        .map(|(obs, equation)| {
            let mut culprits: Vec<&(String, usize)> =
                obs.missing.iter().filter(|(_, k)| *k > 0).collect();
            culprits.sort_by_key(|c| std::cmp::Reverse(c.1));
            let named = culprits
                .iter()
                .map(|(v, k)| format!("`{v}` in {k}"))
                .collect::<Vec<_>>()
                .join(", ");
            Diagnostic::at(
                format!(
                    "no observations for `{}`: each of the {} rows misses a model variable{}",
                    obs.outcome,
                    nrows,
                    if named.is_empty() {
                        String::new()
                    } else {
                        format!(" (missing: {named})")
                    }
                ),
                equation.span,
            )
            .with_hint("check these columns in the data file, and the `keep` and `let` statements")
        })
        .collect();
    if !empty.is_empty() {
        return Err(empty);
    }
    if n.is_empty() {
        return Err(vec![Diagnostic::error(
            "no observations: every row misses a model variable",
            Location::None,
        )]);
    }

    // Classes in a stable order: by equation, then by the `by` column's level order.
    let mut order: Vec<usize> = (0..n.len()).collect();
    order.sort_by(|&i, &j| {
        (class_keys[i].0, class_keys[i].1)
            .partial_cmp(&(class_keys[j].0, class_keys[j].1))
            .unwrap_or(std::cmp::Ordering::Equal)
    });
    let mut rank = vec![0; n.len()];
    for (r, &i) in order.iter().enumerate() {
        rank[i] = r;
    }
    let classes = order
        .iter()
        .map(|&i| ResidualClass {
            equation: class_keys[i].0,
            level: class_keys[i].2.clone(),
            nobs: n[i],
        })
        .collect();
    let n_sorted = order.iter().map(|&i| n[i]).collect();
    let xy_sorted = order.iter().map(|&i| xy[i].clone()).collect();

    // Only levels with observations count (lme4 builds its factors from the model frame):
    // renumber them densely, keeping their order.
    let mut kept_levels: Vec<Vec<usize>> = Vec::new();
    let mut renumber: Vec<Vec<usize>> = Vec::new();
    for (acc, &g_levels) in factors.iter().zip(nlevels) {
        let mut used = vec![false; g_levels];
        for (level, ..) in &acc.blocks {
            used[*level as usize] = true;
        }
        let mut map = vec![usize::MAX; g_levels];
        let mut kept = Vec::new();
        for (old, _) in used.iter().enumerate().filter(|(_, u)| **u) {
            map[old] = kept.len();
            kept.push(old);
        }
        kept_levels.push(kept);
        renumber.push(map);
    }
    let factors = factors
        .into_iter()
        .enumerate()
        .map(|(k, acc)| {
            let map = &renumber[k];
            let mut blocks: Vec<(usize, LevelBlock)> = acc
                .blocks
                .into_iter()
                .map(|(level, class, zz, zxy)| {
                    (
                        map[level as usize],
                        LevelBlock {
                            class: rank[class as usize],
                            zz,
                            zxy,
                        },
                    )
                })
                .collect();
            blocks.sort_by_key(|(l, b)| (*l, b.class));
            let nlevels = kept_levels[k].len();
            let mut level_start = vec![0; nlevels + 1];
            for (l, _) in &blocks {
                level_start[l + 1] += 1;
            }
            for j in 0..nlevels {
                level_start[j + 1] += level_start[j];
            }
            FactorStatistics {
                q: acc.q,
                nlevels,
                level_start,
                blocks: blocks.into_iter().map(|(_, b)| b).collect(),
            }
        })
        .collect();
    let cross = crosses
        .into_iter()
        .filter(|c| !c.blocks.is_empty())
        .map(|c| {
            let mut blocks: Vec<CrossBlock> = c
                .blocks
                .into_iter()
                .map(|((la, lb, class), zz)| CrossBlock {
                    level_a: renumber[c.a][la as usize],
                    level_b: renumber[c.b][lb as usize],
                    class: rank[class as usize],
                    zz,
                })
                .collect();
            blocks.sort_by_key(|b| (b.level_a, b.level_b, b.class));
            CrossStatistics {
                a: c.a,
                b: c.b,
                blocks,
            }
        })
        .collect();

    let within = spec
        .residual
        .iter()
        .find_map(|r| r.correlated_within.clone())
        .map(|unit| within_statistics(unit, &units, &rank, m));

    Ok((
        SufficientStatistics {
            p,
            n: n_sorted,
            xy: xy_sorted,
            factors,
            cross,
            within,
        },
        classes,
        observations,
        kept_levels,
        unused,
    ))
}

/// Rows per chunk of the parallel design pass (fixed, so that results do not depend on the
/// number of threads).
pub(super) const CHUNK_ROWS: usize = 1 << 18;

/// What every chunk of the pass reads.
struct Context<'a> {
    frame: &'a AnalysisFrame,
    equations: &'a [EquationColumns],
    fixed: &'a ParameterMap,
    groupings: &'a [Grouping],
    /// Per term, per effect: (equation, frame columns of the slope's variables).
    effects: &'a [Vec<(usize, Vec<usize>)>],
    in_equation: &'a [Vec<bool>],
    p: usize,
}

/// The running sums of one chunk of rows. Classes, blocks and units are numbered in order of
/// first appearance within the chunk; `merge` matches them by key.
pub(super) struct Pass {
    factors: Vec<Accumulator>,
    crosses: Vec<CrossAccumulator>,
    class_index: HashMap<(usize, u64), usize>,
    last_class: Option<((usize, u64), usize)>,
    class_keys: Vec<(usize, f64, Option<String>)>,
    n: Vec<usize>,
    xy: Vec<Vec<f64>>,
    observations: Vec<EquationObservations>,
    /// Rows that no equation uses (each misses a variable of every equation).
    unused: usize,
    unit_index: HashMap<(usize, u64), usize>,
    units: Vec<UnitSums>,
    last_unit: Option<((usize, u64), usize)>,
}

impl Pass {
    fn new(context: &Context, spec: &ModelSpec) -> Self {
        let Context {
            frame,
            equations,
            effects,
            ..
        } = *context;
        let factors: Vec<Accumulator> = effects
            .iter()
            .map(|es| Accumulator {
                q: es.len(),
                index: HashMap::new(),
                last: None,
                blocks: Vec::new(),
            })
            .collect();
        let mut crosses: Vec<CrossAccumulator> = Vec::new();
        for a in 0..effects.len() {
            for b in a + 1..effects.len() {
                crosses.push(CrossAccumulator {
                    a,
                    b,
                    index: HashMap::new(),
                    last: None,
                    blocks: Vec::new(),
                });
            }
        }

        let class_index: HashMap<(usize, u64), usize> = HashMap::new();
        let last_class: Option<((usize, u64), usize)> = None;
        let class_keys: Vec<(usize, f64, Option<String>)> = Vec::new();
        let n: Vec<usize> = Vec::new();
        let xy: Vec<Vec<f64>> = Vec::new();
        let observations: Vec<EquationObservations> = equations
            .iter()
            .map(|e| EquationObservations {
                outcome: spec.equations[e.equation].outcome.clone(),
                used: 0,
                dropped: 0,
                missing: e
                    .required
                    .iter()
                    .map(|&c| (frame.names[c].clone(), 0))
                    .collect(),
            })
            .collect();

        let unit_index: HashMap<(usize, u64), usize> = HashMap::new();
        let units: Vec<UnitSums> = Vec::new();
        let last_unit: Option<((usize, u64), usize)> = None;

        Pass {
            factors,
            crosses,
            class_index,
            last_class,
            class_keys,
            n,
            xy,
            observations,
            unused: 0,
            unit_index,
            units,
            last_unit,
        }
    }

    fn rows(&mut self, context: &Context, rows: std::ops::Range<usize>) {
        let Context {
            frame,
            equations,
            fixed,
            groupings,
            effects,
            in_equation,
            p,
        } = *context;
        let m = p + 1;
        let Pass {
            factors,
            crosses,
            class_index,
            last_class,
            class_keys,
            n,
            xy,
            observations,
            unused,
            unit_index,
            units,
            last_unit,
        } = self;
        let mut x = vec![0.0; m];
        let mut z: Vec<Vec<f64>> = effects.iter().map(|es| vec![0.0; es.len()]).collect();
        let mut levels = vec![0u32; effects.len()];
        let mut active = vec![false; effects.len()];
        for row in rows {
            let mut used_by_any = false;
            for (e, eq) in equations.iter().enumerate() {
                if !eq.complete(frame, row) {
                    let obs = &mut observations[e];
                    obs.dropped += 1;
                    for (k, &c) in eq.required.iter().enumerate() {
                        if is_missing(frame, c, row) {
                            obs.missing[k].1 += 1;
                        }
                    }
                    continue;
                }
                observations[e].used += 1;
                used_by_any = true;

                x.iter_mut().for_each(|v| *v = 0.0);
                let mut offset = 0.0;
                for (k, col) in eq.columns.iter().enumerate() {
                    let v = col.value(frame, row);
                    match fixed.target(e, k) {
                        Target::Parameter(i) => x[i] += v,
                        Target::Offset(c) => offset += c * v,
                    }
                }
                x[p] = column_value(frame, eq.outcome, row) - offset;

                let class = {
                    let (key, sort_key, name) = match eq.by {
                        None => (0u64, 0.0, None),
                        Some(c) => match &frame.columns[c] {
                            Column::Numeric(v) => (v[row].to_bits(), v[row], Some(c)),
                            Column::Text { codes, .. } => {
                                (u64::from(codes[row]), f64::from(codes[row]), Some(c))
                            }
                        },
                    };
                    match *last_class {
                        Some((k, c)) if k == (e, key) => c,
                        _ => {
                            let c = *class_index.entry((e, key)).or_insert_with(|| {
                                let label = name.map(|c| level_label(&frame.columns[c], key));
                                class_keys.push((e, sort_key, label));
                                n.push(0);
                                xy.push(vec![0.0; m * m]);
                                n.len() - 1
                            });
                            *last_class = Some(((e, key), c));
                            c
                        }
                    }
                };
                n[class] += 1;
                if let Some(u) = eq.within {
                    let key = (e, category_key(&frame.columns[u], row));
                    let i = match *last_unit {
                        Some((k0, i0)) if k0 == key => i0,
                        _ => {
                            let i = *unit_index.entry(key).or_insert_with(|| {
                                units.push(UnitSums {
                                    n: 0,
                                    classes: Vec::new(),
                                });
                                units.len() - 1
                            });
                            *last_unit = Some((key, i));
                            i
                        }
                    };
                    let unit = &mut units[i];
                    unit.n += 1;
                    let sums = match unit.classes.iter().position(|(c, _)| *c == class) {
                        Some(k) => &mut unit.classes[k].1,
                        None => {
                            unit.classes.push((class, vec![0.0; m]));
                            &mut unit.classes.last_mut().expect("just pushed").1
                        }
                    };
                    for (s, v) in sums.iter_mut().zip(&x) {
                        *s += v;
                    }
                }
                let s = &mut xy[class];
                // Lower triangles only (symmetric); mirrored after the pass.
                for j in 0..m {
                    let xj = x[j];
                    for i in j..m {
                        s[j * m + i] += x[i] * xj;
                    }
                }

                for (k, acc) in factors.iter_mut().enumerate() {
                    active[k] = in_equation[k][e];
                    if !active[k] {
                        continue;
                    }
                    let zk = &mut z[k];
                    for (i, (eqi, vars)) in effects[k].iter().enumerate() {
                        zk[i] = if *eqi == e {
                            vars.iter().map(|&c| column_value(frame, c, row)).product()
                        } else {
                            0.0
                        };
                    }
                    let level = groupings[k].codes[row];
                    levels[k] = level;
                    let key = (level, class as u32);
                    let idx = match acc.last {
                        Some((k0, i0)) if k0 == key => i0,
                        _ => {
                            let q = acc.q;
                            let blocks = &mut acc.blocks;
                            let i = *acc.index.entry(key).or_insert_with(|| {
                                blocks.push((
                                    level,
                                    class as u32,
                                    vec![0.0; q * q],
                                    vec![0.0; q * m],
                                ));
                                blocks.len() - 1
                            });
                            acc.last = Some((key, i));
                            i
                        }
                    };
                    let q = acc.q;
                    let (_, _, zz, zxy) = &mut acc.blocks[idx];
                    for j in 0..q {
                        let zj = zk[j];
                        if zj == 0.0 {
                            continue;
                        }
                        for i in j..q {
                            zz[j * q + i] += zk[i] * zj;
                        }
                    }
                    for j in 0..m {
                        let xj = x[j];
                        for i in 0..q {
                            zxy[j * q + i] += zk[i] * xj;
                        }
                    }
                }
                for cr in crosses.iter_mut() {
                    if !(active[cr.a] && active[cr.b]) {
                        continue;
                    }
                    let (za, zb) = (&z[cr.a], &z[cr.b]);
                    if za.iter().all(|v| *v == 0.0) || zb.iter().all(|v| *v == 0.0) {
                        continue;
                    }
                    let key = (levels[cr.a], levels[cr.b], class as u32);
                    let (qa, qb) = (za.len(), zb.len());
                    let idx = match cr.last {
                        Some((k0, i0)) if k0 == key => i0,
                        _ => {
                            let blocks = &mut cr.blocks;
                            let i = *cr.index.entry(key).or_insert_with(|| {
                                blocks.push((key, vec![0.0; qa * qb]));
                                blocks.len() - 1
                            });
                            cr.last = Some((key, i));
                            i
                        }
                    };
                    let zz = &mut cr.blocks[idx].1;
                    for j in 0..qb {
                        for i in 0..qa {
                            zz[j * qa + i] += za[i] * zb[j];
                        }
                    }
                }
            }
            if !used_by_any {
                *unused += 1;
            }
        }
    }

    /// Add a later chunk's sums to this one's.
    pub(super) fn merge(&mut self, other: Pass, m: usize) {
        let mut other_class_key = vec![(0usize, 0u64); other.n.len()];
        for (key, &i) in &other.class_index {
            other_class_key[i] = *key;
        }
        let mut class_map = Vec::with_capacity(other.n.len());
        for (i, key) in other_class_key.into_iter().enumerate() {
            let c = match self.class_index.get(&key) {
                Some(&c) => c,
                None => {
                    self.class_keys.push(other.class_keys[i].clone());
                    self.n.push(0);
                    self.xy.push(vec![0.0; m * m]);
                    let c = self.n.len() - 1;
                    self.class_index.insert(key, c);
                    c
                }
            };
            self.n[c] += other.n[i];
            for (s, v) in self.xy[c].iter_mut().zip(&other.xy[i]) {
                *s += v;
            }
            class_map.push(c as u32);
        }
        self.unused += other.unused;
        for (mine, theirs) in self.observations.iter_mut().zip(other.observations) {
            mine.used += theirs.used;
            mine.dropped += theirs.dropped;
            for (a, b) in mine.missing.iter_mut().zip(theirs.missing) {
                a.1 += b.1;
            }
        }
        for (acc, theirs) in self.factors.iter_mut().zip(other.factors) {
            acc.last = None;
            for (level, class, zz, zxy) in theirs.blocks {
                let key = (level, class_map[class as usize]);
                match acc.index.get(&key) {
                    Some(&i) => {
                        let block = &mut acc.blocks[i];
                        for (s, v) in block.2.iter_mut().zip(&zz) {
                            *s += v;
                        }
                        for (s, v) in block.3.iter_mut().zip(&zxy) {
                            *s += v;
                        }
                    }
                    None => {
                        acc.index.insert(key, acc.blocks.len());
                        acc.blocks.push((key.0, key.1, zz, zxy));
                    }
                }
            }
        }
        for (cr, theirs) in self.crosses.iter_mut().zip(other.crosses) {
            cr.last = None;
            for ((la, lb, class), zz) in theirs.blocks {
                let key = (la, lb, class_map[class as usize]);
                match cr.index.get(&key) {
                    Some(&i) => {
                        for (s, v) in cr.blocks[i].1.iter_mut().zip(&zz) {
                            *s += v;
                        }
                    }
                    None => {
                        cr.index.insert(key, cr.blocks.len());
                        cr.blocks.push((key, zz));
                    }
                }
            }
        }
        let mut other_unit_key = vec![(0usize, 0u64); other.units.len()];
        for (key, &i) in &other.unit_index {
            other_unit_key[i] = *key;
        }
        for (unit, key) in other.units.into_iter().zip(other_unit_key) {
            let i = match self.unit_index.get(&key) {
                Some(&i) => i,
                None => {
                    self.units.push(UnitSums {
                        n: 0,
                        classes: Vec::new(),
                    });
                    self.unit_index.insert(key, self.units.len() - 1);
                    self.units.len() - 1
                }
            };
            let mine = &mut self.units[i];
            mine.n += unit.n;
            for (class, sums) in unit.classes {
                let class = class_map[class] as usize;
                match mine.classes.iter_mut().find(|(c, _)| *c == class) {
                    Some((_, s)) => {
                        for (a, b) in s.iter_mut().zip(&sums) {
                            *a += b;
                        }
                    }
                    None => mine.classes.push((class, sums)),
                }
            }
        }
        self.last_class = None;
        self.last_unit = None;
    }
}

/// A row's value of a grouping-like column as a hashable key (numeric bits or factor code).
fn category_key(column: &Column, row: usize) -> u64 {
    match column {
        Column::Numeric(v) => v[row].to_bits(),
        Column::Text { codes, .. } => u64::from(codes[row]),
    }
}

/// Reduce the per-unit sums to per-size outer products; `rank` maps first-seen class numbers to
/// the reported class order.
fn within_statistics(
    unit: String,
    units: &[UnitSums],
    rank: &[usize],
    m: usize,
) -> WithinUnitStatistics {
    let nclasses = rank.len();
    let mut sizes: Vec<UnitSize> = Vec::new();
    for u in units {
        let k = match sizes.iter().position(|s| s.size == u.n) {
            Some(k) => k,
            None => {
                sizes.push(UnitSize {
                    size: u.n,
                    units: 0,
                    outer: vec![vec![0.0; m * m]; nclasses * nclasses],
                });
                sizes.len() - 1
            }
        };
        let size = &mut sizes[k];
        size.units += 1;
        for (c, sc) in &u.classes {
            for (d, sd) in &u.classes {
                let block = &mut size.outer[rank[*c] * nclasses + rank[*d]];
                for j in 0..m {
                    for i in 0..m {
                        block[j * m + i] += sc[i] * sd[j];
                    }
                }
            }
        }
    }
    sizes.sort_by_key(|s| s.size);
    WithinUnitStatistics {
        unit,
        nunits: units.len(),
        sizes,
    }
}

/// Copy the lower triangle of a column-major n×n matrix onto its upper triangle.
fn mirror_lower(a: &mut [f64], n: usize) {
    for j in 0..n {
        for i in j + 1..n {
            a[i * n + j] = a[j * n + i];
        }
    }
}

fn level_label(column: &Column, key: u64) -> String {
    match column {
        Column::Numeric(_) => {
            let v = f64::from_bits(key);
            if v.fract() == 0.0 && v.abs() < 1e15 {
                format!("{}", v as i64)
            } else {
                format!("{v}")
            }
        }
        Column::Text { levels, .. } => levels[key as usize].clone(),
    }
}
