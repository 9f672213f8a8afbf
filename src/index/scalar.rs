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
//! A **JSON path index** (an INVERTED index on a JSON field or dynamic key with
//! `json_path` and `json_cast_type` BOOL, DOUBLE or VARCHAR) is the same structure over
//! the values at the path. Invariant (X2): `order` lists exactly the rows whose document
//! holds, at the path's keys (each step an object member), a value of the cast's kind
//! (a boolean; a number, read as `expr` reads JSON numbers: `i64` when it is one, else
//! `f64`; a string), ascending as `Value::compare` orders them; for DOUBLE every listed
//! integer is within ±2^53, so integers and floats compare as the real numbers they are
//! and the order is total. Rows of other kinds, missing paths and null rows are not
//! listed: no comparison with a constant of the cast's kind holds for them, which is
//! what lets a lookup stand for the scan (`expr::batch`, B3).
//!
//! File layout (little-endian): `MVSX`, version u32, kind u8 (1: sorted rows of a flat
//! column; 2: sorted rows of a JSON path, followed by the cast u8: 1 BOOL, 2 DOUBLE, 3
//! VARCHAR), rows u32 (the column's length), count u32, then `count` row numbers u32.

use std::cmp::Ordering;

use super::IndexError;
use crate::proto::schema::{field_data, scalar_field::Data as D, FieldData};

const MAGIC: &[u8; 4] = b"MVSX";
const VERSION: u32 = 1;
const SORTED: u8 = 1;
const SORTED_JSON: u8 = 2;

/// The largest integer magnitude below which every integer is an `f64` (X2).
pub const EXACT_INT: i64 = 1 << 53;

/// The kind of value a JSON path index holds (`json_cast_type`).
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum JsonCast {
    Bool,
    Double,
    Varchar,
}

impl JsonCast {
    /// The cast a `json_cast_type` names (any case); None for the ARRAY_* casts, which
    /// are recorded but not built.
    pub fn parse(s: &str) -> Option<JsonCast> {
        match s.to_ascii_uppercase().as_str() {
            "BOOL" => Some(JsonCast::Bool),
            "DOUBLE" => Some(JsonCast::Double),
            "VARCHAR" => Some(JsonCast::Varchar),
            _ => None,
        }
    }

    fn code(self) -> u8 {
        match self {
            JsonCast::Bool => 1,
            JsonCast::Double => 2,
            JsonCast::Varchar => 3,
        }
    }
}

/// The object keys of a JSON Pointer (`/a/b~1c` -> `a`, `b/c`); empty for `""`.
pub fn pointer_keys(pointer: &str) -> Vec<String> {
    if pointer.is_empty() {
        return Vec::new();
    }
    pointer
        .trim_start_matches('/')
        .split('/')
        .map(|k| k.replace("~1", "/").replace("~0", "~"))
        .collect()
}

/// A JSON value at a path as an index of `cast` holds it (X2): None when the value is
/// not of the cast's kind.
#[derive(Debug, Clone, PartialEq)]
enum Key<'a> {
    Bool(bool),
    Int(i64),
    Float(f64),
    Str(&'a str),
}

impl Key<'_> {
    /// The order of `expr`'s `Value::compare` on keys of one cast (numbers: integers
    /// exactly with each other, else as `f64`), made total for integers beyond 2^53 by
    /// their exact value (an index holding those is refused by [`ScalarIndex::fits_json`]).
    fn cmp(&self, other: &Key<'_>) -> Ordering {
        let num = |k: &Key<'_>| match k {
            Key::Int(i) => Some(*i as f64),
            Key::Float(f) => Some(*f),
            _ => None,
        };
        match (self, other) {
            (Key::Bool(a), Key::Bool(b)) => a.cmp(b),
            (Key::Str(a), Key::Str(b)) => a.cmp(b),
            (Key::Int(a), Key::Int(b)) => a.cmp(b),
            _ => match (num(self), num(other)) {
                (Some(a), Some(b)) => {
                    a.partial_cmp(&b)
                        .unwrap_or(Ordering::Equal)
                        .then(match (self, other) {
                            (Key::Int(_), Key::Float(_)) => Ordering::Greater,
                            (Key::Float(_), Key::Int(_)) => Ordering::Less,
                            _ => Ordering::Equal,
                        })
                }
                _ => Ordering::Equal,
            },
        }
    }
}

/// The value of `doc` at `keys` when it is of `cast`'s kind.
fn json_key<'a>(doc: &'a serde_json::Value, keys: &[String], cast: JsonCast) -> Option<Key<'a>> {
    use serde_json::Value as J;
    let mut v = doc;
    for k in keys {
        v = v.as_object()?.get(k)?;
    }
    match (v, cast) {
        (J::Bool(b), JsonCast::Bool) => Some(Key::Bool(*b)),
        (J::String(s), JsonCast::Varchar) => Some(Key::Str(s)),
        (J::Number(n), JsonCast::Double) => Some(match n.as_i64() {
            Some(i) => Key::Int(i),
            None => Key::Float(n.as_f64()?),
        }),
        _ => None,
    }
}

