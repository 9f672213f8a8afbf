//! Evaluation of a compiled filter over one row of columns.

use std::borrow::Cow;
use std::cmp::Ordering;
use std::sync::Arc;

use super::compile::{Cmp, Expr, FieldRef, Func, Step};
use super::path::PathColumn;
use super::value::{self, Value};
use crate::geometry::GeoColumn;
use crate::index::rtree::RTreeIndex;
use crate::index::scalar::ScalarIndex;
use crate::proto::schema::{field_data, scalar_field, FieldData, ScalarField};

/// Columns a filter reads, by field ID.
pub trait Columns {
    /// The column of `field_id` (full length, one value per row).
    fn column(&self, field_id: i64) -> Option<&FieldData>;
    /// Row `row` of the JSON column `field_id`, parsed (None: null or not JSON).
    fn json(&self, field_id: i64, row: usize) -> Option<&serde_json::Value>;
    /// The text index of the column `field_id`, made with the analyzer the schema gives
    /// the field, when these columns keep one (None: `TEXT_MATCH` cuts the rows).
    fn text_index(&self, _field_id: i64) -> Option<&crate::analyzer::TextIndex> {
        None
    }
    /// The scalar index of the column `field_id` (`keys` empty), or of the path `keys`
    /// (object members) into the JSON column `field_id`, when these columns keep one
    /// that fits them: for a flat column exactly the rows with a comparable value (not
    /// null, not NaN), ascending by [`Value::compare`] (`index::scalar`'s invariant X1);
    /// for a JSON path the rows whose value there is of the index's cast (X2).
    fn sorted(&self, _field_id: i64, _keys: &[String]) -> Option<&ScalarIndex> {
        None
    }
    /// The values at `path` (possibly empty) of the JSON column `field_id` as flat
    /// columns by kind (P1), when these columns keep or make them (None: a test of the
    /// path reads each row's document).
    fn json_path(&self, _field_id: i64, _path: &[Step]) -> Option<Arc<PathColumn>> {
        None
    }
    /// The GEOMETRY column `field_id`'s values, parsed, when these columns keep them
    /// (None: a spatial test parses each row's text).
    fn geometries(&self, _field_id: i64) -> Option<&GeoColumn> {
        None
    }
    /// The RTREE index of the GEOMETRY column `field_id`, when these columns keep one
    /// that fits it (`index::rtree`'s R1).
    fn rtree(&self, _field_id: i64) -> Option<&RTreeIndex> {
        None
    }
}

/// Whether the expression is true for the row.
pub fn truth(e: &Expr, cols: &dyn Columns, row: usize) -> bool {
    eval(e, cols, row).truth()
}

pub(super) fn scalar_at(s: &ScalarField, row: usize) -> Value<'_> {
    use scalar_field::Data as D;
    match &s.data {
        Some(D::BoolData(d)) => d.data.get(row).map_or(Value::Null, |b| Value::Bool(*b)),
        Some(D::IntData(d)) => d
            .data
            .get(row)
            .map_or(Value::Null, |i| Value::Int(i64::from(*i))),
        Some(D::LongData(d)) => d.data.get(row).map_or(Value::Null, |i| Value::Int(*i)),
        Some(D::FloatData(d)) => d
            .data
            .get(row)
            .map_or(Value::Null, |f| Value::Float(f64::from(*f))),
        Some(D::DoubleData(d)) => d.data.get(row).map_or(Value::Null, |f| Value::Float(*f)),
        Some(D::StringData(d)) => d
            .data
            .get(row)
            .map_or(Value::Null, |s| Value::Str(Cow::Borrowed(s.as_str()))),
        Some(D::ArrayData(d)) => d.data.get(row).map_or(Value::Null, |a| {
            Value::List((0..scalar_len(a)).map(|i| scalar_at(a, i)).collect())
        }),
        Some(D::GeometryWktData(d)) => d
            .data
            .get(row)
            .map_or(Value::Null, |s| Value::Str(Cow::Borrowed(s.as_str()))),
        _ => Value::Null,
    }
}

fn scalar_len(s: &ScalarField) -> usize {
    use scalar_field::Data as D;
    match &s.data {
        Some(D::BoolData(d)) => d.data.len(),
        Some(D::IntData(d)) => d.data.len(),
        Some(D::LongData(d)) => d.data.len(),
        Some(D::FloatData(d)) => d.data.len(),
        Some(D::DoubleData(d)) => d.data.len(),
        Some(D::StringData(d)) => d.data.len(),
        Some(D::BytesData(d)) => d.data.len(),
        Some(D::ArrayData(d)) => d.data.len(),
        Some(D::JsonData(d)) => d.data.len(),
        Some(D::GeometryData(d)) => d.data.len(),
        Some(D::GeometryWktData(d)) => d.data.len(),
        None => 0,
    }
}

