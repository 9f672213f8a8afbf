//! Rows a querynode holds: a [`Chunk`] is a sealed segment (loaded from its Parquet file,
//! with its vector index once built) or one insert message of growing data; deletes are
//! kept per shard by primary key ([`Deletes`]).

use std::collections::{HashMap, VecDeque};
use std::sync::{Arc, Mutex, OnceLock};

use crate::analyzer::TextIndex;
use crate::expr::{Bounds, Columns, PathColumn, Step, Value};
use crate::geometry::GeoColumn;
use crate::index::rtree::RTreeIndex;
use crate::index::scalar::ScalarIndex;
use crate::index::sparse::SparseRows;
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

impl<'a> Pk<'a> {
    /// The key as a filter value.
    pub fn value(self) -> Value<'a> {
        match self {
            Pk::Int(i) => Value::Int(i),
            Pk::Str(s) => Value::Str(s.into()),
        }
    }
}

/// A row's version: its timestamp, then its row ID (the rows of one request share the
/// timestamp, and a later row of the request has a larger ID).
pub type Version = (u64, i64);

/// A delete at `ts` hides every row of its key written before `ts`; the rows an upsert
/// writes at the same `ts` as its delete are spared.
fn delete_mark(ts: u64) -> Version {
    (ts, i64::MIN)
}

/// Which rows of a shard are hidden, by key: a row is hidden when its key has a mark
/// above the row's version. A delete at `ts` marks `(ts, MIN)`; a key written more than
/// once is marked with its newest version, so only the newest row of a key is seen
/// (Milvus serves the newest version of a key). Marks only grow (the maximum is kept), so
/// applying a delete or a row twice (from the log and again from a segment) changes
/// nothing.
///
/// Invariant (D1): a hidden row stays hidden (its version is fixed and its key's mark
/// only grows), so the rows hidden at a later version are those hidden at an earlier one
/// plus rows of the keys whose marks were raised in between: [`Self::raised_since`]
/// lists those keys while the changes are recent, which lets a chunk bring its cache of
/// hidden rows up to date by looking up those keys instead of every row
/// ([`Chunk::hidden`]).
#[derive(Debug)]
pub struct Deletes {
    ints: HashMap<i64, Version>,
    strs: HashMap<String, Version>,
    /// The newest version of every key seen, to find keys written more than once.
    newest_ints: HashMap<i64, Version>,
    newest_strs: HashMap<String, Version>,
    /// Bumped by every change that raises a mark (caches of hidden rows compare it).
    pub version: u64,
    /// Which `Deletes` this is (caches made for another one, whose versions count
    /// separately, are never taken for this one's).
    id: u64,
    /// The keys each recent change raised, oldest first, with the version it made:
    /// at most [`RECENT_KEYS`] keys in all (older changes are dropped first).
    recent: VecDeque<Raised>,
    recent_keys: usize,
}

/// The rows of a chunk whose keys a [`Deletes`] has not seen at their versions
/// ([`Deletes::news`]).
#[derive(Debug)]
pub struct News {
    deletes: u64,
    rows: Vec<u32>,
}

impl News {
    /// How many rows are news.
    pub fn len(&self) -> usize {
        self.rows.len()
    }

    /// Whether no row is.
    pub fn is_empty(&self) -> bool {
        self.rows.is_empty()
    }
}

/// The keys one change raised marks of, and the version it made.
#[derive(Debug, Default)]
struct Raised {
    version: u64,
    ints: Vec<i64>,
    strs: Vec<String>,
}

impl Raised {
    fn len(&self) -> usize {
        self.ints.len() + self.strs.len()
    }
}

/// How many raised keys a shard remembers ([`Deletes::raised_since`]): a cache of hidden
/// rows older than the changes they cover is recomputed over every row.
const RECENT_KEYS: usize = 1 << 16;

impl Default for Deletes {
    fn default() -> Deletes {
        static IDS: std::sync::atomic::AtomicU64 = std::sync::atomic::AtomicU64::new(1);
        Deletes {
            ints: HashMap::new(),
            strs: HashMap::new(),
            newest_ints: HashMap::new(),
            newest_strs: HashMap::new(),
            version: 0,
            id: IDS.fetch_add(1, std::sync::atomic::Ordering::Relaxed),
            recent: VecDeque::new(),
            recent_keys: 0,
        }
    }
}

