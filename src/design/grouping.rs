//! Grouping factors: the level of every row for one random term (the distinct combinations of the
//! term's grouping columns, numbered in order of first appearance).
//!
//! Owns mapping rows to group levels and naming the levels. It must not accumulate statistics.

use std::collections::HashMap;

use crate::data::{Column, MISSING_CODE};
use crate::diagnostics::Diagnostic;
use crate::model::RandomTermSpec;
use crate::prepare::AnalysisFrame;

/// Level code of a row with a missing grouping value.
pub const NO_LEVEL: u32 = u32::MAX;

#[derive(Debug, Clone)]
pub struct Grouping {
    /// Per frame row: the level, or `NO_LEVEL`.
    pub codes: Vec<u32>,
    /// Per level: the grouping columns' values as text.
    names: Vec<String>,
}

/// The levels of one grouping numbered so far, by their key (the grouping columns' values,
/// text by code): continued piece by piece when a file is read out of core, so that levels are
/// numbered in order of first appearance in the whole file.
#[derive(Debug, Clone, Default)]
pub struct LevelIndex {
    index: HashMap<Vec<u64>, u32>,
    names: Vec<String>,
}

impl LevelIndex {
    pub fn nlevels(&self) -> usize {
        self.names.len()
    }

    pub fn names(&self) -> &[String] {
        &self.names
    }

    /// Number `other`'s levels (a later piece's, numbered on their own) after these, in
    /// `other`'s order: the index of each of `other`'s levels here.
    pub fn continue_with(&mut self, other: &LevelIndex) -> Vec<u32> {
        let mut theirs: Vec<(&Vec<u64>, u32)> = other.index.iter().map(|(k, &i)| (k, i)).collect();
        theirs.sort_by_key(|&(_, i)| i);
        theirs
            .into_iter()
            .map(|(key, i)| {
                *self.index.entry(key.clone()).or_insert_with(|| {
                    self.names.push(other.names[i as usize].clone());
                    (self.names.len() - 1) as u32
                })
            })
            .collect()
    }
}

impl Grouping {
    pub fn new(term: &RandomTermSpec, frame: &AnalysisFrame) -> Result<Self, Box<Diagnostic>> {
        let mut levels = LevelIndex::default();
        let mut grouping = Grouping::continued(term, frame, &mut levels)?;
        grouping.names = levels.names;
        Ok(grouping)
    }

    /// The rows' levels, numbering new ones after those in `levels` (the pieces before this
    /// one). Text columns must be coded alike in every piece. The grouping's own `names` are
    /// left empty: they are `levels`'.
    pub fn continued(
        term: &RandomTermSpec,
        frame: &AnalysisFrame,
        levels: &mut LevelIndex,
    ) -> Result<Self, Box<Diagnostic>> {
        let LevelIndex { index, names } = levels;
        let mut cols = Vec::new();
        for g in &term.grouping {
            match frame.column(g) {
                Some(c) => cols.push(c),
                None => {
                    return Err(Box::new(Diagnostic::at(
                        format!("no grouping column `{g}` in the analysis frame"),
                        term.span,
                    )))
                }
            }
        }
        let mut codes = Vec::with_capacity(frame.nrows);
        let mut key = Vec::with_capacity(cols.len());
        // Rows of one group are usually adjacent: reuse the previous row's answer.
        let mut last: Option<(Vec<u64>, u32)> = None;
        for row in 0..frame.nrows {
            key.clear();
            let mut missing = false;
            for c in &cols {
                match c {
                    Column::Numeric(v) => {
                        missing |= v[row].is_nan();
                        key.push(v[row].to_bits());
                    }
                    Column::Text { codes, .. } => {
                        missing |= codes[row] == MISSING_CODE;
                        key.push(u64::from(codes[row]));
                    }
                }
            }
            if missing {
                codes.push(NO_LEVEL);
                continue;
            }
            if let Some((k, level)) = &last {
                if *k == key {
                    codes.push(*level);
                    continue;
                }
            }
            let level = *index.entry(key.clone()).or_insert_with(|| {
                names.push(level_name(&cols, &key));
                (names.len() - 1) as u32
            });
            last = Some((key.clone(), level));
            codes.push(level);
        }
        Ok(Grouping {
            codes,
            names: Vec::new(),
        })
    }

    pub fn nlevels(&self) -> usize {
        self.names.len()
    }

    pub fn level_names(&self) -> Vec<String> {
        self.names.clone()
    }
}

fn level_name(cols: &[&Column], key: &[u64]) -> String {
    cols.iter()
        .zip(key)
        .map(|(c, &k)| match c {
            Column::Numeric(_) => {
                let v = f64::from_bits(k);
                if v.fract() == 0.0 && v.abs() < 1e15 {
                    format!("{}", v as i64)
                } else {
                    format!("{v}")
                }
            }
            Column::Text { levels, .. } => levels[k as usize].clone(),
        })
        .collect::<Vec<_>>()
        .join(":")
}
