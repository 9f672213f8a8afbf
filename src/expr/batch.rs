//! Evaluation of a compiled filter over every row of a set of columns at once.
//!
//! Comparisons with a constant, `in` lists, `like` patterns, null tests and boolean
//! columns on a plain scalar field run as one tight loop over the column's values (no
//! per-row tree walk, no per-row column lookup, no [`Value`] built); `and`/`or`/`not`
//! combine the masks of their parts. The same tests of a JSON path run over the path's
//! values as flat columns by kind ([`PathColumn`], when the columns keep one), each
//! kind's column scanned as above, the rows holding arrays or objects by the row
//! evaluator. Anything else (arithmetic, array functions, comparisons of two fields)
//! falls back to the row evaluator for that sub-expression only.
//!
//! Invariant (B1): for every row, `select(e, cols, n)[row] == eval::truth(e, cols, row)`.
//! Each fast path mirrors [`Value::compare`]'s rules: a null or a value of another kind
//! matches nothing (not even `!=`), integers against a float constant compare as `f64`,
//! NaN compares with nothing. On a JSON path B1 holds as every row's value there is in
//! exactly one kind's column, with the value the row evaluator reads, or is an array or
//! an object (read by the row evaluator), or is null, which every test the columns take
//! is false for (P1; `is null` and `exists` read which rows have a value). The
//! differential test in `tests.rs` checks B1 on random columns and random filters.

use std::cmp::Ordering;
use std::collections::HashMap;

use super::compile::{self, Cmp, ConstSet, Expr, FieldRef};
use super::eval::{self, Columns};
use super::path::PathColumn;
use super::value::{self, LikeToken, Value};
use crate::index::scalar::{JsonCast, EXACT_INT};
use crate::proto::schema::{field_data, scalar_field::Data as D, FieldData};

/// The largest share of a column's rows an index lookup may select and still be taken:
/// marking more rows one by one in scattered places costs more than a scan of the
/// column's values.
pub const INDEX_SHARE: f64 = 0.25;

/// Which of rows `0..n` of `cols` `e` is true for. Comparisons, `in` lists and exact or
/// prefix `like` patterns on a column with a scalar index ([`Columns::sorted`]) are
/// answered from it by binary search when they select at most `share` of the rows.
pub fn select(e: &Expr, cols: &dyn Columns, n: usize, share: f64) -> Vec<bool> {
    let select = |e: &Expr, cols: &dyn Columns, n: usize| select(e, cols, n, share);
    match e {
        Expr::Const(v) => vec![v.truth(); n],
        Expr::And(xs) => {
            let (mut out, used) = match index_range(xs, cols, n, share) {
                Some((rows, used)) => (mask_of(&rows, n), used),
                None => (vec![true; n], Vec::new()),
            };
            for x in xs
                .iter()
                .enumerate()
                .filter(|(i, _)| !used.contains(i))
                .map(|(_, x)| x)
            {
                let m = select(x, cols, n);
                out.iter_mut().zip(&m).for_each(|(o, b)| *o &= *b);
                if !out.contains(&true) {
                    break;
                }
            }
            out
        }
        Expr::Or(xs) => {
            let mut out = vec![false; n];
            for x in xs {
                let m = select(x, cols, n);
                out.iter_mut().zip(&m).for_each(|(o, b)| *o |= *b);
                if !out.contains(&false) {
                    break;
                }
            }
            out
        }
        Expr::Not(x) if always_bool(x) => {
            let mut m = select(x, cols, n);
            m.iter_mut().for_each(|b| *b = !*b);
            m
        }
        Expr::Field(f) => {
            let flags = |col: &FieldData, n| match scalars(col) {
                Some(D::BoolData(d)) => Some(fit(d.data.clone(), col, n)),
                _ => None,
            };
            plain(f, cols)
                .and_then(|col| flags(col, n))
                .or_else(|| {
                    on_path(f, e, cols, n, |col| {
                        Some(flags(col, n).unwrap_or_else(|| vec![false; n]))
                    })
                })
                .unwrap_or_else(|| rows(e, cols, n))
        }
        Expr::Cmp(op, a, b) => field_cmp(*op, a, b)
            .and_then(|(f, op, c)| {
                indexed(f, cols, n, share, |p| cmp_hits(p, op, c))
                    .or_else(|| compare(plain(f, cols)?, op, c, n))
                    .or_else(|| on_path(f, e, cols, n, |col| compare(col, op, c, n)))
            })
            .unwrap_or_else(|| rows(e, cols, n)),
        Expr::In(x, set, negated) => match x.as_ref() {
            Expr::Field(f) => indexed(f, cols, n, share, |p| in_hits(p, set, *negated))
                .or_else(|| member(plain(f, cols)?, set, *negated, n))
                .or_else(|| on_path(f, e, cols, n, |col| member(col, set, *negated, n)))
                .unwrap_or_else(|| rows(e, cols, n)),
            _ => rows(e, cols, n),
        },
        Expr::Like(x, pattern) => match x.as_ref() {
            Expr::Field(f) => indexed(f, cols, n, share, |p| like_hits(p, pattern))
                .or_else(|| like(plain(f, cols)?, pattern, n))
                .or_else(|| on_path(f, e, cols, n, |col| like(col, pattern, n)))
                .unwrap_or_else(|| rows(e, cols, n)),
            _ => rows(e, cols, n),
        },
        Expr::TextMatch(f, q) => text_match(f, q, cols, n).unwrap_or_else(|| rows(e, cols, n)),
        Expr::Spatial(f, op, q, meters) => {
            spatial(f, *op, q, *meters, cols, n).unwrap_or_else(|| rows(e, cols, n))
        }
        Expr::IsNull(x, negated) => match x.as_ref() {
            Expr::Field(f) => plain(f, cols)
                .and_then(|col| {
                    let len = flat_len(col)?;
                    let valid = &col.valid_data;
                    Some(
                        (0..n)
                            .map(|i| (i >= len || valid.get(i) == Some(&false)) != *negated)
                            .collect(),
                    )
                })
                .or_else(|| {
                    let values = cols.json_path(f.id, &f.path)?;
                    let mut m = values.present(n);
                    m.iter_mut().for_each(|b| *b ^= !*negated);
                    Some(m)
                })
                .unwrap_or_else(|| rows(e, cols, n)),
            _ => rows(e, cols, n),
        },
        Expr::Exists(f) => cols
            .json_path(f.id, &f.path)
            .map(|values| values.present(n))
            .unwrap_or_else(|| rows(e, cols, n)),
        _ => rows(e, cols, n),
    }
}

