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
use super::layout::DesignLayout;
use super::{EquationObservations, ParameterMap, ResidualClass};

mod ar1;

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
    /// With `residual ar1 within series`: the end-row and lag-1 sums AR(1) needs.
    pub ar1: Option<SeriesStatistics>,
}

/// What AR(1) residuals within series add (see `ar1`): the same shapes as the ordinary sums,
/// their classes the series' end rows per residual class and the symmetrised sums over
/// consecutive rows per pair of residual classes (`classes`). With one residual class these are
/// class 0 (end rows) and class 1 (consecutive pairs).
#[derive(Debug, Clone, PartialEq)]
pub struct SeriesStatistics {
    /// The series column's name.
    pub series: String,
    pub nseries: usize,
    /// What each class sums: end rows of a residual class first (by class), then the pairs (by
    /// class pair). Residual classes numbered as `SufficientStatistics::n`.
    pub classes: Vec<SeriesClass>,
    /// [X y]'[X y] per class of `classes` (a pair's symmetrised: x_i x_j' + x_j x_i').
    pub xy: Vec<Vec<f64>>,
    /// Per random term, levels numbered as `SufficientStatistics::factors`.
    pub factors: Vec<FactorStatistics>,
    pub cross: Vec<CrossStatistics>,
}

/// A class of the AR(1) sums: the end rows of series in residual class `c`, or the consecutive
/// rows of a series in residual classes `c` and `d` (c ≤ d, either order in the series).
#[derive(Debug, Clone, Copy, PartialEq, Eq, PartialOrd, Ord)]
pub enum SeriesClass {
    End(usize),
    Lag(usize, usize),
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
    let m = fixed.len() + 1;
    let layout = DesignLayout::new(spec, frame, equations, fixed, groupings);
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
            let mut pass = Pass::new(&layout, spec);
            pass.rows(&layout, rows);
            pass
        })
        .collect();
    let mut pass = if passes.is_empty() {
        Pass::new(&layout, spec)
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
        ar1,
        class_index,
        ..
    } = pass;

    mirror_sums(&mut xy, &mut factors, m);
    let empty = empty_equations(spec, &observations, nrows);
    if !empty.is_empty() {
        return Err(empty);
    }
    if n.is_empty() {
        return Err(vec![Diagnostic::error(
            "no observations: every row misses a model variable",
            Location::None,
        )]);
    }

    let (order, rank) = class_order(&class_keys);
    let (classes, n_sorted, xy_sorted) = sorted_classes(&order, &class_keys, &n, &xy);

    let (kept_levels, renumber) = levels_with_observations(&factors, nlevels);
    let ar1 = match ar1 {
        Some(series) => {
            // A residual class's key (`DesignLayout::class_key`) as the class's number here.
            let class_of: HashMap<u64, usize> = class_index
                .iter()
                .filter(|((e, _), _)| *e == 0)
                .map(|(&(_, key), &i)| (key, rank[i]))
                .collect();
            let levels = (kept_levels.as_slice(), renumber.as_slice());
            Some(series_statistics(spec, series, &class_of, levels, m)?)
        }
        None => None,
    };
    let factors = factors
        .into_iter()
        .enumerate()
        .map(|(k, acc)| acc.finish(&renumber[k], kept_levels[k].len(), &rank))
        .collect();
    let cross = crosses
        .into_iter()
        .filter(|c| !c.blocks.is_empty())
        .map(|c| c.finish(&renumber, &rank))
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
            ar1,
        },
        classes,
        observations,
        kept_levels,
        unused,
    ))
}

/// Complete the symmetric sums, summed as lower triangles.
fn mirror_sums(xy: &mut [Vec<f64>], factors: &mut [Accumulator], m: usize) {
    for s in xy {
        mirror_lower(s, m);
    }
    for acc in factors {
        for (_, _, zz, _) in &mut acc.blocks {
            mirror_lower(zz, acc.q);
        }
    }
}

/// An equation without observations: say which variables emptied it, at the equation.
fn empty_equations(
    spec: &ModelSpec,
    observations: &[EquationObservations],
    nrows: usize,
) -> Vec<Diagnostic> {
    observations
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
        .collect()
}

