//! The sums AR(1) residuals within series add to the one pass (nlme's `corAR1(form = ~ 1 | s)`).
//!
//! A series' correlation is ρ^|i−j| by position among its used rows (the frame is in series
//! order, `prepare::order_series`), and its inverse is tridiagonal:
//! (1 − ρ²)R⁻¹ = (1 + ρ²)I − ρ²(e₁e₁' + eₙeₙ') − ρ(S + S'). So every cross-product of the
//! likelihood is c₀·(the ordinary sum) + c₂·(the sum over the series' end rows) + c₁·(the
//! symmetrised sum over consecutive rows), and this module adds, beside the ordinary sums, the
//! end-row sums (a series of one row counts twice, so its R⁻¹ is 1) and the lag-1 sums of
//! [X y]'[X y], of each level's Z'Z and Z'[X y], and of the crossed blocks — valid when a series
//! stays within one level of every grouping factor, which is checked here (a consecutive pair
//! then shares every level). With residual classes (`residual by`, nlme's `varIdent`) R is
//! Λ^½CΛ^½, so R⁻¹'s entries carry 1/(σ_c σ_d) of the two rows' classes: the end-row sums are
//! kept per class and the lag-1 sums per unordered pair of the consecutive rows' classes (only
//! the pairs that occur), each a class of its own (`SeriesClass`) that the deviance weighs. A
//! chunk of rows looks back at the last used row before it, so pairs across chunk boundaries
//! count once, whatever the number of threads. It must not estimate anything.

use std::collections::HashMap;

use crate::data::Column;

use super::{add_lower_outer, category_key, Accumulator, CrossAccumulator, TermValues};
use crate::design::layout::DesignLayout;

/// A class of the AR(1) sums while the rows are read, by the residual classes' keys
/// (`DesignLayout::class_key`, the same in every chunk): the end rows of one class, or the
/// consecutive pairs of two classes (the smaller key first: the sums are symmetrised).
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash)]
pub(super) enum PassClass {
    End(u64),
    Lag(u64, u64),
}

/// A used row's values, kept for the pair it forms with the next one.
#[derive(Clone)]
struct RowValues {
    series: u64,
    /// The key of the row's residual class.
    class: u64,
    row: usize,
    x: Vec<f64>,
    z: Vec<Vec<f64>>,
    levels: Vec<u32>,
}

/// One chunk's AR(1) sums.
pub(crate) struct SeriesPass {
    column: usize,
    m: usize,
    /// The chunk's classes in order of first appearance, and their numbers.
    pub(super) classes: Vec<PassClass>,
    class_index: HashMap<PassClass, u32>,
    pub(super) factors: Vec<Accumulator>,
    pub(super) crosses: Vec<CrossAccumulator>,
    /// [X y]'[X y] per class (over its end rows, or its pairs symmetrised).
    pub(super) xy: Vec<Vec<f64>>,
    /// Series started in this chunk.
    pub(super) nseries: usize,
    /// (data-file row, term) of consecutive rows of one series in two levels of a term (the first few).
    pub(super) crossings: Vec<(usize, usize)>,
    previous: Option<RowValues>,
    current: Option<RowValues>,
}

impl SeriesPass {
    pub(super) fn new(column: usize, qs: &[usize], m: usize) -> Self {
        let factors = qs
            .iter()
            .map(|&q| Accumulator {
                q,
                index: Default::default(),
                last: None,
                blocks: Vec::new(),
            })
            .collect();
        let mut crosses = Vec::new();
        for a in 0..qs.len() {
            for b in a + 1..qs.len() {
                crosses.push(CrossAccumulator {
                    a,
                    b,
                    index: Default::default(),
                    last: None,
                    blocks: Vec::new(),
                });
            }
        }
        SeriesPass {
            column,
            m,
            classes: Vec::new(),
            class_index: HashMap::new(),
            factors,
            crosses,
            xy: Vec::new(),
            nseries: 0,
            crossings: Vec::new(),
            previous: None,
            current: None,
        }
    }

    /// Start a chunk at `start`: the last used row before it (if any) is the previous row.
    pub(super) fn look_back(&mut self, layout: &DesignLayout, start: usize) {
        let eq = &layout.equations[0];
        if let Some(row) = (0..start).rev().find(|&r| eq.complete(layout.frame, r)) {
            self.previous = Some(self.values(layout, row));
        }
    }

    /// End a chunk at `end`: when no used row follows in the frame, the last one ends its series.
    pub(super) fn look_ahead(&mut self, layout: &DesignLayout, end: usize) {
        let eq = &layout.equations[0];
        if !(end..layout.frame.nrows).any(|r| eq.complete(layout.frame, r)) {
            if let Some(last) = self.previous.take() {
                self.add_end(&last);
            }
        }
    }

    /// A used row's x and z values (as the ordinary pass computes them).
    fn values(&self, layout: &DesignLayout, row: usize) -> RowValues {
        let p = layout.p;
        let mut x = vec![0.0; p + 1];
        let offset = layout.fixed_row(0, row, &mut x);
        x[p] = super::column_value(layout.frame, layout.equations[0].outcome, row) - offset;
        let z = layout
            .effects
            .iter()
            .enumerate()
            .map(|(k, es)| {
                let mut z = vec![0.0; es.len()];
                layout.z_row(k, 0, row, &mut z);
                z
            })
            .collect();
        let levels = layout.groupings.iter().map(|g| g.codes[row]).collect();
        RowValues {
            series: category_key(&layout.frame.columns[self.column], row),
            class: layout.class_key(0, row).0,
            row: layout
                .frame
                .source_rows
                .get(row)
                .copied()
                .unwrap_or(row + 1),
            x,
            z,
            levels,
        }
    }

