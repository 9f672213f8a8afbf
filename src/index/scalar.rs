//! Scalar indexes (INVERTED, STL_SORT, Trie, BITMAP, AUTOINDEX on a scalar field) over
//! one segment's column: the rows in value order, which answers equality, ranges, `in`
//! lists and `like` prefixes by binary search instead of a scan.
//!
//! The four index types Milvus names differ in how they lay the same answer out (an
//! inverted list per term, a sorted array, a trie, a bitmap per value); here each is the
//! one structure, a sorted row permutation, which answers every one of their lookups
//! (a Trie's prefix walk is a range of the sorted strings, a bitmap's value lookup an
//! equal range). Which lookups the filter evaluator takes from it is in `expr`.
//!
//! Invariant (X1): `order` lists exactly the rows of the column whose value is set and
//! comparable (not null, not NaN), each once, ascending by value (`i64` for integer
//! columns, `f64`'s order for floats, byte order for strings, `false < true`), rows of
//! equal values in row order. That is the order of `expr`'s `Value::compare` on those
//! values, so a binary search with it finds what a scan with it finds.
//!
//! File layout (little-endian): `MVSX`, version u32, kind u8 (1: sorted rows), rows u32
//! (the column's length), count u32, then `count` row numbers u32.

use std::cmp::Ordering;

use super::IndexError;
use crate::proto::schema::{field_data, scalar_field::Data as D, FieldData};

const MAGIC: &[u8; 4] = b"MVSX";
const VERSION: u32 = 1;
const SORTED: u8 = 1;

/// One segment column's rows in value order (X1).
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct ScalarIndex {
    rows: u32,
    order: Vec<u32>,
}

impl ScalarIndex {
    /// Sorts the rows of a flat scalar column (booleans, integers, floats, strings);
    /// refuses any other column.
    pub fn build(col: &FieldData) -> Result<ScalarIndex, IndexError> {
        let Some(field_data::Field::Scalars(s)) = &col.field else {
            return Err(IndexError::Shape(format!(
                "field {}: a scalar index needs a scalar column",
                col.field_name
            )));
        };
        let valid = |i: usize| col.valid_data.get(i) != Some(&false);
        let (rows, order) = match &s.data {
            Some(D::BoolData(d)) => (d.data.len(), sorted(&d.data, valid, |a, b| a.cmp(b))),
            Some(D::IntData(d)) => (d.data.len(), sorted(&d.data, valid, |a, b| a.cmp(b))),
            Some(D::LongData(d)) => (d.data.len(), sorted(&d.data, valid, |a, b| a.cmp(b))),
            Some(D::FloatData(d)) => (d.data.len(), sorted_floats(&d.data, valid)),
            Some(D::DoubleData(d)) => (d.data.len(), sorted_floats(&d.data, valid)),
            Some(D::StringData(d)) => (d.data.len(), sorted(&d.data, valid, |a, b| a.cmp(b))),
            _ => {
                return Err(IndexError::Shape(format!(
                    "field {}: scalar indexes are built over booleans, numbers and strings",
                    col.field_name
                )))
            }
        };
        let rows = u32::try_from(rows)
            .map_err(|_| IndexError::Shape(format!("{rows} rows do not fit an index")))?;
        Ok(ScalarIndex { rows, order })
    }

    /// The column's length when it was built.
    pub fn rows(&self) -> usize {
        self.rows as usize
    }

    /// The rows with a comparable value, in value order (X1).
    pub fn order(&self) -> &[u32] {
        &self.order
    }

    /// Whether it is an index of `col` (X1 holds: the same length, every row with a
    /// comparable value listed, ascending): what a reader checks before trusting a file
    /// built elsewhere, in O(rows).
    pub fn fits(&self, col: &FieldData) -> bool {
        let Some(field_data::Field::Scalars(s)) = &col.field else {
            return false;
        };
        let valid = |i: usize| col.valid_data.get(i) != Some(&false);
        match &s.data {
            Some(D::BoolData(d)) => self.lists(&d.data, valid, |a, b| a.partial_cmp(b)),
            Some(D::IntData(d)) => self.lists(&d.data, valid, |a, b| a.partial_cmp(b)),
            Some(D::LongData(d)) => self.lists(&d.data, valid, |a, b| a.partial_cmp(b)),
            Some(D::FloatData(d)) => self.lists(&d.data, valid, |a, b| a.partial_cmp(b)),
            Some(D::DoubleData(d)) => self.lists(&d.data, valid, |a, b| a.partial_cmp(b)),
            Some(D::StringData(d)) => self.lists(&d.data, valid, |a, b| a.partial_cmp(b)),
            _ => false,
        }
    }