/// Classes in a stable order: by equation, then by the `by` column's level order. Returns the
/// first-seen class numbers in that order, and each one's rank in it.
fn class_order(class_keys: &[(usize, f64, Option<String>)]) -> (Vec<usize>, Vec<usize>) {
    let mut order: Vec<usize> = (0..class_keys.len()).collect();
    order.sort_by(|&i, &j| {
        (class_keys[i].0, class_keys[i].1)
            .partial_cmp(&(class_keys[j].0, class_keys[j].1))
            .unwrap_or(std::cmp::Ordering::Equal)
    });
    let mut rank = vec![0; class_keys.len()];
    for (r, &i) in order.iter().enumerate() {
        rank[i] = r;
    }
    (order, rank)
}

/// The classes in `order`, with their observations and their sums.
fn sorted_classes(
    order: &[usize],
    class_keys: &[(usize, f64, Option<String>)],
    n: &[usize],
    xy: &[Vec<f64>],
) -> (Vec<ResidualClass>, Vec<usize>, Vec<Vec<f64>>) {
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
    (classes, n_sorted, xy_sorted)
}

/// Only levels with observations count (lme4 builds its factors from the model frame):
/// per term, the kept levels and the dense renumbering of all levels, keeping their order.
fn levels_with_observations(
    factors: &[Accumulator],
    nlevels: &[usize],
) -> (Vec<Vec<usize>>, Vec<Vec<usize>>) {
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
    (kept_levels, renumber)
}

impl Accumulator {
    /// The summed block of `key` (level, class), created empty on first sight.
    fn block(&mut self, key: (u32, u32), m: usize) -> usize {
        match self.last {
            Some((k0, i0)) if k0 == key => i0,
            _ => {
                let q = self.q;
                let blocks = &mut self.blocks;
                let i = *self.index.entry(key).or_insert_with(|| {
                    blocks.push((key.0, key.1, vec![0.0; q * q], vec![0.0; q * m]));
                    blocks.len() - 1
                });
                self.last = Some((key, i));
                i
            }
        }
    }

    /// Add an observation's z row and [x y] row to its level's block.
    fn add(&mut self, level: u32, class: u32, z: &[f64], x: &[f64]) {
        let m = x.len();
        let idx = self.block((level, class), m);
        let q = self.q;
        let (_, _, zz, zxy) = &mut self.blocks[idx];
        for j in 0..q {
            let zj = z[j];
            if zj == 0.0 {
                continue;
            }
            for i in j..q {
                zz[j * q + i] += z[i] * zj;
            }
        }
        for j in 0..m {
            let xj = x[j];
            for i in 0..q {
                zxy[j * q + i] += z[i] * xj;
            }
        }
    }

    /// Add a later chunk's blocks; `class_map` numbers its classes as this chunk's.
    fn merge(&mut self, theirs: Accumulator, class_map: &[u32]) {
        self.last = None;
        for (level, class, zz, zxy) in theirs.blocks {
            let key = (level, class_map[class as usize]);
            match self.index.get(&key) {
                Some(&i) => {
                    let block = &mut self.blocks[i];
                    for (s, v) in block.2.iter_mut().zip(&zz) {
                        *s += v;
                    }
                    for (s, v) in block.3.iter_mut().zip(&zxy) {
                        *s += v;
                    }
                }
                None => {
                    self.index.insert(key, self.blocks.len());
                    self.blocks.push((key.0, key.1, zz, zxy));
                }
            }
        }
    }

    /// The term's statistics: levels renumbered by `map` (`nlevels` kept), classes by `rank`,
    /// blocks sorted by level, then class.
    fn finish(self, map: &[usize], nlevels: usize, rank: &[usize]) -> FactorStatistics {
        let mut blocks: Vec<(usize, LevelBlock)> = self
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
        let mut level_start = vec![0; nlevels + 1];
        for (l, _) in &blocks {
            level_start[l + 1] += 1;
        }
        for j in 0..nlevels {
            level_start[j + 1] += level_start[j];
        }
        FactorStatistics {
            q: self.q,
            nlevels,
            level_start,
            blocks: blocks.into_iter().map(|(_, b)| b).collect(),
        }
    }
}

impl CrossAccumulator {
    /// Add Z_a'Z_b of one observation to the block of `key` (level of a, level of b, class).
    fn add(&mut self, key: (u32, u32, u32), za: &[f64], zb: &[f64]) {
        let (qa, qb) = (za.len(), zb.len());
        let idx = match self.last {
            Some((k0, i0)) if k0 == key => i0,
            _ => {
                let blocks = &mut self.blocks;
                let i = *self.index.entry(key).or_insert_with(|| {
                    blocks.push((key, vec![0.0; qa * qb]));
                    blocks.len() - 1
                });
                self.last = Some((key, i));
                i
            }
        };
        let zz = &mut self.blocks[idx].1;
        for j in 0..qb {
            for i in 0..qa {
                zz[j * qa + i] += za[i] * zb[j];
            }
        }
    }

