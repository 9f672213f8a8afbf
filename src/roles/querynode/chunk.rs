//! Rows a querynode holds: a [`Chunk`] is a sealed segment (loaded from its Parquet file,
//! with its vector index once built) or one insert message of growing data; deletes are
//! kept per shard by primary key ([`Deletes`]).

use std::collections::HashMap;

use crate::expr::Columns;
use crate::proto::schema::{
    field_data, i_ds, scalar_field, vector_field, CollectionSchema, DataType, FieldData, IDs,
};
use crate::storage::segment::SegmentBatch;

/// A primary key column.
#[derive(Debug, Clone)]
pub enum PkColumn {
    /// Int64 keys.
    Int(Vec<i64>),
    /// VarChar keys.
    Str(Vec<String>),
}

impl PkColumn {
    fn of(schema: &CollectionSchema, fields: &[FieldData]) -> PkColumn {
        let pk = schema.fields.iter().find(|f| f.is_primary_key);
        let col = pk.and_then(|pk| fields.iter().find(|f| f.field_id == pk.field_id));
        match col.and_then(|c| c.field.as_ref()) {
            Some(field_data::Field::Scalars(s)) => match &s.data {
                Some(scalar_field::Data::StringData(d)) => PkColumn::Str(d.data.clone()),
                Some(scalar_field::Data::LongData(d)) => PkColumn::Int(d.data.clone()),
                _ => PkColumn::Int(Vec::new()),
            },
            _ => PkColumn::Int(Vec::new()),
        }
    }

    /// The keys of `ids`.
    pub fn of_ids(ids: &IDs) -> PkColumn {
        match &ids.id_field {
            Some(i_ds::IdField::StrId(s)) => PkColumn::Str(s.data.clone()),
            Some(i_ds::IdField::IntId(l)) => PkColumn::Int(l.data.clone()),
            None => PkColumn::Int(Vec::new()),
        }
    }

    /// Number of keys.
    pub fn len(&self) -> usize {
        match self {
            PkColumn::Int(v) => v.len(),
            PkColumn::Str(v) => v.len(),
        }
    }

    /// The key at `row`.
    pub fn get(&self, row: usize) -> Pk<'_> {
        match self {
            PkColumn::Int(v) => Pk::Int(v[row]),
            PkColumn::Str(v) => Pk::Str(&v[row]),
        }
    }
}

/// One primary key.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash, PartialOrd, Ord)]
pub enum Pk<'a> {
    /// An Int64 key.
    Int(i64),
    /// A VarChar key.
    Str(&'a str),
}

/// The delete timestamps of a shard, by key: a row written at `ts` is deleted when a
/// delete of its key came later (an upsert's delete has its insert's timestamp and
/// spares it).
#[derive(Debug, Default)]
pub struct Deletes {
    ints: HashMap<i64, u64>,
    strs: HashMap<String, u64>,
    /// Bumped by every change (caches of deleted rows compare it).
    pub version: u64,
}

impl Deletes {
    /// Records deletes of `pks` at `timestamps` (one per key).
    pub fn add(&mut self, pks: &PkColumn, timestamps: &[u64]) {
        self.version += 1;
        for (i, ts) in timestamps.iter().enumerate().take(pks.len()) {
            match pks {
                PkColumn::Int(v) => {
                    let e = self.ints.entry(v[i]).or_default();
                    *e = (*e).max(*ts);
                }
                PkColumn::Str(v) => {
                    let e = self.strs.entry(v[i].clone()).or_default();
                    *e = (*e).max(*ts);
                }
            }
        }
    }

    /// Whether a row of key `pk` written at `ts` is deleted.
    pub fn deleted(&self, pk: Pk<'_>, ts: u64) -> bool {
        let d = match pk {
            Pk::Int(i) => self.ints.get(&i),
            Pk::Str(s) => self.strs.get(s),
        };
        d.is_some_and(|d| *d > ts)
    }

    /// Whether nothing was deleted.
    pub fn is_empty(&self) -> bool {
        self.ints.is_empty() && self.strs.is_empty()
    }
}

/// Rows held in memory: every schema field as one full-length column.
pub struct Chunk {
    /// The segment ID (sealed) or the log sequence of the insert (growing).
    pub id: i64,
    /// Its partition.
    pub partition: i64,
    /// Number of rows.
    pub rows: usize,
    /// Each row's timestamp.
    pub timestamps: Vec<u64>,
    /// Each row's primary key.
    pub pks: PkColumn,
    /// The columns.
    pub fields: Vec<FieldData>,
    by_id: HashMap<i64, usize>,
    json: HashMap<i64, Vec<serde_json::Value>>,
}

impl Columns for Chunk {
    fn column(&self, field_id: i64) -> Option<&FieldData> {
        self.by_id.get(&field_id).map(|i| &self.fields[*i])
    }

    fn json(&self, field_id: i64, row: usize) -> Option<&serde_json::Value> {
        self.json.get(&field_id).and_then(|v| v.get(row))
    }
}

impl Chunk {
    /// A chunk of `batch` (rows of `schema`).
    pub fn new(schema: &CollectionSchema, id: i64, partition: i64, batch: SegmentBatch) -> Chunk {
        let rows = batch.rows();
        let pks = PkColumn::of(schema, &batch.fields);
        let by_id = batch
            .fields
            .iter()
            .enumerate()
            .map(|(i, f)| (f.field_id, i))
            .collect();
        let mut json = HashMap::new();
        for f in &batch.fields {
            if f.r#type == DataType::Json as i32 {
                if let Some(field_data::Field::Scalars(s)) = &f.field {
                    if let Some(scalar_field::Data::JsonData(d)) = &s.data {
                        let parsed = d
                            .data
                            .iter()
                            .map(|b| serde_json::from_slice(b).unwrap_or(serde_json::Value::Null))
                            .collect();
                        json.insert(f.field_id, parsed);
                    }
                }
            }
        }
        Chunk {
            id,
            partition,
            rows,
            timestamps: batch.timestamps,
            pks,
            fields: batch.fields,
            by_id,
            json,
        }
    }

    /// The float vectors of `field_id` and their dim.
    pub fn vectors(&self, field_id: i64) -> Option<(&[f32], usize)> {
        match &self.column(field_id)?.field {
            Some(field_data::Field::Vectors(v)) => match &v.data {
                Some(vector_field::Data::FloatVector(f)) => Some((&f.data, v.dim.max(1) as usize)),
                _ => None,
            },
            _ => None,
        }
    }

    /// Frees the float vectors of `field_id` (their index keeps them); the column stays,
    /// empty, with its dim. Returns whether it did.
    pub fn drop_vectors(&mut self, field_id: i64) -> bool {
        let Some(i) = self.by_id.get(&field_id) else {
            return false;
        };
        match &mut self.fields[*i].field {
            Some(field_data::Field::Vectors(v)) => match &mut v.data {
                Some(vector_field::Data::FloatVector(f)) if !f.data.is_empty() => {
                    f.data = Vec::new();
                    true
                }
                _ => false,
            },
            _ => false,
        }
    }

    /// Bytes its rows take (roughly: vectors and fixed-size scalars).
    pub fn memory_usage(&self) -> usize {
        let cols: usize = self
            .fields
            .iter()
            .map(|f| match &f.field {
                Some(field_data::Field::Vectors(v)) => match &v.data {
                    Some(vector_field::Data::FloatVector(a)) => a.data.len() * 4,
                    _ => 0,
                },
                _ => self.rows * 8,
            })
            .sum();
        cols + self.rows * 16
    }
}