/// `e`, a test of the JSON path `f` alone, over the path's values by kind when the
/// columns keep them: `test` (the flat column's scan) on each kind's column, or-ed, and
/// the row evaluator on the rows holding an array or an object. None when there are no
/// such columns or `test` cannot take one of them (its constant is of a kind the scans
/// do not compare).
fn on_path(
    f: &FieldRef,
    e: &Expr,
    cols: &dyn Columns,
    n: usize,
    test: impl Fn(&FieldData) -> Option<Vec<bool>>,
) -> Option<Vec<bool>> {
    let values: std::sync::Arc<PathColumn> = cols.json_path(f.id, &f.path)?;
    let mut m = vec![false; n];
    for part in values.parts() {
        let hits = test(part)?;
        m.iter_mut().zip(&hits).for_each(|(o, b)| *o |= *b);
    }
    for r in values
        .other()
        .iter()
        .map(|r| *r as usize)
        .filter(|r| *r < n)
    {
        m[r] = eval::truth(e, cols, r);
    }
    Some(m)
}

/// Whether `e` always evaluates to a boolean (so `not e` is its negation row by row):
/// what the compiler knows to be boolean, but a Bool field itself, which is null in a
/// null row.
fn always_bool(e: &Expr) -> bool {
    compile::is_boolean(e) && !matches!(e, Expr::Field(_))
}

/// `TEXT_MATCH` or `PHRASE_MATCH` over a flat VARCHAR column: from the columns' text
/// index when they keep one (for a phrase, the rows with all its tokens, each then cut
/// and checked), else each row cut by one clone of the query's analyzer.
fn text_match(
    f: &FieldRef,
    q: &compile::TextQuery,
    cols: &dyn Columns,
    n: usize,
) -> Option<Vec<bool>> {
    let col = plain(f, cols)?;
    let index = cols.text_index(f.id);
    if let (Some(ix), None) = (index, &q.phrase) {
        return Some(fit(ix.any_of(&q.tokens), col, n));
    }
    let D::StringData(d) = scalars(col)? else {
        return None;
    };
    let mut analyzer = q.analyzer.clone();
    let m = match index {
        Some(ix) => {
            let mut m = vec![false; d.data.len()];
            for row in ix.all_of(&q.tokens) {
                if let Some(text) = d.data.get(row as usize) {
                    m[row as usize] = q.matches(&mut analyzer, text);
                }
            }
            m
        }
        None => d.data.iter().map(|s| q.matches(&mut analyzer, s)).collect(),
    };
    Some(fit(m, col, n))
}

/// What an index lookup selects: the rows at `ranges` of positions in the value order,
/// or (`complement`) every row of the order but those.
struct Hits {
    ranges: Vec<std::ops::Range<usize>>,
    complement: bool,
}

/// The kind of values a scalar index orders.
#[derive(Debug, Clone, Copy, PartialEq)]
enum Kind {
    Bool,
    /// An integer column.
    Int,
    /// A float column.
    Float,
    Str,
    /// A JSON path's numbers (integers within ±2^53 and floats, X2).
    Number,
}