/// Raises `k`'s mark to `v`; whether it rose (D1: marks only grow).
fn raise<K: std::hash::Hash + Eq>(map: &mut HashMap<K, Version>, k: K, v: Version) -> bool {
    match map.entry(k) {
        std::collections::hash_map::Entry::Occupied(mut e) if *e.get() < v => {
            e.insert(v);
            true
        }
        std::collections::hash_map::Entry::Occupied(_) => false,
        std::collections::hash_map::Entry::Vacant(e) => {
            e.insert(v);
            true
        }
    }
}

impl Deletes {
    /// Records deletes of `pks` at `timestamps` (one per key).
    pub fn add(&mut self, pks: &PkColumn, timestamps: &[u64]) {
        let mut raised = Raised::default();
        for (i, ts) in timestamps.iter().enumerate().take(pks.len()) {
            match pks {
                PkColumn::Int(v) => {
                    if raise(&mut self.ints, v[i], delete_mark(*ts)) {
                        raised.ints.push(v[i]);
                    }
                }
                PkColumn::Str(v) => {
                    if raise(&mut self.strs, v[i].clone(), delete_mark(*ts)) {
                        raised.strs.push(v[i].clone());
                    }
                }
            }
        }
        self.record(raised);
    }

    /// Records the rows of `c`: a key already seen with another version gets a mark at
    /// its newest version, which hides its older rows.
    pub fn observe(&mut self, c: &Chunk) {
        self.observe_rows(c, 0..c.rows);
    }

    /// The rows of `rows` (of `c`) that [`Self::observe`] would change something for:
    /// those whose key was not seen at the row's own version. Read-only, so it runs under
    /// a read lock while searches go on; [`Self::observe_news`] then records only these
    /// under the write lock. A merged segment's rows are its sources' rows (same keys,
    /// same versions): none is new, and its handoff holds the write lock for no scan.
    ///
    /// Why skipping the others is safe: entries of the newest-version maps are never
    /// removed and only grow, so a key seen at the row's version `v` is, by the time the
    /// write lock is taken, at some `n >= v`; if `n > v`, observing the row of `n` raised
    /// the key's mark to `n` already (marks only grow, D1), so the skipped row would
    /// have changed nothing either.
    pub fn news(&self, c: &Chunk, rows: std::ops::Range<usize>) -> News {
        let fresh = |row: usize| {
            let v = c.version(row);
            let newest = match &c.pks {
                PkColumn::Int(keys) => self.newest_ints.get(&keys[row]),
                PkColumn::Str(keys) => self.newest_strs.get(&keys[row]),
            };
            newest != Some(&v)
        };
        News {
            deletes: self.id,
            rows: rows
                .filter(|row| fresh(*row))
                .map(|row| row as u32)
                .collect(),
        }
    }

    /// Records the rows [`Self::news`] found (of these deletes; for others, every row).
    pub fn observe_news(&mut self, c: &Chunk, news: &[News]) {
        if news.iter().any(|n| n.deletes != self.id) {
            return self.observe(c);
        }
        let rows = news.iter().flat_map(|n| n.rows.iter().map(|r| *r as usize));
        self.observe_rows(c, rows);
    }

    fn observe_rows(&mut self, c: &Chunk, rows: impl Iterator<Item = usize>) {
        let mut raised = Raised::default();
        for row in rows {
            let v = c.version(row);
            match &c.pks {
                PkColumn::Int(keys) => {
                    let k = keys[row];
                    if let Some(n) = seen(&mut self.newest_ints, k, v) {
                        if raise(&mut self.ints, k, n) {
                            raised.ints.push(k);
                        }
                    }
                }
                PkColumn::Str(keys) => {
                    let k = &keys[row];
                    let newest = match self.newest_strs.get_mut(k) {
                        Some(n) => repeat(n, v),
                        None => {
                            self.newest_strs.insert(k.clone(), v);
                            None
                        }
                    };
                    if let Some(n) = newest {
                        if raise(&mut self.strs, k.clone(), n) {
                            raised.strs.push(k.clone());
                        }
                    }
                }
            }
        }
        self.record(raised);
    }