    /// Add a later chunk's blocks; `class_map` numbers its classes as this chunk's.
    fn merge(&mut self, theirs: CrossAccumulator, class_map: &[u32]) {
        self.last = None;
        for ((la, lb, class), zz) in theirs.blocks {
            let key = (la, lb, class_map[class as usize]);
            match self.index.get(&key) {
                Some(&i) => {
                    for (s, v) in self.blocks[i].1.iter_mut().zip(&zz) {
                        *s += v;
                    }
                }
                None => {
                    self.index.insert(key, self.blocks.len());
                    self.blocks.push((key, zz));
                }
            }
        }
    }

    /// The pair's statistics: levels renumbered, classes by `rank`, blocks sorted.
    fn finish(self, renumber: &[Vec<usize>], rank: &[usize]) -> CrossStatistics {
        let mut blocks: Vec<CrossBlock> = self
            .blocks
            .into_iter()
            .map(|((la, lb, class), zz)| CrossBlock {
                level_a: renumber[self.a][la as usize],
                level_b: renumber[self.b][lb as usize],
                class: rank[class as usize],
                zz,
            })
            .collect();
        blocks.sort_by_key(|b| (b.level_a, b.level_b, b.class));
        CrossStatistics {
            a: self.a,
            b: self.b,
            blocks,
        }
    }
}

impl UnitSums {
    /// Add an observation's [x y] row to the unit's sums in its class.
    fn add(&mut self, class: usize, x: &[f64]) {
        self.n += 1;
        let sums = match self.classes.iter().position(|(c, _)| *c == class) {
            Some(k) => &mut self.classes[k].1,
            None => {
                self.classes.push((class, vec![0.0; x.len()]));
                &mut self.classes.last_mut().expect("just pushed").1
            }
        };
        for (s, v) in sums.iter_mut().zip(x) {
            *s += v;
        }
    }
}

/// Rows per chunk of the parallel design pass (fixed, so that results do not depend on the
/// number of threads).
pub(super) const CHUNK_ROWS: usize = 1 << 18;

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
    ar1: Option<ar1::SeriesPass>,
}

/// Per random term, the current observation's z row and level, and whether the term has an
/// effect in the observation's equation.
struct TermValues {
    z: Vec<Vec<f64>>,
    levels: Vec<u32>,
    active: Vec<bool>,
}

impl Pass {
    fn new(layout: &DesignLayout, spec: &ModelSpec) -> Self {
        let DesignLayout {
            frame,
            equations,
            effects,
            ..
        } = layout;
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
        Pass {
            factors,
            crosses,
            class_index: HashMap::new(),
            last_class: None,
            class_keys: Vec::new(),
            n: Vec::new(),
            xy: Vec::new(),
            observations,
            unused: 0,
            unit_index: HashMap::new(),
            units: Vec::new(),
            last_unit: None,
            ar1: equations.first().and_then(|e| e.series).map(|c| {
                let qs: Vec<usize> = effects.iter().map(Vec::len).collect();
                ar1::SeriesPass::new(c, &qs, layout.p + 1)
            }),
        }
    }

    /// Add the observations of `rows` (every equation's, row by row) to the sums.
    fn rows(&mut self, layout: &DesignLayout, rows: std::ops::Range<usize>) {
        let (frame, p) = (layout.frame, layout.p);
        let mut x = vec![0.0; p + 1];
        let effects = &layout.effects;
        let mut terms = TermValues {
            z: effects.iter().map(|es| vec![0.0; es.len()]).collect(),
            levels: vec![0u32; effects.len()],
            active: vec![false; effects.len()],
        };
        let (start, end) = (rows.start, rows.end);
        if let Some(series) = &mut self.ar1 {
            series.look_back(layout, start);
        }
        for row in rows {
            let mut used_by_any = false;
            for (e, eq) in layout.equations.iter().enumerate() {
                if !eq.complete(frame, row) {
                    count_missing(&mut self.observations[e], eq, frame, row);
                    continue;
                }
                self.observations[e].used += 1;
                used_by_any = true;

                x.iter_mut().for_each(|v| *v = 0.0);
                let offset = layout.fixed_row(e, row, &mut x);
                x[p] = column_value(frame, eq.outcome, row) - offset;

                let class = self.class_of(layout, e, row);
                self.n[class] += 1;
                if let Some(u) = eq.within {
                    self.add_to_unit((e, category_key(&frame.columns[u], row)), class, &x);
                }
                add_lower_outer(&mut self.xy[class], &x);
                self.add_to_levels(layout, e, row, class, &x, &mut terms);
                self.add_to_crosses(&terms, class);
                if let Some(series) = &mut self.ar1 {
                    let column = &frame.columns[series.column()];
                    let line = frame.source_rows.get(row).copied().unwrap_or(row + 1);
                    let key = layout.class_key(e, row).0;
                    series.observe(column, (row, line, key), &x, &terms);
                }
            }
            if !used_by_any {
                self.unused += 1;
            }
        }
        if let Some(series) = &mut self.ar1 {
            series.look_ahead(layout, end);
        }
    }