/// A field's scalar index as lookups read it: the rows in value order, the kind of
/// their values, and each listed row's value as the row evaluator reads it.
struct Probe<'a> {
    order: &'a [u32],
    kind: Kind,
    /// An index of a JSON path: rows of other kinds stand beside the listed ones.
    json: bool,
    at: Box<dyn Fn(u32) -> Value<'a> + 'a>,
}

/// The scalar index of `f` (a flat field, or a JSON path of object members) when the
/// columns keep one.
fn probe<'a>(f: &FieldRef, cols: &'a dyn Columns) -> Option<Probe<'a>> {
    let keys = f
        .path
        .iter()
        .map(|s| match s {
            compile::Step::Key(k) => Some(k.clone()),
            compile::Step::Index(_) => None,
        })
        .collect::<Option<Vec<String>>>()?;
    let index = cols.sorted(f.id, &keys)?;
    match index.cast() {
        None => {
            let Some(field_data::Field::Scalars(s)) = &cols.column(f.id)?.field else {
                return None;
            };
            let kind = match s.data.as_ref()? {
                D::BoolData(_) => Kind::Bool,
                D::IntData(_) | D::LongData(_) => Kind::Int,
                D::FloatData(_) | D::DoubleData(_) => Kind::Float,
                D::StringData(_) => Kind::Str,
                _ => return None,
            };
            (keys.is_empty()).then(|| Probe {
                order: index.order(),
                kind,
                json: false,
                at: Box::new(move |r| eval::scalar_at(s, r as usize)),
            })
        }
        Some(cast) => {
            let kind = match cast {
                JsonCast::Bool => Kind::Bool,
                JsonCast::Double => Kind::Number,
                JsonCast::Varchar => Kind::Str,
            };
            let f = f.clone();
            Some(Probe {
                order: index.order(),
                kind,
                json: true,
                at: Box::new(move |r| eval::field(&f, cols, r as usize)),
            })
        }
    }
}