    /// Add a used row (its x and the terms' z rows and levels, as the ordinary pass has them).
    /// `(row, line, class)`: the row in the frame, its 1-based row in the data file (for
    /// messages) and the key of its residual class.
    pub(super) fn observe(
        &mut self,
        frame_column: &Column,
        (row, line, class): (usize, usize, u64),
        x: &[f64],
        terms: &TermValues,
    ) {
        let mut now = self.current.take().unwrap_or_else(|| RowValues {
            series: 0,
            class,
            row,
            x: Vec::new(),
            z: Vec::new(),
            levels: Vec::new(),
        });
        now.series = category_key(frame_column, row);
        now.class = class;
        now.row = line;
        now.x.clear();
        now.x.extend_from_slice(x);
        now.z.clone_from(&terms.z);
        now.levels.clone_from(&terms.levels);
        match self.previous.take() {
            Some(before) if before.series == now.series => {
                self.add_pair(&before, &now);
                self.current = Some(before);
            }
            before => {
                if let Some(before) = &before {
                    self.add_end(before);
                }
                self.add_end(&now);
                self.nseries += 1;
                self.current = before;
            }
        }
        self.previous = Some(now);
    }

    pub(super) fn column(&self) -> usize {
        self.column
    }

    /// The chunk's number of `class`, created (with empty [X y] sums) on first sight.
    fn class(&mut self, class: PassClass) -> u32 {
        if let Some(&c) = self.class_index.get(&class) {
            return c;
        }
        let c = self.classes.len() as u32;
        self.classes.push(class);
        self.class_index.insert(class, c);
        self.xy.push(vec![0.0; self.m * self.m]);
        c
    }

    /// An end row of a series: x x', and per term z z' and z x', in its class's end-row sums.
    fn add_end(&mut self, v: &RowValues) {
        let class = self.class(PassClass::End(v.class));
        add_lower_outer(&mut self.xy[class as usize], &v.x);
        for (k, acc) in self.factors.iter_mut().enumerate() {
            acc.add(v.levels[k], class, &v.z[k], &v.x);
        }
        for cr in &mut self.crosses {
            let key = (v.levels[cr.a], v.levels[cr.b], class);
            cr.add(key, &v.z[cr.a], &v.z[cr.b]);
        }
    }

    /// Consecutive rows i, j of one series: the symmetrised x_i x_j' + x_j x_i', and per term
    /// z_i z_j' + z_j z_i' and z_i x_j' + z_j x_i' (both rows are in the same level).
    fn add_pair(&mut self, i: &RowValues, j: &RowValues) {
        for k in 0..self.factors.len() {
            if i.levels[k] != j.levels[k] {
                if self.crossings.len() < 8 {
                    self.crossings.push((j.row, k));
                }
                return;
            }
        }
        let m = i.x.len();
        let class = self.class(PassClass::Lag(i.class.min(j.class), i.class.max(j.class)));
        let xy = &mut self.xy[class as usize];
        for b in 0..m {
            for a in b..m {
                xy[b * m + a] += i.x[a] * j.x[b] + j.x[a] * i.x[b];
            }
        }
        for (k, acc) in self.factors.iter_mut().enumerate() {
            acc.add_pair(i.levels[k], class, (&i.z[k], &i.x), (&j.z[k], &j.x));
        }
        for cr in &mut self.crosses {
            let key = (i.levels[cr.a], i.levels[cr.b], class);
            cr.add(key, &i.z[cr.a], &j.z[cr.b]);
            cr.add(key, &j.z[cr.a], &i.z[cr.b]);
        }
    }

    /// Add a later chunk's sums, its classes matched by key.
    pub(super) fn merge(&mut self, other: SeriesPass) {
        let class_map: Vec<u32> = other.classes.iter().map(|&c| self.class(c)).collect();
        for (mine, theirs) in self.factors.iter_mut().zip(other.factors) {
            mine.merge(theirs, &class_map);
        }
        for (mine, theirs) in self.crosses.iter_mut().zip(other.crosses) {
            mine.merge(theirs, &class_map);
        }
        for (&c, theirs) in class_map.iter().zip(other.xy) {
            for (a, b) in self.xy[c as usize].iter_mut().zip(theirs) {
                *a += b;
            }
        }
        self.nseries += other.nseries;
        for c in other.crossings {
            if self.crossings.len() < 8 {
                self.crossings.push(c);
            }
        }
    }
}

impl Accumulator {
    /// Add z_i z_j' + z_j z_i' (lower triangle) and z_i x_j' + z_j x_i' to `level`'s block.
    fn add_pair(
        &mut self,
        level: u32,
        class: u32,
        (zi, xi): (&[f64], &[f64]),
        (zj, xj): (&[f64], &[f64]),
    ) {
        let m = xi.len();
        let idx = self.block((level, class), m);
        let q = self.q;
        let (_, _, zz, zxy) = &mut self.blocks[idx];
        for b in 0..q {
            for a in b..q {
                zz[b * q + a] += zi[a] * zj[b] + zj[a] * zi[b];
            }
        }
        for b in 0..m {
            for a in 0..q {
                zxy[b * q + a] += zi[a] * xj[b] + zj[a] * xi[b];
            }
        }
    }
}