    /// The class of an observation of equation `e` at `row`, numbered on first appearance.
    fn class_of(&mut self, layout: &DesignLayout, e: usize, row: usize) -> usize {
        let (key, sort_key) = layout.class_key(e, row);
        match self.last_class {
            Some((k, c)) if k == (e, key) => c,
            _ => {
                let m = layout.p + 1;
                let by = layout.equations[e].by;
                let Pass {
                    class_index,
                    class_keys,
                    n,
                    xy,
                    ..
                } = self;
                let c = *class_index.entry((e, key)).or_insert_with(|| {
                    let label = by.map(|c| level_label(&layout.frame.columns[c], key));
                    class_keys.push((e, sort_key, label));
                    n.push(0);
                    xy.push(vec![0.0; m * m]);
                    n.len() - 1
                });
                self.last_class = Some(((e, key), c));
                c
            }
        }
    }

    /// Add an observation's [x y] row to its unit's sums (`key`: equation, unit).
    fn add_to_unit(&mut self, key: (usize, u64), class: usize, x: &[f64]) {
        let i = match self.last_unit {
            Some((k0, i0)) if k0 == key => i0,
            _ => {
                let units = &mut self.units;
                let i = *self.unit_index.entry(key).or_insert_with(|| {
                    units.push(UnitSums {
                        n: 0,
                        classes: Vec::new(),
                    });
                    units.len() - 1
                });
                self.last_unit = Some((key, i));
                i
            }
        };
        self.units[i].add(class, x);
    }

    /// Add an observation to the level blocks of every random term with an effect in its
    /// equation, noting each term's z row and level for the cross blocks.
    fn add_to_levels(
        &mut self,
        layout: &DesignLayout,
        e: usize,
        row: usize,
        class: usize,
        x: &[f64],
        terms: &mut TermValues,
    ) {
        for (k, acc) in self.factors.iter_mut().enumerate() {
            terms.active[k] = layout.in_equation[k][e];
            if !terms.active[k] {
                continue;
            }
            let zk = &mut terms.z[k];
            layout.z_row(k, e, row, zk);
            let level = layout.groupings[k].codes[row];
            terms.levels[k] = level;
            acc.add(level, class as u32, zk, x);
        }
    }

    /// Add an observation to the cross blocks of every pair of terms both active with a nonzero
    /// z row.
    fn add_to_crosses(&mut self, terms: &TermValues, class: usize) {
        for cr in self.crosses.iter_mut() {
            if !(terms.active[cr.a] && terms.active[cr.b]) {
                continue;
            }
            let (za, zb) = (&terms.z[cr.a], &terms.z[cr.b]);
            if za.iter().all(|v| *v == 0.0) || zb.iter().all(|v| *v == 0.0) {
                continue;
            }
            let key = (terms.levels[cr.a], terms.levels[cr.b], class as u32);
            cr.add(key, za, zb);
        }
    }

    /// Add a later chunk's sums to this one's.
    pub(super) fn merge(&mut self, other: Pass, m: usize) {
        let class_map = self.merge_classes(&other, m);
        let Pass {
            factors,
            crosses,
            observations,
            unused,
            unit_index,
            units,
            ar1,
            ..
        } = other;
        if let (Some(mine), Some(theirs)) = (&mut self.ar1, ar1) {
            mine.merge(theirs);
        }
        self.unused += unused;
        for (mine, theirs) in self.observations.iter_mut().zip(observations) {
            mine.used += theirs.used;
            mine.dropped += theirs.dropped;
            for (a, b) in mine.missing.iter_mut().zip(theirs.missing) {
                a.1 += b.1;
            }
        }
        for (acc, theirs) in self.factors.iter_mut().zip(factors) {
            acc.merge(theirs, &class_map);
        }
        for (cr, theirs) in self.crosses.iter_mut().zip(crosses) {
            cr.merge(theirs, &class_map);
        }
        self.merge_units(units, &unit_index, &class_map);
        self.last_class = None;
        self.last_unit = None;
    }