    /// A change that raised the marks of `raised`'s keys: a new version, remembered
    /// with its keys (the oldest changes forgotten past [`RECENT_KEYS`] keys).
    fn record(&mut self, mut raised: Raised) {
        let keys = raised.len();
        if keys == 0 {
            return;
        }
        self.version += 1;
        raised.version = self.version;
        self.recent_keys += keys;
        self.recent.push_back(raised);
        while self.recent_keys > RECENT_KEYS {
            let Some(old) = self.recent.pop_front() else {
                break;
            };
            self.recent_keys -= old.len();
        }
    }

    /// The keys whose marks were raised after `version` of these deletes, when every
    /// change since is still remembered and they are at most `most` (None: too old,
    /// made for other deletes, or too many).
    fn raised_since(&self, id: u64, version: u64, most: usize) -> Option<Vec<Pk<'_>>> {
        if id != self.id || version > self.version {
            return None;
        }
        if version == self.version {
            return Some(Vec::new());
        }
        let first = self.recent.front()?;
        if first.version > version + 1 {
            return None;
        }
        let changes = || self.recent.iter().filter(|c| c.version > version);
        let count: usize = changes().map(Raised::len).sum();
        if count > most {
            return None;
        }
        Some(
            changes()
                .flat_map(|c| {
                    c.ints
                        .iter()
                        .map(|k| Pk::Int(*k))
                        .chain(c.strs.iter().map(|k| Pk::Str(k.as_str())))
                })
                .collect(),
        )
    }

    /// Whether a row of key `pk` with version `v` is hidden.
    pub fn deleted(&self, pk: Pk<'_>, v: Version) -> bool {
        let d = match pk {
            Pk::Int(i) => self.ints.get(&i),
            Pk::Str(s) => self.strs.get(s),
        };
        d.is_some_and(|d| *d > v)
    }

    /// Whether no row is hidden.
    pub fn is_empty(&self) -> bool {
        self.ints.is_empty() && self.strs.is_empty()
    }
}

/// Records version `v` of an Int64 key; its newest version when it was seen before with
/// another version.
fn seen(newest: &mut HashMap<i64, Version>, k: i64, v: Version) -> Option<Version> {
    match newest.get_mut(&k) {
        Some(n) => repeat(n, v),
        None => {
            newest.insert(k, v);
            None
        }
    }
}

/// A key seen again with version `v`: the newest version, unless it is the same row.
fn repeat(n: &mut Version, v: Version) -> Option<Version> {
    if *n == v {
        return None;
    }
    *n = (*n).max(v);
    Some(*n)
}

/// The text indexes of the `enable_match` fields among `fields`. A field whose analyzer
/// does not build (only possible for a schema written before the check at create) gets
/// none, and its TEXT_MATCH is refused when compiled.
fn text_indexes(schema: &CollectionSchema, fields: &[FieldData]) -> HashMap<i64, TextIndex> {
    let mut out = HashMap::new();
    for f in &schema.fields {
        let Some(params) = crate::schema::match_analyzer(f) else {
            continue;
        };
        let Ok(mut analyzer) = crate::analyzer::cached(params) else {
            continue;
        };
        let Some(col) = fields.iter().find(|c| c.field_id == f.field_id) else {
            continue;
        };
        if let Some(field_data::Field::Scalars(s)) = &col.field {
            if let Some(scalar_field::Data::StringData(d)) = &s.data {
                let texts = d.data.iter().enumerate().map(|(i, t)| {
                    let valid = col.valid_data.get(i).copied().unwrap_or(true);
                    valid.then_some(t.as_str())
                });
                out.insert(f.field_id, TextIndex::build(&mut analyzer, texts));
            }
        }
    }
    out
}

/// A sparse vector column parsed for search, with its BM25 term statistics made on the
/// first BM25 search.
#[derive(Debug)]
pub struct SparseColumn {
    /// The rows.
    pub rows: SparseRows,
    stats: OnceLock<TermStats>,
}

/// The rows holding each dimension (term) and the total of the rows' lengths.
#[derive(Debug, Default)]
pub struct TermStats {
    /// Rows holding each term.
    pub df: HashMap<u32, u32>,
    /// The sum of the rows' lengths.
    pub total_len: f64,
}

