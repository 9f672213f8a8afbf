//! The querynode's read path against the row evaluator: chunk skipping by bounds, the
//! column-at-a-time filter, cached deletes and a query's early stop at its limit give
//! the answers reading every row of every chunk gives.

use std::collections::HashMap;

use super::chunk::{Chunk, PkColumn};
use super::search::{self, QueryInput};
use super::shard::ShardData;
use crate::expr::Filter;
use crate::proto::schema::{
    field_data, i_ds, scalar_field, CollectionSchema, DataType, FieldData, FieldSchema, LongArray,
    ScalarField,
};
use crate::storage::segment::SegmentBatch;

fn schema() -> CollectionSchema {
    let f = |id: i64, name: &str, pk: bool| FieldSchema {
        field_id: id,
        name: name.into(),
        data_type: DataType::Int64 as i32,
        is_primary_key: pk,
        ..Default::default()
    };
    CollectionSchema {
        name: "c".into(),
        fields: vec![f(100, "id", true), f(101, "n", false)],
        ..Default::default()
    }
}

fn longs(id: i64, v: Vec<i64>) -> FieldData {
    FieldData {
        field_id: id,
        r#type: DataType::Int64 as i32,
        field: Some(field_data::Field::Scalars(ScalarField {
            data: Some(scalar_field::Data::LongData(LongArray { data: v })),
        })),
        ..Default::default()
    }
}

fn keys(found: &search::Found) -> Vec<i64> {
    match found.ids.as_ref().and_then(|i| i.id_field.as_ref()) {
        Some(i_ds::IdField::IntId(l)) => l.data.clone(),
        _ => Vec::new(),
    }
}

/// The next `n` row IDs after `last` (which moves past them), as the proxy gives a
/// request's rows consecutive IDs.
fn next_row_ids(last: &mut i64, n: usize) -> Vec<i64> {
    let first = *last + 1;
    *last += n as i64;
    (first..=*last).collect()
}

/// What a filter selects, by key and `n`.
type Predicate = Box<dyn Fn(i64, i64) -> bool>;

struct Rng(u64);

impl Rng {
    fn below(&mut self, n: u64) -> u64 {
        self.0 ^= self.0 << 13;
        self.0 ^= self.0 >> 7;
        self.0 ^= self.0 << 17;
        self.0 % n
    }
}