/// The rows, ascending, a lookup in the scalar index of `f` selects, when the columns
/// keep one, `lookup` can answer from it (Some) and it selects at most `share` of the
/// rows. Invariant (B3): the rows the scan selects, as the order lists exactly the rows
/// with a value the lookup's constants compare with, ascending by [`Value::compare`] (X1
/// and X2 in `index::scalar`), each lookup selects the positions where that comparison
/// holds, which are contiguous, and it is taken only when no unlisted row can satisfy
/// it.
fn indexed_rows(
    f: &FieldRef,
    cols: &dyn Columns,
    n: usize,
    share: f64,
    lookup: impl FnOnce(&Probe<'_>) -> Option<Hits>,
) -> Option<Vec<u32>> {
    let p = probe(f, cols)?;
    let hits = lookup(&p)?;
    let inside: usize = hits.ranges.iter().map(|r| r.len()).sum();
    let selected = if hits.complement {
        p.order.len().saturating_sub(inside)
    } else {
        inside
    };
    if selected as f64 > share * n as f64 {
        return None;
    }
    // Ranges of an `in` list may overlap (`1` and `1.0` name the same values).
    let mut rows: Vec<u32> = if hits.complement {
        let mut out = vec![true; p.order.len()];
        hits.ranges
            .into_iter()
            .for_each(|r| out[r].iter_mut().for_each(|b| *b = false));
        p.order
            .iter()
            .zip(out)
            .filter_map(|(row, keep)| keep.then_some(*row))
            .collect()
    } else {
        hits.ranges
            .into_iter()
            .flat_map(|r| p.order[r].iter().copied())
            .collect()
    };
    rows.sort_unstable();
    rows.dedup();
    Some(rows)
}

/// [`indexed_rows`] as a mask of `n` rows.
fn indexed(
    f: &FieldRef,
    cols: &dyn Columns,
    n: usize,
    share: f64,
    lookup: impl FnOnce(&Probe<'_>) -> Option<Hits>,
) -> Option<Vec<bool>> {
    indexed_rows(f, cols, n, share, lookup).map(|rows| mask_of(&rows, n))
}

/// A mask of `n` rows true at `rows`.
fn mask_of(rows: &[u32], n: usize) -> Vec<bool> {
    let mut m = vec![false; n];
    rows.iter().for_each(|r| m[*r as usize] = true);
    m
}

/// `f op c` when the comparison is of a field with a constant (either side), the
/// operator as seen from the field.
fn field_cmp<'a>(
    op: Cmp,
    a: &'a Expr,
    b: &'a Expr,
) -> Option<(&'a FieldRef, Cmp, &'a Value<'static>)> {
    match (a, b) {
        (Expr::Field(f), Expr::Const(c)) => Some((f, op, c)),
        (Expr::Const(c), Expr::Field(f)) => Some((f, flip(op), c)),
        _ => None,
    }
}

/// The largest share of the rows an `and`'s index lookup may leave for its other parts
/// to be tested on those rows alone by the row evaluator ([`select_rows`]): about the
/// inverse of how many times a column scan's cost per row the row evaluator's is; with
/// more rows a scan of each part is cheaper.
pub const ROW_EVAL_SHARE: f64 = 1.0 / 16.0;

/// The rows `e` is true for, ascending, when a scalar index answers it without a mask of
/// every row: a comparison, `in` list or exact or prefix `like` of an indexed field (as
/// [`select`] takes them, at most `share` of the rows), or an `and` with such a part (or
/// an intersected range, [`index_range`]) that leaves at most `rest_share` of the rows,
/// its other parts tested on those rows by the row evaluator. None otherwise: [`select`]
/// answers. Invariant (B4): when Some, exactly the rows where `select(e, cols, n, share)`
/// is true (by B3 for the lookup; an `and` is true where all its parts are, and the row
/// evaluator agrees with `select` on every part, B1). A cost of the rows its lookups
/// select (a flag per indexed row for `!=` and `not in`) and of binary searches, not a
/// pass over every row of the chunk.
pub fn select_rows(
    e: &Expr,
    cols: &dyn Columns,
    n: usize,
    share: f64,
    rest_share: f64,
) -> Option<Vec<u32>> {
    let select_rows = |e: &Expr| select_rows(e, cols, n, share, rest_share);
    match e {
        Expr::Cmp(op, a, b) => {
            let (f, op, c) = field_cmp(*op, a, b)?;
            indexed_rows(f, cols, n, share, |p| cmp_hits(p, op, c))
        }
        Expr::In(x, set, negated) => match x.as_ref() {
            Expr::Field(f) => indexed_rows(f, cols, n, share, |p| in_hits(p, set, *negated)),
            _ => None,
        },
        Expr::Like(x, pattern) => match x.as_ref() {
            Expr::Field(f) => indexed_rows(f, cols, n, share, |p| like_hits(p, pattern)),
            _ => None,
        },
        Expr::And(xs) => {
            // The intersected range first, then each part a list answers, in turn (each
            // looked up only when the ones before it did not do).
            let lists = index_range(xs, cols, n, share).into_iter().chain(
                xs.iter()
                    .enumerate()
                    .filter_map(|(i, x)| Some((select_rows(x)?, vec![i]))),
            );
            for (mut rows, used) in lists {
                let rest: Vec<&Expr> = xs
                    .iter()
                    .enumerate()
                    .filter(|(i, _)| !used.contains(i))
                    .map(|(_, x)| x)
                    .collect();
                if !rest.is_empty() && rows.len() as f64 > rest_share * n as f64 {
                    continue;
                }
                rows.retain(|r| rest.iter().all(|x| eval::truth(x, cols, *r as usize)));
                return Some(rows);
            }
            None
        }
        _ => None,
    }
}

/// The parts of an `and` that compare one indexed field with constants (`a < f and f <= b`
/// and the like), answered as one lookup: each part selects one range of positions in
/// the field's value order, so all of them hold on the intersection of those ranges,
/// which is selective even when each part alone is not. Returns the rows, ascending,
/// and which parts they answer; None when no field has two such parts, or the
/// intersection selects more than `share` of the rows.
fn index_range(
    xs: &[Expr],
    cols: &dyn Columns,
    n: usize,
    share: f64,
) -> Option<(Vec<u32>, Vec<usize>)> {
    let parts: Vec<(usize, &FieldRef, Cmp, &Value<'static>)> = xs
        .iter()
        .enumerate()
        .filter_map(|(i, x)| match x {
            Expr::Cmp(op, a, b) if *op != Cmp::Ne => {
                field_cmp(*op, a, b).map(|(f, op, c)| (i, f, op, c))
            }
            _ => None,
        })
        .collect();
    let same = |a: &FieldRef, b: &FieldRef| a.id == b.id && a.path == b.path;
    let (field, p) = parts.iter().find_map(|(_, f, ..)| {
        if parts.iter().filter(|q| same(q.1, f)).count() < 2 {
            return None;
        }
        Some((*f, probe(f, cols)?))
    })?;
    let mut range = 0..p.order.len();
    let mut used = Vec::new();
    for (i, _, op, c) in parts.iter().filter(|q| same(q.1, field)) {
        let hits = cmp_hits(&p, *op, c)?;
        let r = hits.ranges.first()?;
        range = range.start.max(r.start)..range.end.min(r.end);
        used.push(*i);
    }
    let range = range.start..range.end.max(range.start);
    if range.len() as f64 > share * n as f64 {
        return None;
    }
    let mut rows = p.order[range].to_vec();
    rows.sort_unstable();
    Some((rows, used))
}

/// The positions of the order whose value compares to `c` as `Less`, and as `Less` or
/// `Equal`: the bounds of the values equal to `c`.
fn equal_range(p: &Probe<'_>, c: &Value<'_>) -> std::ops::Range<usize> {
    let lo = p
        .order
        .partition_point(|r| (p.at)(*r).compare(c) == Some(Ordering::Less));
    let hi = p.order.partition_point(|r| {
        (p.at)(*r)
            .compare(c)
            .is_some_and(|o| o != Ordering::Greater)
    });
    lo..hi.max(lo)
}

/// Whether a JSON path index's numbers compare with `c` as real numbers do (X2): a float,
/// or an integer within ±2^53.
fn exact(c: &Value<'_>) -> bool {
    match c {
        Value::Int(i) => i.unsigned_abs() <= EXACT_INT as u64,
        Value::Float(x) => !x.is_nan(),
        _ => false,
    }
}

/// `field op c` from the order, for the pairs of kinds the scan compares (others, and
/// NaN, are left to the scan).
fn cmp_hits(p: &Probe<'_>, op: Cmp, c: &Value<'_>) -> Option<Hits> {
    let numeric = matches!(c, Value::Int(_)) || matches!(c, Value::Float(x) if !x.is_nan());
    let kinds_compare = match p.kind {
        Kind::Int | Kind::Float => numeric,
        Kind::Number => exact(c),
        Kind::Bool => matches!(c, Value::Bool(_)),
        Kind::Str => matches!(c, Value::Str(_)),
    };
    if !kinds_compare {
        return None;
    }
    let eq = equal_range(p, c);
    let len = p.order.len();
    let (range, complement) = match op {
        Cmp::Eq => (eq, false),
        Cmp::Ne => (eq, true),
        Cmp::Lt => (0..eq.start, false),
        Cmp::Le => (0..eq.end, false),
        Cmp::Gt => (eq.end..len, false),
        Cmp::Ge => (eq.start..len, false),
    };
    Some(Hits {
        ranges: vec![range],
        complement,
    })
}

/// `field in set` (or `not in`) from the order: an equal range per value
/// [`ConstSet::contains`] matches the field's kind against (integers: the integers and
/// the other constants; strings: the strings; booleans: the other constants). Float
/// columns are left to the scan (`contains` matches a float to an integer by truncation,
/// not by `compare`). On a JSON path, whose unlisted rows hold other kinds, only sets of
/// the index's kind are taken (a constant of another kind could match an unlisted row),
/// and `not in` never (every unlisted row with a value matches it).
fn in_hits(p: &Probe<'_>, set: &ConstSet, negated: bool) -> Option<Hits> {
    if p.json && negated {
        return None;
    }
    let numbers = || {
        set.ints
            .iter()
            .map(|i| Value::Int(*i))
            .chain(set.others.iter().cloned())
            .collect::<Vec<_>>()
    };
    let values: Vec<Value<'_>> = match p.kind {
        Kind::Int => numbers(),
        Kind::Number => {
            let values = numbers();
            if !set.strs.is_empty() || !values.iter().all(exact) {
                return None;
            }
            values
        }
        Kind::Str => {
            if p.json && !(set.ints.is_empty() && set.others.is_empty()) {
                return None;
            }
            set.strs
                .iter()
                .map(|s| Value::Str(s.as_str().into()))
                .collect()
        }
        Kind::Bool => {
            let only_bools = set.ints.is_empty()
                && set.strs.is_empty()
                && set.others.iter().all(|o| matches!(o, Value::Bool(_)));
            if p.json && !only_bools {
                return None;
            }
            set.others.clone()
        }
        Kind::Float => return None,
    };
    Some(Hits {
        ranges: values.iter().map(|v| equal_range(p, v)).collect(),
        complement: negated,
    })
}

/// `field like pattern` from the order, for exact and prefix patterns on strings (the
/// strings starting with a prefix are contiguous in byte order; other rows' values are
/// never `like` anything).
fn like_hits(p: &Probe<'_>, pattern: &[LikeToken]) -> Option<Hits> {
    if p.kind != Kind::Str {
        return None;
    }
    let range = match Shape::of(pattern) {
        Shape::Exact(x) => equal_range(p, &Value::Str(x.as_str().into())),
        Shape::Prefix(x) => {
            let below = |r: &u32| matches!((p.at)(*r), Value::Str(s) if s.as_ref() < x.as_str());
            let lo = p.order.partition_point(below);
            let hi = p.order.partition_point(|r| {
                below(r) || matches!((p.at)(*r), Value::Str(s) if s.starts_with(x.as_str()))
            });
            lo..hi.max(lo)
        }
        _ => return None,
    };
    Some(Hits {
        ranges: vec![range],
        complement: false,
    })
}

/// The row evaluator over every row.
/// A spatial predicate over parsed geometries: only rows whose bounding box meets the
/// predicate's envelope are tested (by G2 no other row can hold), found by the column's
/// R-tree when it has one (R1: the same rows a box scan finds), else by a scan of boxes.
fn spatial(
    f: &FieldRef,
    op: crate::geometry::Spatial,
    q: &crate::geometry::Shape,
    meters: f64,
    cols: &dyn Columns,
    n: usize,
) -> Option<Vec<bool>> {
    let shapes = cols.geometries(f.id)?;
    let mut out = vec![false; n];
    let Some(env) = op.envelope(q, meters) else {
        return Some(out);
    };
    let mut test = |r: usize| {
        if r < n && shapes.get(r).is_some_and(|s| op.holds(s, q, meters)) {
            out[r] = true;
        }
    };
    match cols.rtree(f.id) {
        Some(ix) => ix
            .candidates(&env)
            .into_iter()
            .for_each(|r| test(r as usize)),
        None => (0..n.min(shapes.len()))
            .filter(|r| {
                shapes
                    .get(*r)
                    .and_then(|s| s.rect())
                    .is_some_and(|b| crate::geometry::rect_meets(&b, &env))
            })
            .for_each(&mut test),
    }
    Some(out)
}

fn rows(e: &Expr, cols: &dyn Columns, n: usize) -> Vec<bool> {
    (0..n).map(|row| eval::truth(e, cols, row)).collect()
}

/// `a op b` as `b flip(op) a`.
fn flip(op: Cmp) -> Cmp {
    match op {
        Cmp::Lt => Cmp::Gt,
        Cmp::Le => Cmp::Ge,
        Cmp::Gt => Cmp::Lt,
        Cmp::Ge => Cmp::Le,
        o => o,
    }
}

/// The column of a field read whole (no JSON path), when it is a flat scalar column.
fn plain<'a>(f: &FieldRef, cols: &'a dyn Columns) -> Option<&'a FieldData> {
    if !f.path.is_empty() {
        return None;
    }
    let col = cols.column(f.id)?;
    flat_len(col).map(|_| col)
}