impl SparseColumn {
    /// The column's term statistics.
    pub fn stats(&self) -> &TermStats {
        self.stats.get_or_init(|| {
            let mut t = TermStats::default();
            for r in 0..self.rows.len() {
                let (dims, values) = self.rows.row(r);
                for d in dims {
                    *t.df.entry(*d).or_default() += 1;
                }
                t.total_len += values.iter().map(|x| f64::from(*x)).sum::<f64>();
            }
            t
        })
    }
}

/// The sparse vector columns among `fields`, parsed.
fn sparse_columns(fields: &[FieldData]) -> HashMap<i64, SparseColumn> {
    let mut out = HashMap::new();
    for f in fields {
        if let Some(field_data::Field::Vectors(v)) = &f.field {
            if let Some(vector_field::Data::SparseFloatVector(s)) = &v.data {
                let col = SparseColumn {
                    rows: SparseRows::from_contents(&s.contents),
                    stats: OnceLock::new(),
                };
                out.insert(f.field_id, col);
            }
        }
    }
    out
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
    /// Each row's ID.
    pub row_ids: Vec<i64>,
    /// Each row's primary key.
    pub pks: PkColumn,
    /// The columns.
    pub fields: Vec<FieldData>,
    /// The smallest and largest value of each flat scalar column, by field ID: a
    /// filter they rule out skips the chunk, a query with a limit skips chunks whose
    /// smallest key is past the keys it holds.
    pub bounds: HashMap<i64, Bounds>,
    /// The primary key's field ID.
    pk_field: i64,
    by_id: HashMap<i64, usize>,
    json: HashMap<i64, Vec<serde_json::Value>>,
    /// The values of the JSON paths filters have read, by kind, most recently made
    /// last: made from `json` on a path's first test and kept for the next ones (at
    /// most [`PATHS_KEPT`]; the oldest goes first).
    paths: Mutex<Vec<KeptPath>>,
    /// The text index of every VARCHAR field with `enable_match`, made with the chunk
    /// (Milvus makes its text index at load and insert too).
    text: HashMap<i64, TextIndex>,
    /// Every sparse vector column, parsed for search.
    sparse: HashMap<i64, SparseColumn>,
    /// The rows the shard's deletes hide, for the deletes (their ID) and the
    /// [`Deletes::version`] it was computed at (brought up to date when they change,
    /// shared by every search until then).
    hidden: Mutex<Option<HiddenAt>>,
    /// The rows in primary-key order, made on the first key lookup (None: the rows are
    /// stored in key order already, as ordered inserts leave them).
    pk_order: OnceLock<Option<Vec<u32>>>,
    /// Scalar indexes of sealed segments' columns, by field ID and JSON path (object
    /// keys; empty for a whole field), each checked to fit its column when attached.
    scalar: HashMap<i64, PathIndexes>,
    /// Every GEOMETRY column, parsed with the chunk (as `json`).
    geo: HashMap<i64, GeoColumn>,
    /// RTREE indexes of sealed segments' GEOMETRY columns, each checked to fit (R1).
    rtree: HashMap<i64, Arc<RTreeIndex>>,
}

/// How many JSON paths' values a chunk keeps ([`Chunk::json_path`]): the paths
/// filters read are few, each is one flat column per kind of value (about 9 bytes a
/// row for numbers), and a path dropped for a newer one is made again when read again.
const PATHS_KEPT: usize = 8;

/// The rows a chunk's shard's deletes hide: the deletes' ID, their version, the rows.
type HiddenAt = (u64, u64, Arc<Vec<u32>>);

/// A JSON path's values a chunk keeps: the field's ID, the path, the values.
type KeptPath = (i64, Vec<Step>, Arc<PathColumn>);

/// A field's scalar indexes by JSON path (object keys; empty for the whole field).
type PathIndexes = Vec<(Vec<String>, Arc<ScalarIndex>)>;

impl Columns for Chunk {
    fn column(&self, field_id: i64) -> Option<&FieldData> {
        self.by_id.get(&field_id).map(|i| &self.fields[*i])
    }

    fn json(&self, field_id: i64, row: usize) -> Option<&serde_json::Value> {
        self.json.get(&field_id).and_then(|v| v.get(row))
    }

    fn text_index(&self, field_id: i64) -> Option<&TextIndex> {
        self.text.get(&field_id)
    }

    fn geometries(&self, field_id: i64) -> Option<&GeoColumn> {
        self.geo.get(&field_id)
    }

    fn rtree(&self, field_id: i64) -> Option<&RTreeIndex> {
        self.rtree.get(&field_id).map(Arc::as_ref)
    }