/// Chunks of overlapping key ranges (some keys written again later, some deleted), as
/// sealed segments and growing chunks; every query with and without a limit answers
/// what the row evaluator selects from the rows still visible.
#[test]
fn queries_with_bounds_limits_and_deletes_answer_as_reading_every_row() {
    let schema = schema();
    let mut r = Rng(0x2545_f491_4f6c_dd1d);
    for round in 0..30 {
        let mut d = ShardData::default();
        // Every version written: key -> (version, n); the newest one not deleted is seen.
        let mut written: HashMap<i64, ((u64, i64), i64)> = HashMap::new();
        let mut row_id = 0i64;
        let mut deleted: HashMap<i64, u64> = HashMap::new();
        for c in 0..(2 + r.below(6)) {
            let start = r.below(300) as i64;
            let rows = 1 + r.below(80) as usize;
            let ts = 10 + c * 10;
            let ids: Vec<i64> = (0..rows as i64)
                .map(|i| start + i * (1 + r.below(2) as i64))
                .collect();
            let mut ids = ids;
            ids.sort_unstable();
            ids.dedup();
            if r.below(2) == 0 {
                // Stored out of key order: key lookups go through a sorted permutation.
                ids.reverse();
                let k = ids.len();
                ids.swap(0, k / 2);
            }
            let ns: Vec<i64> = ids.iter().map(|_| r.below(20) as i64).collect();
            let row_ids = next_row_ids(&mut row_id, ids.len());
            for ((k, n), rid) in ids.iter().zip(&ns).zip(&row_ids) {
                let e = written.entry(*k).or_insert(((ts, *rid), *n));
                if (ts, *rid) > e.0 {
                    *e = ((ts, *rid), *n);
                }
            }
            let batch = SegmentBatch {
                row_ids,
                timestamps: vec![ts; ids.len()],
                fields: vec![longs(100, ids), longs(101, ns)],
            };
            let chunk = Chunk::new(&schema, c as i64 + 1, 0, batch);
            d.deletes.observe(&chunk);
            d.growing.push(chunk);
            if r.below(2) == 0 {
                let gone: Vec<i64> = (0..5).map(|_| r.below(400) as i64).collect();
                let at = ts + 5;
                for k in &gone {
                    deleted.insert(*k, at);
                }
                d.deletes
                    .add(&PkColumn::Int(gone.clone()), &vec![at; gone.len()]);
            }
        }
        let live = |k: i64, n: i64, f: &dyn Fn(i64, i64) -> bool| -> bool {
            let ((ts, _), newest_n) = written[&k];
            n == newest_n && deleted.get(&k).is_none_or(|at| *at <= ts) && f(k, n)
        };
        let filters: Vec<(String, Predicate)> = vec![
            (
                "id >= 100 and id < 150".into(),
                Box::new(|k, _| (100..150).contains(&k)),
            ),
            (
                "id in [5, 77, 301, 999]".into(),
                Box::new(|k, _| [5, 77, 301, 999].contains(&k)),
            ),
            (
                "n == 3 or id > 350".into(),
                Box::new(|k, n| n == 3 || k > 350),
            ),
            ("id > 10000".into(), Box::new(|_, _| false)),
            ("id == 120".into(), Box::new(|k, _| k == 120)),
            (
                "id in [7, 130, 131]".into(),
                Box::new(|k, _| [7, 130, 131].contains(&k)),
            ),
            ("not (n < 10)".into(), Box::new(|_, n| n >= 10)),
        ];
        for (text, f) in &filters {
            let filter = Filter::compile(text, &schema, &HashMap::new()).unwrap();
            let mut want: Vec<i64> = written
                .iter()
                .filter(|(k, (_, n))| live(**k, *n, f.as_ref()))
                .map(|(k, _)| *k)
                .collect();
            want.sort_unstable();
            for limit in [0usize, 1, 3, 10, 1000] {
                let found = search::query(
                    &d,
                    &QueryInput {
                        filter: Some(&filter),
                        partitions: &[],
                        output: &[101],
                        limit,
                        count_only: false,
                        expire_before: 0,
                    },
                );
                let expect: Vec<i64> = match limit {
                    0 => want.clone(),
                    l => want.iter().take(l).copied().collect(),
                };
                assert_eq!(keys(&found), expect, "round {round}: {text} limit {limit}");
                // The output column holds each key's newest `n`, in key order.
                let ns: Vec<i64> = expect.iter().map(|k| written[k].1).collect();
                let got = match found.fields.first().and_then(|f| f.field.as_ref()) {
                    Some(field_data::Field::Scalars(ScalarField {
                        data: Some(scalar_field::Data::LongData(l)),
                    })) => l.data.clone(),
                    _ => Vec::new(),
                };
                assert_eq!(got, ns, "round {round}: {text} limit {limit}: n");
            }
            let count = search::query(
                &d,
                &QueryInput {
                    filter: Some(&filter),
                    partitions: &[],
                    output: &[],
                    limit: 0,
                    count_only: true,
                    expire_before: 0,
                },
            );
            assert_eq!(
                count.count,
                want.len() as i64,
                "round {round}: count {text}"
            );
        }
    }
}