    /// Add a later chunk's class sums, matching classes by key; returns the later chunk's class
    /// numbers as this one's.
    fn merge_classes(&mut self, other: &Pass, m: usize) -> Vec<u32> {
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
        class_map
    }

    /// Add a later chunk's unit sums, matching units by key.
    fn merge_units(
        &mut self,
        units: Vec<UnitSums>,
        unit_index: &HashMap<(usize, u64), usize>,
        class_map: &[u32],
    ) {
        let mut other_unit_key = vec![(0usize, 0u64); units.len()];
        for (key, &i) in unit_index {
            other_unit_key[i] = *key;
        }
        for (unit, key) in units.into_iter().zip(other_unit_key) {
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
    }
}

/// Count an incomplete row of an equation as dropped, and each variable it misses.
fn count_missing(
    obs: &mut EquationObservations,
    eq: &EquationColumns,
    frame: &AnalysisFrame,
    row: usize,
) {
    obs.dropped += 1;
    for (k, &c) in eq.required.iter().enumerate() {
        if is_missing(frame, c, row) {
            obs.missing[k].1 += 1;
        }
    }
}

/// Add the lower triangle of x x' to the column-major `s` (symmetric; mirrored after the pass).
fn add_lower_outer(s: &mut [f64], x: &[f64]) {
    let m = x.len();
    for j in 0..m {
        let xj = x[j];
        for i in j..m {
            s[j * m + i] += x[i] * xj;
        }
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

/// The AR(1) sums finished as the ordinary ones (levels renumbered, symmetric blocks mirrored,
/// classes in `SeriesClass` order with the residual classes numbered by `class_of`, from their
/// keys), or the located error for a series that crosses levels of a grouping factor.
fn series_statistics(
    spec: &ModelSpec,
    pass: ar1::SeriesPass,
    class_of: &HashMap<u64, usize>,
    (kept_levels, renumber): (&[Vec<usize>], &[Vec<usize>]),
    m: usize,
) -> Result<SeriesStatistics, Vec<Diagnostic>> {
    let series = spec
        .residual
        .iter()
        .find_map(|r| r.ar1_within.clone())
        .unwrap_or_default();
    if !pass.crossings.is_empty() {
        return Err(pass
            .crossings
            .iter()
            .take(1)
            .map(|&(row, k)| {
                let term = &spec.random[k];
                Diagnostic::at(
                    format!(
                        "a series of `{series}` has rows in two levels of `{}` (at data row {}): \
                         AR(1) residuals within `{series}` need each series inside one level of \
                         every grouping factor",
                        term.name, row
                    ),
                    term.span,
                )
                .with_hint(format!(
                    "use a series column nested in `{}` (e.g. `let s = ...` combining both), or \
                     check the `order` and `group` statements",
                    term.name
                ))
            })
            .collect());
    }
    let classes: Vec<SeriesClass> = pass
        .classes
        .iter()
        .map(|c| match *c {
            ar1::PassClass::End(k) => SeriesClass::End(class_of[&k]),
            ar1::PassClass::Lag(k, l) => {
                let (c, d) = (class_of[&k], class_of[&l]);
                SeriesClass::Lag(c.min(d), c.max(d))
            }
        })
        .collect();
    let mut order: Vec<usize> = (0..classes.len()).collect();
    order.sort_by_key(|&i| classes[i]);
    let mut rank = vec![0; classes.len()];
    for (r, &i) in order.iter().enumerate() {
        rank[i] = r;
    }
    let mut factors = pass.factors;
    let mut xy = pass.xy;
    mirror_sums(&mut xy, &mut factors, m);
    let xy = order.iter().map(|&i| std::mem::take(&mut xy[i])).collect();
    let classes = order.iter().map(|&i| classes[i]).collect();
    let factors = factors
        .into_iter()
        .enumerate()
        .map(|(k, acc)| acc.finish(&renumber[k], kept_levels[k].len(), &rank))
        .collect();
    let cross = pass
        .crosses
        .into_iter()
        .filter(|c| !c.blocks.is_empty())
        .map(|c| c.finish(renumber, &rank))
        .collect();
    Ok(SeriesStatistics {
        series,
        nseries: pass.nseries,
        classes,
        xy,
        factors,
        cross,
    })
}