    fn sorted(&self, field_id: i64, keys: &[String]) -> Option<&ScalarIndex> {
        self.scalar
            .get(&field_id)?
            .iter()
            .find(|(k, _)| k == keys)
            .map(|(_, i)| i.as_ref())
    }

    fn json_path(&self, field_id: i64, path: &[Step]) -> Option<Arc<PathColumn>> {
        let docs = self.json.get(&field_id)?;
        let kept = |paths: &Vec<KeptPath>| {
            paths
                .iter()
                .find(|(id, p, _)| *id == field_id && p == path)
                .map(|(.., v)| v.clone())
        };
        if let Some(v) = kept(&self.paths.lock().unwrap_or_else(|e| e.into_inner())) {
            return Some(v);
        }
        // Made outside the lock: tests of other paths go on meanwhile (two tests of a
        // new path at once may both make it; one is kept).
        let valid = &self.column(field_id)?.valid_data;
        let made = Arc::new(PathColumn::of(docs, valid, path));
        let mut paths = self.paths.lock().unwrap_or_else(|e| e.into_inner());
        if let Some(v) = kept(&paths) {
            return Some(v);
        }
        if paths.len() >= PATHS_KEPT {
            paths.remove(0);
        }
        paths.push((field_id, path.to_vec(), made.clone()));
        Some(made)
    }
}

impl Chunk {
    /// A chunk of `batch` (rows of `schema`).
    /// Vectors of every dense type are held as words (`schema::vectors`).
    pub fn new(
        schema: &CollectionSchema,
        id: i64,
        partition: i64,
        mut batch: SegmentBatch,
    ) -> Chunk {
        let rows = batch.rows();
        batch
            .fields
            .iter_mut()
            .for_each(crate::schema::vectors::to_words);
        let pks = PkColumn::of(schema, &batch.fields);
        let pk_field = schema
            .fields
            .iter()
            .find(|f| f.is_primary_key)
            .map_or(-1, |f| f.field_id);
        let bounds = batch
            .fields
            .iter()
            .filter_map(|f| Bounds::of(f).map(|b| (f.field_id, b)))
            .collect();
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
        let geo = batch
            .fields
            .iter()
            .filter_map(|f| match &f.field {
                Some(field_data::Field::Scalars(crate::proto::schema::ScalarField {
                    data: Some(scalar_field::Data::GeometryWktData(d)),
                })) => Some((f.field_id, GeoColumn::of(&d.data, &f.valid_data))),
                _ => None,
            })
            .collect();
        let text = text_indexes(schema, &batch.fields);
        let sparse = sparse_columns(&batch.fields);
        Chunk {
            id,
            partition,
            rows,
            timestamps: batch.timestamps,
            row_ids: batch.row_ids,
            pks,
            fields: batch.fields,
            bounds,
            pk_field,
            by_id,
            json,
            paths: Mutex::new(Vec::new()),
            text,
            sparse,
            hidden: Mutex::new(None),
            pk_order: OnceLock::new(),
            scalar: HashMap::new(),
            geo,
            rtree: HashMap::new(),
        }
    }

    /// Whether `index` is an RTREE of the GEOMETRY column `field_id` (R1), in O(rows).
    pub fn rtree_fits(&self, field_id: i64, index: &RTreeIndex) -> bool {
        self.geo
            .get(&field_id)
            .is_some_and(|g| g.len() == self.rows && index.fits(g))
    }

    /// Makes spatial filters on `field_id` take their candidates from `index`, which
    /// [`Self::rtree_fits`] accepted.
    pub fn attach_rtree(&mut self, field_id: i64, index: Arc<RTreeIndex>) {
        self.rtree.insert(field_id, index);
    }

    /// Whether `index` (a scalar index build of this segment) is an index of the column
    /// `field_id` (`keys` empty; `ScalarIndex::fits`) or of its JSON path `keys`
    /// (`ScalarIndex::fits_json`), in O(rows).
    pub fn scalar_index_fits(&self, field_id: i64, keys: &[String], index: &ScalarIndex) -> bool {
        let Some(col) = self.column(field_id) else {
            return false;
        };
        if self.rows != index.rows() {
            return false;
        }
        match (index.cast(), self.json.get(&field_id)) {
            (None, _) => keys.is_empty() && index.fits(col),
            (Some(_), Some(docs)) => {
                index.fits_json(docs, |r| col.valid_data.get(r) != Some(&false), keys)
            }
            (Some(_), None) => false,
        }
    }

