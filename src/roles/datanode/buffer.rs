//! Rows and deletes of one virtual channel consumed since its checkpoint, waiting to be
//! written out.

use std::collections::BTreeMap;

use tokio::time::Instant;

use crate::proto::schema::{
    field_data, i_ds, scalar_field, CollectionSchema, FieldData, ScalarField,
};
use crate::proto::wal::{DeleteMsg, InsertMsg};
use crate::storage::segment::SegmentBatch;

/// The buffered rows of one partition.
#[derive(Default)]
pub struct Partition {
    /// One batch per insert message, in log order.
    pub batches: Vec<SegmentBatch>,
    /// Rows in all batches.
    pub rows: usize,
    /// Log sequence of the first and last message.
    pub start_sequence: u64,
    /// See `start_sequence`.
    pub end_sequence: u64,
    /// Smallest and largest row timestamps.
    pub start_ts: u64,
    /// See `start_ts`.
    pub end_ts: u64,
}

/// Everything consumed and not yet written out.
#[derive(Default)]
pub struct Buffer {
    /// Rows by partition.
    pub partitions: BTreeMap<i64, Partition>,
    /// Deleted keys, with their timestamps, in log order. The keys are kept as the log
    /// carries them: the primary key field they belong to is looked up only when the
    /// delta file is written, so buffering a delete never needs the collection's schema
    /// (a consumer may own a channel before its catalog shows the collection).
    pub deletes: Vec<(scalar_field::Data, Vec<u64>)>,
    /// Number of deleted keys.
    pub deleted: usize,
    /// Encoded size of what is buffered (the log messages' sizes).
    pub bytes: usize,
    /// When the oldest buffered message arrived.
    pub since: Option<Instant>,
    /// Largest timestamp consumed (rows, deletes, flush markers).
    pub max_ts: u64,
}

impl Buffer {
    /// True when nothing is buffered.
    pub fn is_empty(&self) -> bool {
        self.partitions.is_empty() && self.deletes.is_empty()
    }

    fn touch(&mut self, bytes: usize, ts: u64) {
        self.bytes += bytes;
        self.since.get_or_insert_with(Instant::now);
        self.max_ts = self.max_ts.max(ts);
    }

    /// Adds an insert message read at `sequence` (`bytes` long).
    pub fn insert(&mut self, msg: InsertMsg, sequence: u64, bytes: usize) {
        self.touch(bytes, msg.timestamp);
        let rows = msg.row_ids.len();
        let p = self.partitions.entry(msg.partition_id).or_default();
        if p.rows == 0 {
            p.start_sequence = sequence;
            p.start_ts = msg.timestamp;
        }
        p.end_sequence = sequence;
        p.start_ts = p.start_ts.min(msg.timestamp);
        p.end_ts = p.end_ts.max(msg.timestamp);
        p.rows += rows;
        p.batches.push(SegmentBatch {
            timestamps: vec![msg.timestamp; rows],
            row_ids: msg.row_ids,
            fields: msg.fields,
        });
    }

    /// Adds a delete message (`bytes` long).
    pub fn delete(&mut self, msg: DeleteMsg, bytes: usize) {
        self.touch(bytes, msg.timestamp);
        let Some(ids) = msg.pks.and_then(|p| p.id_field) else {
            return;
        };
        let (data, n) = match ids {
            i_ds::IdField::IntId(a) => {
                let n = a.data.len();
                (scalar_field::Data::LongData(a), n)
            }
            i_ds::IdField::StrId(a) => {
                let n = a.data.len();
                (scalar_field::Data::StringData(a), n)
            }
        };
        self.deleted += n;
        self.deletes.push((data, vec![msg.timestamp; n]));
    }

    /// Notes a timestamp consumed without rows (a flush marker).
    pub fn mark(&mut self, ts: u64) {
        self.max_ts = self.max_ts.max(ts);
    }

    /// The deletes as batches of a schema holding only the primary key (row IDs 0),
    /// and that schema.
    pub fn delete_batches(
        &self,
        schema: &CollectionSchema,
    ) -> (CollectionSchema, Vec<SegmentBatch>) {
        let pk_schema = crate::storage::segment::delta_schema(schema);
        let pk = pk_schema.fields.first().cloned().unwrap_or_default();
        let batches = self
            .deletes
            .iter()
            .map(|(keys, ts)| SegmentBatch {
                row_ids: vec![0; ts.len()],
                timestamps: ts.clone(),
                fields: vec![FieldData {
                    r#type: pk.data_type,
                    field_name: pk.name.clone(),
                    field_id: pk.field_id,
                    field: Some(field_data::Field::Scalars(ScalarField {
                        data: Some(keys.clone()),
                    })),
                    ..Default::default()
                }],
            })
            .collect();
        (pk_schema, batches)
    }

    /// Smallest and largest delete timestamps.
    pub fn delete_range(&self) -> (u64, u64) {
        let all = self.deletes.iter().flat_map(|(_, ts)| ts.iter().copied());
        let (mut lo, mut hi) = (u64::MAX, 0);
        for t in all {
            lo = lo.min(t);
            hi = hi.max(t);
        }
        (if lo == u64::MAX { 0 } else { lo }, hi)
    }
}