fn scalars(col: &FieldData) -> Option<&D> {
    match &col.field {
        Some(field_data::Field::Scalars(s)) => s.data.as_ref(),
        _ => None,
    }
}

/// Values in a flat scalar column (booleans, numbers, strings); None for any other.
fn flat_len(col: &FieldData) -> Option<usize> {
    Some(match scalars(col)? {
        D::BoolData(d) => d.data.len(),
        D::IntData(d) => d.data.len(),
        D::LongData(d) => d.data.len(),
        D::FloatData(d) => d.data.len(),
        D::DoubleData(d) => d.data.len(),
        D::StringData(d) => d.data.len(),
        _ => return None,
    })
}

/// A mask computed over a column's values, made `n` long (rows past the values are
/// null) with null rows false.
fn fit(mut m: Vec<bool>, col: &FieldData, n: usize) -> Vec<bool> {
    m.resize(n, false);
    m.iter_mut()
        .zip(&col.valid_data)
        .for_each(|(b, valid)| *b &= *valid);
    m
}

/// `x op c` for every `x`, by `PartialOrd` (so NaN matches nothing, `!=` included:
/// hence `x < c || x > c`, which is not `x != c` for floats).
#[allow(clippy::double_comparisons)]
fn holds<T: PartialOrd>(xs: impl Iterator<Item = T>, op: Cmp, c: T) -> Vec<bool> {
    match op {
        Cmp::Eq => xs.map(|x| x == c).collect(),
        Cmp::Ne => xs.map(|x| x < c || x > c).collect(),
        Cmp::Lt => xs.map(|x| x < c).collect(),
        Cmp::Le => xs.map(|x| x <= c).collect(),
        Cmp::Gt => xs.map(|x| x > c).collect(),
        Cmp::Ge => xs.map(|x| x >= c).collect(),
    }
}