    /// Makes filters on `field_id` (at the JSON path `keys`) answer from `index`, which
    /// [`Self::scalar_index_fits`] accepted.
    pub fn attach_scalar_index(
        &mut self,
        field_id: i64,
        keys: Vec<String>,
        index: Arc<ScalarIndex>,
    ) {
        let list = self.scalar.entry(field_id).or_default();
        list.retain(|(k, _)| *k != keys);
        list.push((keys, index));
    }

    /// How many of its columns and JSON paths filters answer from a scalar index (RTREE
    /// included).
    pub fn scalar_indexes(&self) -> usize {
        self.scalar.values().map(Vec::len).sum::<usize>() + self.rtree.len()
    }

    /// The primary key's field ID.
    pub fn pk_field(&self) -> i64 {
        self.pk_field
    }

    /// The rows whose primary key is one of `keys` (by binary search in key order, not a
    /// scan); None when a key is of a kind that needs the general comparison (a float).
    pub fn rows_of_keys(&self, keys: &[Value<'_>]) -> Option<Vec<u32>> {
        if self.pks.len() != self.rows {
            return None;
        }
        let mut out = Vec::new();
        for k in keys {
            let want = match (k, &self.pks) {
                (Value::Int(i), PkColumn::Int(_)) => Pk::Int(*i),
                (Value::Str(s), PkColumn::Str(_)) => Pk::Str(s.as_ref()),
                // A string never equals an integer key, nor an integer a string key.
                (Value::Str(_), PkColumn::Int(_)) | (Value::Int(_), PkColumn::Str(_)) => continue,
                _ => return None,
            };
            self.rows_with(want, &mut out);
        }
        Some(out)
    }

    /// Appends the rows whose primary key is `want` to `out`, found by binary search in
    /// key order (the order made on the first lookup, unless the rows are in key order).
    fn rows_with(&self, want: Pk<'_>, out: &mut Vec<u32>) {
        let n = self.pks.len().min(self.rows);
        let order = self.pk_order.get_or_init(|| {
            let sorted = (1..n).all(|i| self.pks.get(i - 1) <= self.pks.get(i));
            (!sorted).then(|| {
                let mut rows: Vec<u32> = (0..n as u32).collect();
                rows.sort_by(|a, b| self.pks.get(*a as usize).cmp(&self.pks.get(*b as usize)));
                rows
            })
        });
        let row_at = |i: usize| order.as_ref().map_or(i, |o| o[i] as usize);
        let mut lo = 0;
        let mut hi = n;
        while lo < hi {
            let mid = lo + (hi - lo) / 2;
            if self.pks.get(row_at(mid)) < want {
                lo = mid + 1;
            } else {
                hi = mid;
            }
        }
        let mut i = lo;
        while i < n && self.pks.get(row_at(i)) == want {
            out.push(row_at(i) as u32);
            i += 1;
        }
    }

    /// The smallest primary key (None: unknown, or no row).
    pub fn min_pk(&self) -> Option<&Value<'static>> {
        match self.bounds.get(&self.pk_field)? {
            Bounds::Range(lo, _) => Some(lo),
            Bounds::Empty => None,
        }
    }

    /// The rows `deletes` hide, ascending. Cached per chunk with the deletes' version;
    /// when they have changed since, the cache is brought up to date from the keys
    /// raised in between (D1: the rows hidden now are the cached ones plus rows of those
    /// keys that are hidden now), each found by binary search in key order, unless they
    /// are too many or too old, when every row is checked again.
    pub fn hidden(&self, deletes: &Deletes) -> Arc<Vec<u32>> {
        let mut cache = self.hidden.lock().unwrap_or_else(|e| e.into_inner());
        let update = cache.as_ref().and_then(|(id, version, rows)| {
            // A lookup costs about a binary search; past that many keys a pass over
            // every row is cheaper.
            let log = (usize::BITS - self.rows.leading_zeros()).max(1) as usize;
            let keys = deletes.raised_since(*id, *version, self.rows.saturating_sub(1) / log)?;
            Some((keys, rows))
        });
        let rows = match update {
            Some((keys, rows)) if keys.is_empty() => return rows.clone(),
            Some((keys, rows)) => {
                let mut fresh = Vec::new();
                for k in keys {
                    self.rows_with(k, &mut fresh);
                }
                fresh.retain(|r| {
                    deletes.deleted(self.pks.get(*r as usize), self.version(*r as usize))
                });
                if fresh.is_empty() {
                    rows.clone()
                } else {
                    let mut all: Vec<u32> = rows.iter().copied().chain(fresh).collect();
                    all.sort_unstable();
                    all.dedup();
                    Arc::new(all)
                }
            }
            None => Arc::new(
                (0..self.rows)
                    .filter(|r| deletes.deleted(self.pks.get(*r), self.version(*r)))
                    .map(|r| r as u32)
                    .collect(),
            ),
        };
        *cache = Some((deletes.id, deletes.version, rows.clone()));
        rows
    }