/// One segment column's rows in value order (X1), or a JSON path's (X2).
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct ScalarIndex {
    rows: u32,
    order: Vec<u32>,
    /// A JSON path index's cast (None: a flat column's index).
    cast: Option<JsonCast>,
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
        Ok(ScalarIndex {
            rows,
            order,
            cast: None,
        })
    }

    /// Sorts the rows of a JSON column (documents as stored, one per row) by their
    /// values at `keys` of `cast`'s kind (X2); a document that does not parse is null.
    pub fn build_json(
        col: &FieldData,
        keys: &[String],
        cast: JsonCast,
    ) -> Result<ScalarIndex, IndexError> {
        let Some(field_data::Field::Scalars(s)) = &col.field else {
            return Err(IndexError::Shape(format!(
                "field {}: a JSON path index needs a JSON column",
                col.field_name
            )));
        };
        let Some(D::JsonData(d)) = &s.data else {
            return Err(IndexError::Shape(format!(
                "field {}: a JSON path index needs a JSON column",
                col.field_name
            )));
        };
        let docs: Vec<serde_json::Value> = d
            .data
            .iter()
            .map(|b| serde_json::from_slice(b).unwrap_or(serde_json::Value::Null))
            .collect();
        let valid = |i: usize| col.valid_data.get(i) != Some(&false);
        let mut keyed: Vec<(u32, Key<'_>)> = docs
            .iter()
            .enumerate()
            .filter(|(i, _)| valid(*i))
            .filter_map(|(i, doc)| Some((i as u32, json_key(doc, keys, cast)?)))
            .collect();
        keyed.sort_by(|a, b| a.1.cmp(&b.1));
        let rows = u32::try_from(docs.len())
            .map_err(|_| IndexError::Shape(format!("{} rows do not fit an index", docs.len())))?;
        Ok(ScalarIndex {
            rows,
            order: keyed.into_iter().map(|(r, _)| r).collect(),
            cast: Some(cast),
        })
    }

    /// A JSON path index's cast (None: a flat column's index).
    pub fn cast(&self) -> Option<JsonCast> {
        self.cast
    }

    /// Whether it is a JSON path index of `docs` (each row's document, parsed; null
    /// rows `valid` false) at `keys` (X2 holds), in O(rows).
    pub fn fits_json(
        &self,
        docs: &[serde_json::Value],
        valid: impl Fn(usize) -> bool,
        keys: &[String],
    ) -> bool {
        let Some(cast) = self.cast else {
            return false;
        };
        let key = |r: usize| valid(r).then(|| json_key(&docs[r], keys, cast)).flatten();
        let exact = |k: &Key<'_>| !matches!(k, Key::Int(i) if i.unsigned_abs() > EXACT_INT as u64);
        let mut listed = vec![false; docs.len()];
        let mut last: Option<Key<'_>> = None;
        for r in &self.order {
            let r = *r as usize;
            let Some(k) = (r < docs.len()).then(|| key(r)).flatten() else {
                return false;
            };
            if !exact(&k)
                || last
                    .as_ref()
                    .is_some_and(|l| l.cmp(&k) == Ordering::Greater)
            {
                return false;
            }
            listed[r] = true;
            last = Some(k);
        }
        docs.len() == self.rows as usize && (0..docs.len()).all(|r| listed[r] || key(r).is_none())
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
        if self.cast.is_some() {
            return false;
        }
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
        let mut out = Vec::with_capacity(18 + self.order.len() * 4);
        out.extend_from_slice(MAGIC);
        out.extend_from_slice(&VERSION.to_le_bytes());
        match self.cast {
            None => out.push(SORTED),
            Some(c) => out.extend_from_slice(&[SORTED_JSON, c.code()]),
        }
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
        let (cast, at) = match b.get(8) {
            Some(&SORTED) => (None, 9),
            Some(&SORTED_JSON) => {
                let cast = [JsonCast::Bool, JsonCast::Double, JsonCast::Varchar]
                    .into_iter()
                    .find(|c| b.get(9) == Some(&c.code()))
                    .ok_or_else(|| bad("unknown JSON cast"))?;
                (Some(cast), 10)
            }
            _ => return Err(bad("unknown kind")),
        };
        let rows = u32_at(at)?;
        let count = u32_at(at + 4)? as usize;
        if count > rows as usize || b.len() != at + 8 + count * 4 {
            return Err(bad("length does not match its header"));
        }
        let mut seen = vec![false; rows as usize];
        let mut order = Vec::with_capacity(count);
        for i in 0..count {
            let r = u32_at(at + 8 + i * 4)?;
            match seen.get_mut(r as usize) {
                Some(s) if !*s => *s = true,
                _ => return Err(bad(&format!("row {r} out of range or named twice"))),
            }
            order.push(r);
        }
        Ok(ScalarIndex { rows, order, cast })
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