/// `column op c` on a flat column.
fn compare(col: &FieldData, op: Cmp, c: &Value<'_>, n: usize) -> Option<Vec<bool>> {
    let m = match (scalars(col)?, c) {
        (D::IntData(d), Value::Int(c)) => holds(d.data.iter().map(|x| i64::from(*x)), op, *c),
        (D::LongData(d), Value::Int(c)) => holds(d.data.iter().copied(), op, *c),
        (D::IntData(d), Value::Float(c)) => holds(d.data.iter().map(|x| f64::from(*x)), op, *c),
        (D::LongData(d), Value::Float(c)) => holds(d.data.iter().map(|x| *x as f64), op, *c),
        (D::FloatData(d), c @ (Value::Int(_) | Value::Float(_))) => {
            holds(d.data.iter().map(|x| f64::from(*x)), op, number(c))
        }
        (D::DoubleData(d), c @ (Value::Int(_) | Value::Float(_))) => {
            holds(d.data.iter().copied(), op, number(c))
        }
        (D::BoolData(d), Value::Bool(c)) => holds(d.data.iter().copied(), op, *c),
        (D::StringData(d), Value::Str(c)) => {
            holds(d.data.iter().map(String::as_str), op, c.as_ref())
        }
        // Kinds that never compare (a string with a number, anything with null): false.
        (_, Value::Null | Value::Bool(_) | Value::Int(_) | Value::Float(_) | Value::Str(_)) => {
            Vec::new()
        }
        _ => return None,
    };
    Some(fit(m, col, n))
}

