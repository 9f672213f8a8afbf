//! The values at one path of a JSON column (`doc['a']['b']`, `$meta` keys), extracted
//! from the parsed documents once and kept as flat columns by kind, so that a filter on
//! the path runs as column scans (`batch`) instead of a walk of every row's document.
//!
//! Invariant (P1): every row is in exactly one of these places: valid in exactly one
//! of the parts, whose value there is the one the row evaluator reads at the path
//! (`eval::field`: a JSON integer that fits `i64` in the `Int64` part, any other
//! number in the `Double` part, strings, booleans); listed in [`PathColumn::other`]
//! (its value there is an array or an object, left to the row evaluator); or in
//! neither (the row is null, the path is missing or holds JSON `null`: the row
//! evaluator reads `Null`, which no test but `is null` matches).

use super::compile::Step;
use crate::proto::schema::{
    field_data, scalar_field::Data as D, BoolArray, DoubleArray, FieldData, LongArray, ScalarField,
    StringArray,
};

/// One path's values by kind (P1).
#[derive(Debug, Clone, Default)]
pub struct PathColumn {
    /// One flat column per kind present, each as long as the documents, valid exactly
    /// at the rows holding a value of that kind.
    parts: Vec<FieldData>,
    /// The rows whose value is an array or an object, ascending.
    other: Vec<u32>,
    rows: usize,
}

/// A part while it is filled: values and validity, made full length when the first
/// value of its kind appears.
struct Part<T> {
    data: Vec<T>,
    valid: Vec<bool>,
}

fn set<T: Default + Clone>(part: &mut Option<Part<T>>, rows: usize, row: usize, v: T) {
    let p = part.get_or_insert_with(|| Part {
        data: vec![T::default(); rows],
        valid: vec![false; rows],
    });
    p.data[row] = v;
    p.valid[row] = true;
}

fn column<T>(part: Option<Part<T>>, data: impl FnOnce(Vec<T>) -> D) -> Option<FieldData> {
    part.map(|p| FieldData {
        field: Some(field_data::Field::Scalars(ScalarField {
            data: Some(data(p.data)),
        })),
        valid_data: p.valid,
        ..Default::default()
    })
}

/// The value at `path` in `doc`, as the row evaluator steps into it: a key of an
/// object, a position of an array; anything else is missing.
fn at<'a>(doc: &'a serde_json::Value, path: &[Step]) -> Option<&'a serde_json::Value> {
    path.iter().try_fold(doc, |v, s| match s {
        Step::Key(k) => v.as_object()?.get(k),
        Step::Index(i) => v.as_array()?.get(usize::try_from(*i).ok()?),
    })
}

impl PathColumn {
    /// The values at `path` in `docs` (one parsed document per row; a row whose
    /// `valid` is false is null).
    pub fn of(docs: &[serde_json::Value], valid: &[bool], path: &[Step]) -> PathColumn {
        use serde_json::Value as J;
        let rows = docs.len();
        let (mut ints, mut floats, mut strs, mut bools) = (None, None, None, None);
        let mut other = Vec::new();
        for (row, doc) in docs.iter().enumerate() {
            if valid.get(row) == Some(&false) {
                continue;
            }
            match at(doc, path) {
                None | Some(J::Null) => {}
                Some(J::Bool(b)) => set(&mut bools, rows, row, *b),
                Some(J::Number(x)) => match x.as_i64() {
                    Some(i) => set(&mut ints, rows, row, i),
                    None => set(&mut floats, rows, row, x.as_f64().unwrap_or(f64::NAN)),
                },
                Some(J::String(s)) => set(&mut strs, rows, row, s.clone()),
                Some(J::Array(_) | J::Object(_)) => other.push(row as u32),
            }
        }
        let parts = [
            column(ints, |data| D::LongData(LongArray { data })),
            column(floats, |data| D::DoubleData(DoubleArray { data })),
            column(strs, |data| D::StringData(StringArray { data })),
            column(bools, |data| D::BoolData(BoolArray { data })),
        ]
        .into_iter()
        .flatten()
        .collect();
        PathColumn { parts, other, rows }
    }

    /// The flat column of each kind present.
    pub(super) fn parts(&self) -> &[FieldData] {
        &self.parts
    }

    /// The rows whose value is an array or an object.
    pub(super) fn other(&self) -> &[u32] {
        &self.other
    }

    /// Which of rows `0..n` have a value at the path (not null, not missing).
    pub(super) fn present(&self, n: usize) -> Vec<bool> {
        let mut m = vec![false; n];
        for p in &self.parts {
            m.iter_mut()
                .zip(&p.valid_data)
                .for_each(|(b, valid)| *b |= *valid);
        }
        self.other
            .iter()
            .filter(|r| (**r as usize) < n)
            .for_each(|r| m[*r as usize] = true);
        m
    }

    /// Bytes held.
    pub fn memory_usage(&self) -> usize {
        let parts: usize = self
            .parts
            .iter()
            .map(|p| match &p.field {
                Some(field_data::Field::Scalars(ScalarField {
                    data: Some(D::StringData(s)),
                })) => s.data.iter().map(|x| x.capacity() + 25).sum(),
                Some(field_data::Field::Scalars(ScalarField {
                    data: Some(D::BoolData(_)),
                })) => self.rows * 2,
                _ => self.rows * 9,
            })
            .sum();
        parts + self.other.len() * 4
    }
}