/// D1 in use: the rows a chunk's cache says the deletes hide, brought up to date from
/// the keys raised since (or recomputed), are at every step exactly the rows a check of
/// every row finds, with caches read after every change, after several, or not at all
/// for a while; Int64 and VarChar keys, rows stored in and out of key order, keys written
/// again (upserts) and deleted, a batch of deletes larger than the shard remembers.
#[test]
fn cached_hidden_rows_follow_every_delete_and_upsert() {
    for strings in [false, true] {
        let mut schema = schema();
        if strings {
            schema.fields[0].data_type = DataType::VarChar as i32;
        }
        let key_column = |ids: Vec<i64>| {
            if strings {
                FieldData {
                    field_id: 100,
                    r#type: DataType::VarChar as i32,
                    field: Some(field_data::Field::Scalars(ScalarField {
                        data: Some(scalar_field::Data::StringData(
                            crate::proto::schema::StringArray {
                                data: ids.iter().map(|i| format!("k{i:05}")).collect(),
                            },
                        )),
                    })),
                    ..Default::default()
                }
            } else {
                longs(100, ids)
            }
        };
        let pks = |ids: Vec<i64>| {
            if strings {
                PkColumn::Str(ids.iter().map(|i| format!("k{i:05}")).collect())
            } else {
                PkColumn::Int(ids)
            }
        };
        let mut r = Rng(0x9e37_79b9_7f4a_7c15 ^ u64::from(strings));
        let mut d = ShardData::default();
        let mut row_id = 0i64;
        let mut checked = 0;
        for step in 0..120u64 {
            let ts = 10 + step * 10;
            let kind = if step == 60 { 9 } else { r.below(4) };
            match kind {
                0 if d.growing.len() < 12 => {
                    let rows = 200 + r.below(3000) as usize;
                    let mut ids: Vec<i64> = (0..rows).map(|_| r.below(6000) as i64).collect();
                    ids.sort_unstable();
                    ids.dedup();
                    if r.below(2) == 0 {
                        ids.reverse();
                    }
                    let row_ids = next_row_ids(&mut row_id, ids.len());
                    let batch = SegmentBatch {
                        row_ids,
                        timestamps: vec![ts; ids.len()],
                        fields: vec![key_column(ids.clone()), longs(101, ids)],
                    };
                    let chunk = Chunk::new(&schema, step as i64, 0, batch);
                    d.deletes.observe(&chunk);
                    d.growing.push(chunk);
                }
                9 => {
                    // More keys than the shard remembers (RECENT_KEYS): older caches
                    // are recomputed.
                    let gone: Vec<i64> = (100_000..170_000).collect();
                    let n = gone.len();
                    d.deletes.add(&pks(gone), &vec![ts; n]);
                }
                _ => {
                    let gone: Vec<i64> =
                        (0..1 + r.below(8)).map(|_| r.below(6000) as i64).collect();
                    let n = gone.len();
                    d.deletes.add(&pks(gone), &vec![ts; n]);
                }
            }
            for c in &d.growing {
                if r.below(3) == 0 {
                    continue;
                }
                let want: Vec<u32> = (0..c.rows)
                    .filter(|row| d.deletes.deleted(c.pks.get(*row), c.version(*row)))
                    .map(|row| row as u32)
                    .collect();
                assert_eq!(*c.hidden(&d.deletes), want, "step {step}, chunk {}", c.id);
                checked += 1;
            }
        }
        assert!(checked > 300, "only {checked} checks");
    }
}