fn number(c: &Value<'_>) -> f64 {
    match c {
        Value::Int(i) => *i as f64,
        Value::Float(f) => *f,
        _ => f64::NAN,
    }
}

/// `column in set` (or `not in`) on a flat column.
fn member(col: &FieldData, set: &ConstSet, negated: bool, n: usize) -> Option<Vec<bool>> {
    let m: Vec<bool> = match scalars(col)? {
        D::LongData(d) if set.others.is_empty() && set.ints.len() <= 16 => {
            // One vectorizable equality pass per value beats a lookup per row (the
            // values are distinct, so a row is flipped at most once).
            let mut m = vec![negated; d.data.len()];
            for v in &set.ints {
                m.iter_mut().zip(&d.data).for_each(|(b, x)| *b ^= *x == *v);
            }
            m
        }
        D::LongData(d) if set.others.is_empty() => d
            .data
            .iter()
            .map(|x| set.ints.contains(x) != negated)
            .collect(),
        D::StringData(d) => d
            .data
            .iter()
            .map(|s| set.strs.contains(s.as_str()) != negated)
            .collect(),
        D::BoolData(d) => d
            .data
            .iter()
            .map(|b| set.contains(&Value::Bool(*b)) != negated)
            .collect(),
        D::IntData(d) => d
            .data
            .iter()
            .map(|x| set.contains(&Value::Int(i64::from(*x))) != negated)
            .collect(),
        D::LongData(d) => d
            .data
            .iter()
            .map(|x| set.contains(&Value::Int(*x)) != negated)
            .collect(),
        D::FloatData(d) => d
            .data
            .iter()
            .map(|x| set.contains(&Value::Float(f64::from(*x))) != negated)
            .collect(),
        D::DoubleData(d) => d
            .data
            .iter()
            .map(|x| set.contains(&Value::Float(*x)) != negated)
            .collect(),
        _ => return None,
    };
    Some(fit(m, col, n))
}

/// `column like pattern` on a flat column: prefix, suffix, infix and exact patterns
/// compare bytes; others run the general matcher.
fn like(col: &FieldData, pattern: &[LikeToken], n: usize) -> Option<Vec<bool>> {
    let m = match scalars(col)? {
        D::StringData(d) => {
            let strs = d.data.iter().map(String::as_str);
            match Shape::of(pattern) {
                Shape::Exact(p) => strs.map(|s| s == p).collect(),
                Shape::Prefix(p) => strs.map(|s| s.starts_with(&p)).collect(),
                Shape::Suffix(p) => strs.map(|s| s.ends_with(&p)).collect(),
                Shape::Infix(p) => strs.map(|s| s.contains(&p)).collect(),
                Shape::General => strs.map(|s| value::like(s, pattern)).collect(),
            }
        }
        // Only strings are `like` anything.
        _ => Vec::new(),
    };
    Some(fit(m, col, n))
}

/// A `like` pattern's shape.
enum Shape {
    Exact(String),
    Prefix(String),
    Suffix(String),
    Infix(String),
    General,
}

impl Shape {
    fn of(p: &[LikeToken]) -> Shape {
        let lit = |ts: &[LikeToken]| -> Option<String> {
            ts.iter()
                .map(|t| match t {
                    LikeToken::Char(c) => Some(*c),
                    _ => None,
                })
                .collect()
        };
        let any = |t: Option<&LikeToken>| t == Some(&LikeToken::Any);
        let (starts, ends) = (any(p.first()), any(p.last()));
        let inner = match (starts, ends) {
            (true, true) if p.len() >= 2 => &p[1..p.len() - 1],
            (true, _) => &p[1..],
            (_, true) => &p[..p.len() - 1],
            _ => p,
        };
        match (lit(inner), starts, ends) {
            (Some(s), false, false) => Shape::Exact(s),
            (Some(s), false, true) => Shape::Prefix(s),
            (Some(s), true, false) => Shape::Suffix(s),
            (Some(s), true, true) => Shape::Infix(s),
            (None, ..) => Shape::General,
        }
    }
}

/// The smallest and largest non-null value of a column (NaN left out): what a chunk
/// keeps per scalar field so a filter can skip it whole ([`may_match`]).
#[derive(Debug, Clone, PartialEq)]
pub enum Bounds {
    /// No value is set (every row null, or no row).
    Empty,
    /// Every non-null value lies in `min..=max`.
    Range(Value<'static>, Value<'static>),
}

