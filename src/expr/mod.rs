//! Milvus's filter language (`filter` / `expr`): parsed with a PEG grammar
//! (`grammar.pest`) into a typed plan checked against the collection's schema, and
//! evaluated over columns ([`Columns`]): whole columns at once where the filter's parts
//! allow (`batch`; a JSON path's values as flat columns by kind, [`PathColumn`]), row
//! by row otherwise (`eval`), with per-chunk bounds ([`Bounds`]) to skip chunks no row
//! of which can match. The proxy compiles a filter to refuse a
//! bad one before anything runs; querynodes compile it again and evaluate.
//!
//! Semantics follow Milvus: names that are not schema fields are keys of the dynamic
//! field `$meta` when the schema enables it; a comparison with a missing JSON key or a
//! null value is false; `like` takes `%` (any run) and `_` (one character).

mod batch;
mod compile;
mod eval;
mod path;
mod value;

use std::collections::HashMap;

pub use batch::Bounds;
pub use compile::Step;
pub use eval::Columns;
pub use path::PathColumn;
pub use value::Value;

use crate::proto::schema::{CollectionSchema, TemplateValue};

/// Why a filter was refused (a filter that is not a predicate in Milvus's own words,
/// anything else as its parser reports it).
#[derive(Debug, thiserror::Error)]
#[error("{}", render(.expr, .why))]
pub struct ExprError {
    /// The expression as given.
    pub expr: String,
    /// What is wrong, and where.
    pub why: String,
}

fn render(expr: &str, why: &str) -> String {
    if why.starts_with(compile::NOT_A_PREDICATE) || why.starts_with(compile::UNKNOWN_FUNCTION) {
        why.to_string()
    } else {
        format!("cannot parse expression: {expr}, error: {why}")
    }
}

/// A field, or a path into a JSON field (a dynamic key goes into `$meta`), as a JSON
/// path index's `json_path` names it: the field's ID and the path's steps as JSON
/// Pointer tokens (`~` and `/` escaped), e.g. `my_json['a'][0]` -> (id, "/a/0").
pub fn json_pointer(text: &str, schema: &CollectionSchema) -> Result<(i64, String), ExprError> {
    let f = compile::identifier(text, schema).map_err(|why| ExprError {
        expr: text.to_string(),
        why,
    })?;
    let pointer: String = f
        .path
        .iter()
        .map(|s| {
            let token = match s {
                compile::Step::Key(k) => k.clone(),
                compile::Step::Index(i) => i.to_string(),
            };
            format!("/{}", token.replace('~', "~0").replace('/', "~1"))
        })
        .collect();
    Ok((f.id, pointer))
}

/// A compiled filter.
#[derive(Debug, Clone)]
pub struct Filter {
    root: compile::Expr,
    fields: Vec<i64>,
}

impl Filter {
    /// Compiles `text` against `schema`, with `{name}` placeholders taken from
    /// `templates`.
    pub fn compile(
        text: &str,
        schema: &CollectionSchema,
        templates: &HashMap<String, TemplateValue>,
    ) -> Result<Filter, ExprError> {
        compile::compile(text, schema, templates)
            .map(|(root, fields)| Filter { root, fields })
            .map_err(|why| ExprError {
                expr: text.to_string(),
                why,
            })
    }

    /// Whether row `row` of `columns` matches.
    pub fn matches(&self, columns: &dyn Columns, row: usize) -> bool {
        eval::truth(&self.root, columns, row)
    }

    /// Which of rows `0..rows` of `columns` match (the same answers as [`Self::matches`]
    /// row by row, computed a column at a time).
    pub fn select(&self, columns: &dyn Columns, rows: usize) -> Vec<bool> {
        batch::select(&self.root, columns, rows, batch::INDEX_SHARE)
    }

    /// As [`Self::select`], taking every lookup a scalar index can answer (whatever share
    /// of the rows it selects): what the tests compare with the scan.
    #[cfg(test)]
    pub fn select_indexed(&self, columns: &dyn Columns, rows: usize) -> Vec<bool> {
        batch::select(&self.root, columns, rows, f64::INFINITY)
    }

    /// The matching rows of `0..rows`, ascending, when a scalar index answers the filter
    /// (or a part of its `and` that leaves few rows) without a pass over every row; None
    /// when only [`Self::select`] can. The same rows as `select` where it is Some.
    pub fn select_rows(&self, columns: &dyn Columns, rows: usize) -> Option<Vec<u32>> {
        batch::select_rows(
            &self.root,
            columns,
            rows,
            batch::INDEX_SHARE,
            batch::ROW_EVAL_SHARE,
        )
    }

    /// As [`Self::select_rows`], whatever share of the rows a lookup selects or leaves.
    #[cfg(test)]
    pub fn select_rows_indexed(&self, columns: &dyn Columns, rows: usize) -> Option<Vec<u32>> {
        batch::select_rows(&self.root, columns, rows, f64::INFINITY, f64::INFINITY)
    }

    /// Whether a row whose fields lie within `bounds` (by field ID; None: unknown) can
    /// match; false only when no such row can. Fields without bounds are unknown.
    pub fn may_match(&self, bounds: &HashMap<i64, Bounds>) -> bool {
        batch::may_match(&self.root, bounds)
    }

    /// The IDs of the fields it reads.
    pub fn fields(&self) -> &[i64] {
        &self.fields
    }

    /// The values `field_id` can take in the rows it selects, when it bounds them to a
    /// list (`f == v`, `f in [...]`, within `and`, or in every part of an `or`): what
    /// partition-key pruning hashes.
    pub fn key_values(&self, field_id: i64) -> Option<Vec<Value<'static>>> {
        compile::key_values(&self.root, field_id)
    }

    /// The primary keys it selects when it is exactly `pk in [...]` or `pk == v`
    /// (the form `delete(ids=...)` and `get` send): integers or strings.
    pub fn primary_keys(&self, pk_field: i64) -> Option<Vec<Value<'static>>> {
        compile::primary_keys(&self.root, pk_field)
    }
}

#[cfg(test)]
mod tests;