    /// The version of row `row`.
    pub fn version(&self, row: usize) -> Version {
        (
            self.timestamps[row],
            self.row_ids.get(row).copied().unwrap_or(0),
        )
    }

    /// The sparse vectors of `field_id`.
    pub fn sparse(&self, field_id: i64) -> Option<&SparseColumn> {
        self.sparse.get(&field_id)
    }

    /// The vectors of `field_id` as words, and the words a vector takes.
    pub fn vectors(&self, field_id: i64) -> Option<(&[f32], usize)> {
        let column = self.column(field_id)?;
        let enc = crate::schema::vectors::Encoding::of_code(column.r#type)?;
        match &column.field {
            Some(field_data::Field::Vectors(v)) => match &v.data {
                Some(vector_field::Data::FloatVector(f)) => {
                    Some((&f.data, enc.words(v.dim.max(1) as usize)))
                }
                _ => None,
            },
            _ => None,
        }
    }

    /// Frees the float vectors of `field_id` (their index keeps them); the column stays,
    /// empty, with its dim. Returns whether it did.
    pub fn drop_vectors(&mut self, field_id: i64) -> bool {
        self.take_vectors(field_id).is_some()
    }

    /// Moves the float vectors (as words) of `field_id` out, as [`Chunk::drop_vectors`]
    /// frees them: `None` when the column holds none.
    pub fn take_vectors(&mut self, field_id: i64) -> Option<Vec<f32>> {
        let i = self.by_id.get(&field_id)?;
        match &mut self.fields[*i].field {
            Some(field_data::Field::Vectors(v)) => match &mut v.data {
                Some(vector_field::Data::FloatVector(f)) if !f.data.is_empty() => {
                    Some(std::mem::take(&mut f.data))
                }
                _ => None,
            },
            _ => None,
        }
    }

    /// Bytes its rows take (roughly: vectors, sparse rows as sent and as parsed, fixed-size
    /// scalars, text indexes).
    pub fn memory_usage(&self) -> usize {
        let cols: usize = self
            .fields
            .iter()
            .map(|f| match &f.field {
                Some(field_data::Field::Vectors(v)) => match &v.data {
                    Some(vector_field::Data::FloatVector(a)) => a.data.len() * 4,
                    Some(vector_field::Data::SparseFloatVector(a)) => {
                        a.contents.iter().map(|r| r.len() + 24).sum()
                    }
                    _ => 0,
                },
                _ => self.rows * 8,
            })
            .sum();
        let sparse: usize = self.sparse.values().map(|c| c.rows.memory_usage()).sum();
        let text: usize = self.text.values().map(TextIndex::memory_usage).sum();
        let scalar: usize = self
            .scalar
            .values()
            .flatten()
            .map(|(_, i)| i.memory_usage())
            .sum();
        let paths: usize = self
            .paths
            .lock()
            .unwrap_or_else(|e| e.into_inner())
            .iter()
            .map(|(.., v)| v.memory_usage())
            .sum();
        let order = self
            .pk_order
            .get()
            .and_then(Option::as_ref)
            .map_or(0, |o| o.len() * 4);
        let geo: usize = self
            .geo
            .values()
            .map(GeoColumn::memory_usage)
            .sum::<usize>()
            + self.rtree.values().map(|x| x.memory_usage()).sum::<usize>();
        cols + sparse + text + scalar + paths + order + geo + self.rows * 24
    }
}