impl Bounds {
    /// The bounds of a flat scalar column; None for other columns (JSON, arrays,
    /// vectors), which are never skipped on.
    pub fn of(col: &FieldData) -> Option<Bounds> {
        /// The smallest and largest of the non-null `xs` (comparable ones only: NaN,
        /// which compares with nothing, is left out), as values.
        fn span<T: PartialOrd + Copy>(
            xs: &[T],
            valid: &[bool],
            value: impl Fn(T) -> Value<'static>,
        ) -> Option<(Value<'static>, Value<'static>)> {
            xs.iter()
                .enumerate()
                .filter(|(i, x)| valid.get(*i) != Some(&false) && x.partial_cmp(x).is_some())
                .fold(None, |acc: Option<(T, T)>, (_, &x)| match acc {
                    None => Some((x, x)),
                    Some((lo, hi)) => {
                        Some((if x < lo { x } else { lo }, if x > hi { x } else { hi }))
                    }
                })
                .map(|(lo, hi)| (value(lo), value(hi)))
        }
        let valid = &col.valid_data;
        let r = match scalars(col)? {
            D::BoolData(d) => span(&d.data, valid, Value::Bool),
            D::IntData(d) => span(&d.data, valid, |x| Value::Int(i64::from(x))),
            D::LongData(d) => span(&d.data, valid, Value::Int),
            D::FloatData(d) => span(&d.data, valid, |x| Value::Float(f64::from(x))),
            D::DoubleData(d) => span(&d.data, valid, Value::Float),
            D::StringData(d) => {
                let strs: Vec<&str> = d.data.iter().map(String::as_str).collect();
                span(&strs, valid, |s| Value::Str(s.to_string().into()))
            }
            _ => return None,
        };
        Some(match r {
            None => Bounds::Empty,
            Some((lo, hi)) => Bounds::Range(lo, hi),
        })
    }
}

/// Whether any row within `bounds` (by field ID) can match `e`; false only when none
/// can. Invariant (B2): false implies `select(e)` is all false for every chunk whose
/// columns lie within those bounds: only comparisons and `in` lists on a plain field
/// are decided, each from [`Value::compare`] on the bounds (a comparison with null or
/// with a value of another kind is false for every row, so an empty column matches
/// nothing); `and` needs one undecidable-free part to fail, `or` all of them.
pub fn may_match(e: &Expr, bounds: &HashMap<i64, Bounds>) -> bool {
    let range = |f: &FieldRef| {
        if f.path.is_empty() {
            bounds.get(&f.id)
        } else {
            None
        }
    };
    match e {
        Expr::Const(v) => v.truth(),
        Expr::And(xs) => xs.iter().all(|x| may_match(x, bounds)),
        Expr::Or(xs) => xs.iter().any(|x| may_match(x, bounds)),
        Expr::Cmp(op, a, b) => {
            let (f, op, c) = match (a.as_ref(), b.as_ref()) {
                (Expr::Field(f), Expr::Const(c)) => (f, *op, c),
                (Expr::Const(c), Expr::Field(f)) => (f, flip(*op), c),
                _ => return true,
            };
            match range(f) {
                None => true,
                Some(Bounds::Empty) => false,
                Some(Bounds::Range(lo, hi)) => within(lo, hi, op, c),
            }
        }
        Expr::In(x, set, false) => {
            let Expr::Field(f) = x.as_ref() else {
                return true;
            };
            match range(f) {
                None => true,
                Some(Bounds::Empty) => false,
                Some(Bounds::Range(lo, hi)) => {
                    !set.others.is_empty()
                        || set
                            .ints
                            .iter()
                            .any(|i| within(lo, hi, Cmp::Eq, &Value::Int(*i)))
                        || set
                            .strs
                            .iter()
                            .any(|s| within(lo, hi, Cmp::Eq, &Value::Str(s.as_str().into())))
                }
            }
        }
        _ => true,
    }
}

/// Whether some value in `lo..=hi` can satisfy `x op c` (true when undecided).
fn within(lo: &Value<'_>, hi: &Value<'_>, op: Cmp, c: &Value<'_>) -> bool {
    let (Some(l), Some(h)) = (lo.compare(c), hi.compare(c)) else {
        // Not comparable with the bounds: for numbers of other kinds, undecided.
        return true;
    };
    match op {
        Cmp::Eq => l != Ordering::Greater && h != Ordering::Less,
        Cmp::Ne => !(l == Ordering::Equal && h == Ordering::Equal),
        Cmp::Lt => l == Ordering::Less,
        Cmp::Le => l != Ordering::Greater,
        Cmp::Gt => h == Ordering::Greater,
        Cmp::Ge => h != Ordering::Less,
    }
}