fn step<'a>(v: Value<'a>, s: &Step) -> Value<'a> {
    match (v, s) {
        (Value::Object(o), Step::Key(k)) => o.get(k).map_or(Value::Null, Value::from_json),
        (Value::List(mut l), Step::Index(i)) => {
            let i = *i;
            if i >= 0 && (i as usize) < l.len() {
                l.swap_remove(i as usize)
            } else {
                Value::Null
            }
        }
        _ => Value::Null,
    }
}

/// The value of `f` (a field, or a path into a JSON field) in row `row`.
pub(super) fn field<'a>(f: &FieldRef, cols: &'a dyn Columns, row: usize) -> Value<'a> {
    let Some(col) = cols.column(f.id) else {
        return Value::Null;
    };
    if col.valid_data.get(row) == Some(&false) {
        return Value::Null;
    }
    let mut v = match &col.field {
        Some(field_data::Field::Scalars(s)) => match &s.data {
            Some(scalar_field::Data::JsonData(_)) => {
                cols.json(f.id, row).map_or(Value::Null, Value::from_json)
            }
            _ => scalar_at(s, row),
        },
        _ => Value::Null,
    };
    for s in &f.path {
        v = step(v, s);
    }
    v
}

fn eval<'a>(e: &'a Expr, cols: &'a dyn Columns, row: usize) -> Value<'a> {
    match e {
        Expr::Const(v) => v.clone(),
        Expr::Field(f) => field(f, cols, row),
        Expr::Not(x) => match eval(x, cols, row) {
            Value::Bool(b) => Value::Bool(!b),
            _ => Value::Bool(false),
        },
        Expr::And(xs) => Value::Bool(xs.iter().all(|x| truth(x, cols, row))),
        Expr::Or(xs) => Value::Bool(xs.iter().any(|x| truth(x, cols, row))),
        Expr::Cmp(op, a, b) => {
            let (a, b) = (eval(a, cols, row), eval(b, cols, row));
            let Some(o) = a.compare(&b) else {
                return Value::Bool(false);
            };
            Value::Bool(match op {
                Cmp::Eq => o == Ordering::Equal,
                Cmp::Ne => o != Ordering::Equal,
                Cmp::Lt => o == Ordering::Less,
                Cmp::Le => o != Ordering::Greater,
                Cmp::Gt => o == Ordering::Greater,
                Cmp::Ge => o != Ordering::Less,
            })
        }
        Expr::Arith(op, a, b) => value::arith(*op, &eval(a, cols, row), &eval(b, cols, row)),
        Expr::Neg(x) => match eval(x, cols, row) {
            Value::Int(i) => Value::Int(i.wrapping_neg()),
            Value::Float(f) => Value::Float(-f),
            _ => Value::Null,
        },
        Expr::In(x, set, negated) => match eval(x, cols, row) {
            Value::Null => Value::Bool(false),
            v => Value::Bool(set.contains(&v) != *negated),
        },
        Expr::Like(x, pattern) => match eval(x, cols, row) {
            Value::Str(s) => Value::Bool(value::like(&s, pattern)),
            _ => Value::Bool(false),
        },
        Expr::IsNull(x, negated) => {
            let null = eval(x, cols, row) == Value::Null;
            Value::Bool(null != *negated)
        }
        Expr::Exists(f) => Value::Bool(field(f, cols, row) != Value::Null),
        Expr::Call(func, args) => call(*func, args, cols, row),
        // A null row matches nothing, as in Milvus.
        Expr::TextMatch(f, q) => Value::Bool(match field(f, cols, row) {
            Value::Str(s) => q.matches(&mut q.analyzer.clone(), &s),
            _ => false,
        }),
        // A null row matches nothing.
        Expr::Spatial(f, op, q, meters) => Value::Bool(match cols.geometries(f.id) {
            Some(shapes) => shapes.get(row).is_some_and(|s| op.holds(s, q, *meters)),
            None => match field(f, cols, row) {
                Value::Str(text) => {
                    crate::geometry::shape(&text).is_some_and(|s| op.holds(&s, q, *meters))
                }
                _ => false,
            },
        }),
    }
}

fn call<'a>(func: Func, args: &'a [Expr], cols: &'a dyn Columns, row: usize) -> Value<'a> {
    let target = eval(&args[0], cols, row);
    let Value::List(items) = target else {
        return match func {
            Func::ArrayLength => Value::Null,
            _ => Value::Bool(false),
        };
    };
    if func == Func::ArrayLength {
        return Value::Int(items.len() as i64);
    }
    let arg = eval(&args[1], cols, row);
    let has = |v: &Value<'_>| items.iter().any(|i| i.equals(v));
    Value::Bool(match (func, &arg) {
        (Func::JsonContains | Func::ArrayContains, v) => has(v),
        (Func::JsonContainsAll | Func::ArrayContainsAll, Value::List(want)) => want.iter().all(has),
        (Func::JsonContainsAny | Func::ArrayContainsAny, Value::List(want)) => want.iter().any(has),
        _ => false,
    })
}