/// A handoff records only the rows [`Deletes::news`] found, under read locks before it
/// takes the write lock: the deletes then hide exactly the rows that observing every row
/// hides, with other chunks observed between the scan and the record and old rows
/// loaded after newer versions of their keys; and a merged
/// segment (its sources' rows: same keys, row IDs and timestamps) brings no news at all.
#[test]
fn recording_only_the_news_of_a_segment_hides_what_observing_every_row_hides() {
    use super::chunk::Deletes;
    let schema = schema();
    let mut r = Rng(0x2545_f491_4f6c_dd1d);
    let mut row_id = 0i64;
    let (mut every, mut news_only) = (Deletes::default(), Deletes::default());
    let mut chunks: Vec<Chunk> = Vec::new();
    let chunk = |r: &mut Rng, row_id: &mut i64, id: i64, ts: u64| {
        let ids: Vec<i64> = (0..100 + r.below(2000))
            .map(|_| r.below(3000) as i64)
            .collect();
        let batch = SegmentBatch {
            row_ids: next_row_ids(row_id, ids.len()),
            timestamps: (0..ids.len() as u64).map(|i| ts + i % 3).collect(),
            fields: vec![longs(100, ids.clone()), longs(101, ids)],
        };
        Chunk::new(&schema, id, 0, batch)
    };
    let merged = |parts: &[&Chunk], id: i64| {
        let (mut row_ids, mut timestamps, mut ids) = (Vec::new(), Vec::new(), Vec::new());
        for c in parts {
            for row in 0..c.rows {
                let (ts, rid) = c.version(row);
                row_ids.push(rid);
                timestamps.push(ts);
                ids.push(match &c.pks {
                    PkColumn::Int(k) => k[row],
                    PkColumn::Str(_) => unreachable!("Int64 keys"),
                });
            }
        }
        let batch = SegmentBatch {
            row_ids,
            timestamps,
            fields: vec![longs(100, ids.clone()), longs(101, ids)],
        };
        Chunk::new(&schema, id, 0, batch)
    };
    // Sources whose keys were written once, then their merge: no news.
    let mut fresh = Deletes::default();
    let sources: Vec<Chunk> = (0..2)
        .map(|i| {
            let ids: Vec<i64> = (i * 500..(i + 1) * 500).collect();
            let batch = SegmentBatch {
                row_ids: next_row_ids(&mut row_id, ids.len()),
                timestamps: vec![5; ids.len()],
                fields: vec![longs(100, ids.clone()), longs(101, ids)],
            };
            Chunk::new(&schema, 900 + i, 0, batch)
        })
        .collect();
    sources.iter().for_each(|c| fresh.observe(c));
    let m = merged(&[&sources[0], &sources[1]], 902);
    let news = fresh.news(&m, 0..m.rows);
    assert!(
        news.is_empty(),
        "a merge brought {} rows of news",
        news.len()
    );
    for step in 0..40i64 {
        let ts = 10 + step as u64 * 10;
        let new = if step >= 3 && r.below(3) == 0 {
            let (a, b) = (r.below(chunks.len() as u64), r.below(chunks.len() as u64));
            merged(&[&chunks[a as usize], &chunks[b as usize]], step)
        } else if r.below(4) == 0 {
            // A sealed segment of old rows loaded after newer versions of its keys came
            // from the log.
            chunk(&mut r, &mut row_id, step, 1)
        } else {
            chunk(&mut r, &mut row_id, step, ts)
        };
        // The scan, in pieces; then another chunk arrives (a log message); then the
        // write lock records the news.
        let pieces: Vec<_> = (0..new.rows)
            .step_by(500)
            .map(|s| news_only.news(&new, s..(s + 500).min(new.rows)))
            .collect();
        let between = chunk(&mut r, &mut row_id, 1000 + step, ts + 5);
        news_only.observe(&between);
        every.observe(&between);
        news_only.observe_news(&new, &pieces);
        every.observe(&new);
        if r.below(2) == 0 {
            let gone: Vec<i64> = (0..1 + r.below(20)).map(|_| r.below(3000) as i64).collect();
            let n = gone.len();
            every.add(&PkColumn::Int(gone.clone()), &vec![ts + 7; n]);
            news_only.add(&PkColumn::Int(gone), &vec![ts + 7; n]);
        }
        // The same changes were recorded: a chunk's cache of hidden rows, kept by these
        // versions (D1), follows either alike.
        assert_eq!(news_only.version, every.version, "step {step}");
        chunks.push(new);
        chunks.push(between);
        for c in &chunks {
            let hidden = |d: &Deletes| -> Vec<usize> {
                (0..c.rows)
                    .filter(|row| d.deleted(c.pks.get(*row), c.version(*row)))
                    .collect()
            };
            assert_eq!(
                hidden(&news_only),
                hidden(&every),
                "step {step}, chunk {}",
                c.id
            );
        }
    }
}