    /// X1 for `xs`: as many listed rows as comparable ones, each comparable (rows are
    /// distinct by construction: `from_bytes` and `build`), ascending.
    fn lists<T>(
        &self,
        xs: &[T],
        valid: impl Fn(usize) -> bool,
        cmp: impl Fn(&T, &T) -> Option<Ordering>,
    ) -> bool {
        let comparable = |r: usize| valid(r) && cmp(&xs[r], &xs[r]).is_some();
        xs.len() == self.rows as usize
            && (0..xs.len()).filter(|r| comparable(*r)).count() == self.order.len()
            && self.order.iter().all(|r| comparable(*r as usize))
            && self.order.windows(2).all(|w| {
                cmp(&xs[w[0] as usize], &xs[w[1] as usize]).is_some_and(|o| o != Ordering::Greater)
            })
    }

    /// Bytes held.
    pub fn memory_usage(&self) -> usize {
        self.order.capacity() * 4
    }

    /// The index file.
    pub fn to_bytes(&self) -> Vec<u8> {
        let mut out = Vec::with_capacity(17 + self.order.len() * 4);
        out.extend_from_slice(MAGIC);
        out.extend_from_slice(&VERSION.to_le_bytes());
        out.push(SORTED);
        out.extend_from_slice(&self.rows.to_le_bytes());
        out.extend_from_slice(&(self.order.len() as u32).to_le_bytes());
        for r in &self.order {
            out.extend_from_slice(&r.to_le_bytes());
        }
        out
    }

    /// Reads a file written by [`Self::to_bytes`]; every row named must be below the
    /// column length and named once.
    pub fn from_bytes(b: &[u8]) -> Result<ScalarIndex, IndexError> {
        let bad = |why: &str| IndexError::Format(format!("scalar index file: {why}"));
        let u32_at = |at: usize| -> Result<u32, IndexError> {
            b.get(at..at + 4)
                .map(|s| u32::from_le_bytes(s.try_into().expect("4 bytes")))
                .ok_or_else(|| bad("truncated"))
        };
        if b.get(..4) != Some(MAGIC.as_slice()) {
            return Err(bad("bad magic"));
        }
        let version = u32_at(4)?;
        if version != VERSION {
            return Err(bad(&format!("version {version}")));
        }
        if b.get(8) != Some(&SORTED) {
            return Err(bad("unknown kind"));
        }
        let rows = u32_at(9)?;
        let count = u32_at(13)? as usize;
        if count > rows as usize || b.len() != 17 + count * 4 {
            return Err(bad("length does not match its header"));
        }
        let mut seen = vec![false; rows as usize];
        let mut order = Vec::with_capacity(count);
        for i in 0..count {
            let r = u32_at(17 + i * 4)?;
            match seen.get_mut(r as usize) {
                Some(s) if !*s => *s = true,
                _ => return Err(bad(&format!("row {r} out of range or named twice"))),
            }
            order.push(r);
        }
        Ok(ScalarIndex { rows, order })
    }
}

/// The valid rows of `xs` sorted by `cmp` (stable: equal values in row order).
fn sorted<T>(
    xs: &[T],
    valid: impl Fn(usize) -> bool,
    cmp: impl Fn(&T, &T) -> Ordering,
) -> Vec<u32> {
    let mut order: Vec<u32> = (0..xs.len() as u32)
        .filter(|r| valid(*r as usize))
        .collect();
    order.sort_by(|a, b| cmp(&xs[*a as usize], &xs[*b as usize]));
    order
}

/// As [`sorted`] by `partial_cmp`, NaN left out (it compares with nothing, so no lookup
/// may find it); -0.0 and 0.0 compare equal and stay in row order.
fn sorted_floats<T: Copy + PartialOrd>(xs: &[T], valid: impl Fn(usize) -> bool) -> Vec<u32> {
    let mut order: Vec<u32> = (0..xs.len() as u32)
        .filter(|r| valid(*r as usize) && xs[*r as usize].partial_cmp(&xs[*r as usize]).is_some())
        .collect();
    order.sort_by(|a, b| {
        xs[*a as usize]
            .partial_cmp(&xs[*b as usize])
            .unwrap_or(Ordering::Equal)
    });
    order
}
