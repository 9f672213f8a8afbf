//! Rows against a collection's schema: validation of insert and upsert columns as
//! pymilvus sends them (no field IDs, `$meta` as an extra JSON column, nullable columns
//! in the compact layout), with Milvus's error codes and messages; and routing of rows to
//! shards by primary key, with Milvus's hashes.
//!
//! A rejected request changes nothing: validation runs before anything is allocated or
//! written.

pub mod hash;
pub mod names;
pub mod properties;
pub mod rows;
pub mod vectors;

use crate::proto::common::Status;
use crate::proto::schema::{
    field_data, scalar_field, value_field, vector_field, BoolArray, CollectionSchema, DataType,
    DoubleArray, FieldData, FieldSchema, FloatArray, IntArray, JsonArray, LongArray, ScalarField,
    StringArray,
};
use crate::status::{code, error};

/// The dynamic field's name.
pub const META_FIELD: &str = "$meta";

/// The primary keys of a batch, in row order.
#[derive(Debug, Clone, PartialEq)]
pub enum Pks {
    /// Int64 keys.
    Int(Vec<i64>),
    /// VarChar keys.
    Str(Vec<String>),
}

impl Pks {
    /// How many keys.
    pub fn len(&self) -> usize {
        match self {
            Pks::Int(v) => v.len(),
            Pks::Str(v) => v.len(),
        }
    }

    /// True when there are none.
    pub fn is_empty(&self) -> bool {
        self.len() == 0
    }

    /// The first key that appears twice, as text.
    pub fn first_repeated(&self) -> Option<String> {
        fn first<T: std::hash::Hash + Eq + ToString>(v: &[T]) -> Option<String> {
            let mut seen = std::collections::HashSet::with_capacity(v.len());
            v.iter().find(|k| !seen.insert(*k)).map(ToString::to_string)
        }
        match self {
            Pks::Int(v) => first(v),
            Pks::Str(v) => first(v),
        }
    }

    /// The shard of row `i` among `shards` (Milvus's hash of the key).
    pub fn shard(&self, i: usize, shards: usize) -> usize {
        let h = match self {
            Pks::Int(v) => hash::hash_int64(v[i]),
            Pks::Str(v) => hash::hash_varchar(&v[i]),
        };
        h as usize % shards.max(1)
    }
}

/// The primary keys of `fields` (columns of `schema`), if its primary key column is there
/// and is Int64 or VarChar.
pub fn primary_keys(schema: &CollectionSchema, fields: &[FieldData]) -> Option<Pks> {
    let pk = schema.fields.iter().find(|f| f.is_primary_key)?;
    let col = fields
        .iter()
        .find(|f| f.field_id == pk.field_id || f.field_name == pk.name)?;
    match scalars(col) {
        Some(scalar_field::Data::LongData(a)) => Some(Pks::Int(a.data.clone())),
        Some(scalar_field::Data::StringData(a)) => Some(Pks::Str(a.data.clone())),
        _ => None,
    }
}

/// The partition-key field of `schema`, if it has one.
pub fn partition_key_field(schema: &CollectionSchema) -> Option<&FieldSchema> {
    schema.fields.iter().find(|f| f.is_partition_key)
}

/// The clustering-key field of `schema`, if it has one.
pub fn clustering_key_field(schema: &CollectionSchema) -> Option<&FieldSchema> {
    schema.fields.iter().find(|f| f.is_clustering_key)
}

/// A partition-key collection's partitions in key order: `_default_0`, `_default_1`, ...
/// (the names Milvus gives them), as (name, ID) pairs given in any order.
pub fn partition_key_partitions(parts: &[(String, i64)]) -> Vec<i64> {
    let mut numbered: Vec<(u64, i64)> = parts
        .iter()
        .filter_map(|(name, id)| Some((name.strip_prefix("_default_")?.parse().ok()?, *id)))
        .collect();
    numbered.sort_unstable();
    numbered.into_iter().map(|(_, id)| id).collect()
}

/// For each of `rows` rows, the index of its partition among `n` partition-key
/// partitions: Milvus's `HashKey2Partitions`, the key's shard hash modulo `n` (None when
/// the schema has no partition key or the columns lack it).
pub fn partition_key_slots(
    schema: &CollectionSchema,
    fields: &[FieldData],
    n: usize,
) -> Option<Vec<usize>> {
    let key = partition_key_field(schema)?;
    let col = fields.iter().find(|f| f.field_name == key.name)?;
    let Some(field_data::Field::Scalars(s)) = &col.field else {
        return None;
    };
    let n = n.max(1);
    match &s.data {
        Some(scalar_field::Data::LongData(v)) => Some(
            v.data
                .iter()
                .map(|k| hash::hash_int64(*k) as usize % n)
                .collect(),
        ),
        Some(scalar_field::Data::StringData(v)) => Some(
            v.data
                .iter()
                .map(|k| hash::hash_varchar(k) as usize % n)
                .collect(),
        ),
        _ => None,
    }
}

/// The types a grouping search can group by (Milvus 2.5's).
pub fn groupable(t: DataType) -> bool {
    matches!(
        t,
        DataType::Bool
            | DataType::Int8
            | DataType::Int16
            | DataType::Int32
            | DataType::Int64
            | DataType::VarChar
    )
}

/// A value of a groupable column as a grouping key (nulls form one group).
#[derive(Debug, Clone, PartialEq, Eq, Hash)]
pub enum GroupKey {
    /// A null.
    Null,
    /// A boolean.
    Bool(bool),
    /// An integer of any width.
    Int(i64),
    /// A string.
    Str(String),
}

/// Row `row` of the column `fd` (one value per row) as a grouping key.
pub fn group_key(fd: &FieldData, row: usize) -> GroupKey {
    use crate::proto::schema::scalar_field::Data;
    if fd.valid_data.get(row) == Some(&false) {
        return GroupKey::Null;
    }
    let Some(field_data::Field::Scalars(s)) = &fd.field else {
        return GroupKey::Null;
    };
    let key = match &s.data {
        Some(Data::BoolData(d)) => d.data.get(row).map(|b| GroupKey::Bool(*b)),
        Some(Data::IntData(d)) => d.data.get(row).map(|i| GroupKey::Int(i64::from(*i))),
        Some(Data::LongData(d)) => d.data.get(row).map(|i| GroupKey::Int(*i)),
        Some(Data::StringData(d)) => d.data.get(row).map(|v| GroupKey::Str(v.clone())),
        _ => None,
    };
    key.unwrap_or(GroupKey::Null)
}

/// Whether a data type is a vector type (a collection needs one; indexes on them are
/// vector indexes).
pub fn is_vector(t: DataType) -> bool {
    matches!(
        t,
        DataType::BinaryVector
            | DataType::FloatVector
            | DataType::Float16Vector
            | DataType::BFloat16Vector
            | DataType::SparseFloatVector
    )
}

/// A validated batch: one full-length column per schema field (schema order, field IDs
/// set, nulls expanded), and the primary keys (absent with autoID until allocated).
#[derive(Debug, Clone, PartialEq)]
pub struct Validated {
    /// Number of rows.
    pub rows: usize,
    /// One column per schema field.
    pub fields: Vec<FieldData>,
    /// The primary keys, `None` when the schema's autoID is to generate them.
    pub pks: Option<Pks>,
}

fn invalid(msg: impl Into<String>) -> Status {
    error(code::PARAMETER_INVALID, msg)
}

fn kind(t: i32) -> DataType {
    DataType::try_from(t).unwrap_or(DataType::None)
}

/// A field's type parameter `key` as given.
pub fn param<'a>(f: &'a FieldSchema, key: &str) -> Option<&'a str> {
    f.type_params
        .iter()
        .find(|kv| kv.key == key)
        .map(|kv| kv.value.as_str())
}

/// Whether a field's type parameter `key` is "true" (any case), as pymilvus sends flags.
pub fn flag(f: &FieldSchema, key: &str) -> bool {
    param(f, key).is_some_and(|v| v.eq_ignore_ascii_case("true"))
}

/// The analyzer parameters of a field whose text is matched (`enable_match`; empty: the
/// standard analyzer), None for any other field.
pub fn match_analyzer(f: &FieldSchema) -> Option<&str> {
    (matches!(kind(f.data_type), DataType::VarChar | DataType::String) && flag(f, "enable_match"))
        .then(|| param(f, "analyzer_params").unwrap_or(""))
}

/// The BM25 function writing field `output` (a sparse vector field), with its input
/// field: the text it is computed from.
pub fn bm25_source(schema: &CollectionSchema, output: i64) -> Option<&FieldSchema> {
    let out = schema.fields.iter().find(|f| f.field_id == output)?;
    let func = schema.functions.iter().find(|f| {
        f.r#type == crate::proto::schema::FunctionType::Bm25 as i32
            && f.output_field_names.contains(&out.name)
    })?;
    let input = func.input_field_names.first()?;
    schema.fields.iter().find(|f| &f.name == input)
}

/// The analyzer parameters of a text field a BM25 function reads (empty: standard).
pub fn analyzer_params(f: &FieldSchema) -> &str {
    param(f, "analyzer_params").unwrap_or("")
}

/// A vector field's `dim` type parameter (0 when it has none or it is not a number).
pub fn dim(f: &FieldSchema) -> i64 {
    type_param(f, "dim").unwrap_or(0)
}

fn type_param(f: &FieldSchema, key: &str) -> Option<i64> {
    param(f, key).and_then(|v| v.parse().ok())
}

fn scalars(fd: &FieldData) -> Option<&scalar_field::Data> {
    match &fd.field {
        Some(field_data::Field::Scalars(s)) => s.data.as_ref(),
        _ => None,
    }
}

/// Number of values a column carries (rows for scalars, vectors for vector columns).
fn values_len(f: &FieldSchema, fd: &FieldData) -> Option<usize> {
    use scalar_field::Data as S;
    if let Some(field_data::Field::Vectors(v)) = &fd.field {
        let dim = v.dim.max(1) as usize;
        return match v.data.as_ref()? {
            vector_field::Data::FloatVector(a) => Some(a.data.len() / dim),
            vector_field::Data::BinaryVector(b) => Some(b.len() * 8 / dim),
            vector_field::Data::Float16Vector(b) | vector_field::Data::Bfloat16Vector(b) => {
                Some(b.len() / 2 / dim)
            }
            vector_field::Data::SparseFloatVector(s) => Some(s.contents.len()),
        };
    }
    let _ = f;
    Some(match scalars(fd)? {
        S::BoolData(a) => a.data.len(),
        S::IntData(a) => a.data.len(),
        S::LongData(a) => a.data.len(),
        S::FloatData(a) => a.data.len(),
        S::DoubleData(a) => a.data.len(),
        S::StringData(a) => a.data.len(),
        S::BytesData(a) => a.data.len(),
        S::ArrayData(a) => a.data.len(),
        S::JsonData(a) => a.data.len(),
        S::GeometryData(a) => a.data.len(),
        S::GeometryWktData(a) => a.data.len(),
    })
}

/// Does the column's data member match the field's type (Int8/16/32 in `int_data`, ...)?
fn matches_type(f: &FieldSchema, fd: &FieldData) -> bool {
    use scalar_field::Data as S;
    let t = kind(f.data_type);
    match (&fd.field, t) {
        (Some(field_data::Field::Vectors(v)), _) => matches!(
            (v.data.as_ref(), t),
            (
                Some(vector_field::Data::FloatVector(_)),
                DataType::FloatVector
            ) | (
                Some(vector_field::Data::BinaryVector(_)),
                DataType::BinaryVector
            ) | (
                Some(vector_field::Data::Float16Vector(_)),
                DataType::Float16Vector
            ) | (
                Some(vector_field::Data::Bfloat16Vector(_)),
                DataType::BFloat16Vector
            ) | (
                Some(vector_field::Data::SparseFloatVector(_)),
                DataType::SparseFloatVector
            )
        ),
        (Some(field_data::Field::Scalars(_)), _) => matches!(
            (scalars(fd), t),
            (Some(S::BoolData(_)), DataType::Bool)
                | (
                    Some(S::IntData(_)),
                    DataType::Int8 | DataType::Int16 | DataType::Int32
                )
                | (Some(S::LongData(_)), DataType::Int64)
                | (Some(S::FloatData(_)), DataType::Float)
                | (Some(S::DoubleData(_)), DataType::Double)
                | (Some(S::StringData(_)), DataType::VarChar | DataType::String)
                | (Some(S::JsonData(_)), DataType::Json)
                | (Some(S::ArrayData(_)), DataType::Array)
                | (Some(S::GeometryWktData(_)), DataType::Geometry)
        ),
        (None, _) => false,
    }
}

/// Expands a compact nullable column (values only for valid rows) to full length, with
/// the type's zero value in null slots.
fn expand_nulls(fd: &mut FieldData, rows: usize) {
    use scalar_field::Data as S;
    let valid = fd.valid_data.clone();
    let Some(field_data::Field::Scalars(ScalarField { data: Some(d) })) = &mut fd.field else {
        return;
    };
    fn spread<T: Clone + Default>(v: &mut Vec<T>, valid: &[bool]) {
        let mut it = std::mem::take(v).into_iter();
        *v = valid
            .iter()
            .map(|ok| {
                if *ok {
                    it.next().unwrap_or_default()
                } else {
                    T::default()
                }
            })
            .collect();
    }
    let _ = rows;
    match d {
        S::BoolData(a) => spread(&mut a.data, &valid),
        S::IntData(a) => spread(&mut a.data, &valid),
        S::LongData(a) => spread(&mut a.data, &valid),
        S::FloatData(a) => spread(&mut a.data, &valid),
        S::DoubleData(a) => spread(&mut a.data, &valid),
        S::StringData(a) => spread(&mut a.data, &valid),
        S::BytesData(a) => spread(&mut a.data, &valid),
        S::JsonData(a) => spread(&mut a.data, &valid),
        S::ArrayData(a) => spread(&mut a.data, &valid),
        S::GeometryData(a) => spread(&mut a.data, &valid),
        S::GeometryWktData(a) => spread(&mut a.data, &valid),
    }
}

/// A full column of `rows` copies of the field's default value (or nulls).
fn default_column(f: &FieldSchema, rows: usize) -> Result<FieldData, Status> {
    use scalar_field::Data as S;
    use value_field::Data as V;
    let default = f.default_value.as_ref().and_then(|d| d.data.as_ref());
    let data = match (kind(f.data_type), default) {
        (DataType::Bool, Some(V::BoolData(b))) => S::BoolData(BoolArray {
            data: vec![*b; rows],
        }),
        (DataType::Int8 | DataType::Int16 | DataType::Int32, Some(V::IntData(x))) => {
            S::IntData(IntArray {
                data: vec![*x; rows],
            })
        }
        (DataType::Int64, Some(V::LongData(x))) => S::LongData(LongArray {
            data: vec![*x; rows],
        }),
        (DataType::Float, Some(V::FloatData(x))) => S::FloatData(FloatArray {
            data: vec![*x; rows],
        }),
        (DataType::Double, Some(V::DoubleData(x))) => S::DoubleData(DoubleArray {
            data: vec![*x; rows],
        }),
        (DataType::VarChar | DataType::String, Some(V::StringData(x))) => {
            S::StringData(StringArray {
                data: vec![x.clone(); rows],
            })
        }
        (DataType::Geometry, Some(V::StringData(x))) => {
            let (canonical, _) = crate::geometry::parse(x).map_err(|e| {
                invalid(format!(
                    "invalid default value for geometry field {}: {e}",
                    f.name
                ))
            })?;
            S::GeometryWktData(crate::proto::schema::GeometryWktArray {
                data: vec![canonical; rows],
            })
        }
        (DataType::Geometry, None) if f.nullable => {
            S::GeometryWktData(crate::proto::schema::GeometryWktArray {
                data: vec![String::new(); rows],
            })
        }
        (DataType::Bool, None) if f.nullable => S::BoolData(BoolArray {
            data: vec![false; rows],
        }),
        (DataType::Int8 | DataType::Int16 | DataType::Int32, None) if f.nullable => {
            S::IntData(IntArray {
                data: vec![0; rows],
            })
        }
        (DataType::Int64, None) if f.nullable => S::LongData(LongArray {
            data: vec![0; rows],
        }),
        (DataType::Float, None) if f.nullable => S::FloatData(FloatArray {
            data: vec![0.0; rows],
        }),
        (DataType::Double, None) if f.nullable => S::DoubleData(DoubleArray {
            data: vec![0.0; rows],
        }),
        (DataType::VarChar | DataType::String, None) if f.nullable => S::StringData(StringArray {
            data: vec![String::new(); rows],
        }),
        (DataType::Json, None) if f.nullable => S::JsonData(JsonArray {
            data: vec![Vec::new(); rows],
        }),
        _ => {
            return Err(invalid(format!(
                "field {} is missing from the insert data: every field without a default value \
                 or nullable must be given",
                f.name
            )))
        }
    };
    Ok(FieldData {
        r#type: f.data_type,
        field_name: f.name.clone(),
        field_id: f.field_id,
        valid_data: if default.is_none() {
            vec![false; rows]
        } else {
            vec![]
        },
        field: Some(field_data::Field::Scalars(ScalarField { data: Some(data) })),
        ..Default::default()
    })
}

/// Refuses vector data that is not whole vectors of the column's dim (Milvus's messages).
fn aligned(v: &crate::proto::schema::VectorField) -> Result<(), Status> {
    let dim = v.dim.max(1) as usize;
    let why = match &v.data {
        Some(vector_field::Data::FloatVector(a)) if !a.data.len().is_multiple_of(dim) => {
            format!(
                "the length({}) of float data should divide the dim({dim})",
                a.data.len()
            )
        }
        Some(vector_field::Data::BinaryVector(b)) if !(b.len() * 8).is_multiple_of(dim) => {
            format!(
                "the num({}) of all bits should divide the dim({dim})",
                b.len() * 8
            )
        }
        Some(vector_field::Data::Float16Vector(b)) if !b.len().is_multiple_of(2 * dim) => {
            format!(
                "the length({}) of float16 data should divide the dim({dim})",
                b.len()
            )
        }
        Some(vector_field::Data::Bfloat16Vector(b)) if !b.len().is_multiple_of(2 * dim) => {
            format!(
                "the length({}) of bfloat data should divide the dim({dim})",
                b.len()
            )
        }
        _ => return Ok(()),
    };
    Err(invalid(why))
}

/// Refuses NaN and infinite values in a float, float16 or bfloat16 vector column (and
/// half-float data of an odd length), with Milvus's messages.
fn finite(v: &crate::proto::schema::VectorField) -> Result<(), Status> {
    let halves = |b: &[u8], name: &str, sep: &str| -> Result<(), Status> {
        if !b.len().is_multiple_of(2) {
            return Err(invalid(format!(
                "The length of {name} {sep} not aligned to 2{}",
                if name == "float16" { "." } else { "" }
            )));
        }
        let bad = b.chunks_exact(2).any(|c| {
            let x = if name == "float16" {
                half::f16::from_le_bytes([c[0], c[1]]).to_f32()
            } else {
                half::bf16::from_le_bytes([c[0], c[1]]).to_f32()
            };
            !x.is_finite()
        });
        if bad {
            return Err(invalid(format!(
                "{name} vector contain nan or infinity value."
            )));
        }
        Ok(())
    };
    match &v.data {
        Some(vector_field::Data::FloatVector(a)) => match a.data.iter().find(|x| !x.is_finite()) {
            Some(x) => Err(invalid(format!(
                "value '{}' is not a number or infinity",
                if x.is_nan() {
                    "NaN"
                } else if *x > 0.0 {
                    "+Inf"
                } else {
                    "-Inf"
                }
            ))),
            None => Ok(()),
        },
        Some(vector_field::Data::Float16Vector(b)) => halves(b, "float16", "is"),
        Some(vector_field::Data::Bfloat16Vector(b)) => halves(b, "bfloat16", "in"),
        _ => Ok(()),
    }
}

/// Checks one column against its field and returns it full-length with its field ID.
fn check_column(f: &FieldSchema, mut fd: FieldData, rows: usize) -> Result<FieldData, Status> {
    let t = kind(f.data_type);
    if !matches_type(f, &fd) {
        return Err(invalid(format!(
            "field {}: the data does not match the field type {} (got a {} column)",
            f.name,
            t.as_str_name(),
            kind(fd.r#type).as_str_name()
        )));
    }
    if let Some(field_data::Field::Vectors(v)) = &fd.field {
        if t != DataType::SparseFloatVector {
            let want = type_param(f, "dim").unwrap_or(0);
            if v.dim != want {
                // Milvus words it by the floats' count against the schema's dim.
                let floats = match &v.data {
                    Some(vector_field::Data::FloatVector(a)) => {
                        format!(
                            ": the length({}) of float data should divide the dim({want})",
                            a.data.len()
                        )
                    }
                    _ => {
                        return Err(invalid(format!(
                            "the dim ({}) of field data({}) is not equal to schema dim ({want}): invalid parameter[expected={want}][actual={}]",
                            v.dim, f.name, v.dim
                        )))
                    }
                };
                return Err(invalid(format!(
                    "the dim ({}) of field data ({}) is not equal to schema dim ({want}){floats}",
                    v.dim, f.name
                )));
            }
            aligned(v)?;
            finite(v)?;
        } else if let Some(vector_field::Data::SparseFloatVector(a)) = &v.data {
            for row in &a.contents {
                crate::index::sparse::validate_row(row).map_err(invalid)?;
            }
        }
    }
    let n = values_len(f, &fd).unwrap_or(0);
    if !fd.valid_data.is_empty() {
        if !f.nullable && f.default_value.is_none() {
            return Err(invalid(format!(
                "field {} is not nullable but null values were given",
                f.name
            )));
        }
        if fd.valid_data.len() != rows {
            return Err(invalid(format!(
                "field {}: {} validity flags for {rows} rows",
                f.name,
                fd.valid_data.len()
            )));
        }
        let valid = fd.valid_data.iter().filter(|v| **v).count();
        if n == valid && n != rows {
            expand_nulls(&mut fd, rows);
        } else if n != rows {
            return Err(invalid(format!(
                "the num_rows ({n}) of field ({}) is not equal to passed num_rows ({rows})",
                f.name
            )));
        }
        if f.default_value.is_some() {
            fill_defaults(f, &mut fd)?;
        }
    } else if n != rows {
        return Err(invalid(format!(
            "the num_rows ({n}) of field ({}) is not equal to passed num_rows ({rows})",
            f.name
        )));
    }
    if matches!(t, DataType::VarChar | DataType::String) {
        let max = type_param(f, "max_length").unwrap_or(65_535) as usize;
        if let Some(scalar_field::Data::StringData(a)) = scalars(&fd) {
            if let Some((i, s)) = a.data.iter().enumerate().find(|(_, s)| s.len() > max) {
                return Err(invalid(format!(
                    "length of varchar field {} exceeds max length, row number: {i}, length: {}, max length: {max}: invalid parameter",
                    f.name,
                    s.len()
                )));
            }
        }
    }
    if t == DataType::Json {
        if let Some(scalar_field::Data::JsonData(a)) = scalars(&fd) {
            for (i, raw) in a.data.iter().enumerate() {
                let null = fd.valid_data.get(i).is_some_and(|v| !v);
                if !null && serde_json::from_slice::<serde_json::Value>(raw).is_err() {
                    return Err(invalid(format!(
                        "field {}: row {i} is not valid JSON",
                        f.name
                    )));
                }
            }
        }
    }
    if t == DataType::Geometry {
        canonical_geometries(f, &mut fd)?;
    }
    fd.field_id = f.field_id;
    fd.field_name = f.name.clone();
    fd.r#type = f.data_type;
    Ok(fd)
}

/// Checks every set row of a GEOMETRY column is one WKT geometry and stores it in the
/// canonical text (`geometry`'s G1), refused in Milvus's words otherwise.
fn canonical_geometries(f: &FieldSchema, fd: &mut FieldData) -> Result<(), Status> {
    let valid = fd.valid_data.clone();
    let Some(field_data::Field::Scalars(ScalarField {
        data: Some(scalar_field::Data::GeometryWktData(a)),
    })) = &mut fd.field
    else {
        return Ok(());
    };
    for (i, text) in a.data.iter_mut().enumerate() {
        if valid.get(i) == Some(&false) {
            continue;
        }
        let (canonical, _) = crate::geometry::parse(text).map_err(|e| {
            invalid(format!(
                "invalid Geometry data, transform to wkb failed: {e} (field {}, row {i}): invalid parameter",
                f.name
            ))
        })?;
        *text = canonical;
    }
    Ok(())
}

/// Puts the field's default value into the null slots (a field with a default value
/// stores no nulls).
fn fill_defaults(f: &FieldSchema, fd: &mut FieldData) -> Result<(), Status> {
    let full = default_column(f, fd.valid_data.len())?;
    let valid = std::mem::take(&mut fd.valid_data);
    use scalar_field::Data as S;
    let (
        Some(field_data::Field::Scalars(ScalarField { data: Some(d) })),
        Some(field_data::Field::Scalars(ScalarField { data: Some(def) })),
    ) = (&mut fd.field, full.field)
    else {
        return Ok(());
    };
    fn merge<T: Clone>(v: &mut [T], def: &[T], valid: &[bool]) {
        for (i, ok) in valid.iter().enumerate() {
            if !ok {
                v[i] = def[i].clone();
            }
        }
    }
    match (d, &def) {
        (S::BoolData(a), S::BoolData(b)) => merge(&mut a.data, &b.data, &valid),
        (S::IntData(a), S::IntData(b)) => merge(&mut a.data, &b.data, &valid),
        (S::LongData(a), S::LongData(b)) => merge(&mut a.data, &b.data, &valid),
        (S::FloatData(a), S::FloatData(b)) => merge(&mut a.data, &b.data, &valid),
        (S::DoubleData(a), S::DoubleData(b)) => merge(&mut a.data, &b.data, &valid),
        (S::StringData(a), S::StringData(b)) => merge(&mut a.data, &b.data, &valid),
        (S::GeometryWktData(a), S::GeometryWktData(b)) => merge(&mut a.data, &b.data, &valid),
        _ => {}
    }
    Ok(())
}

/// With an autoID primary key: makes `row_ids` the keys (the key column and `v.pks`)
/// and returns the keys the rows were given, if any (an upsert deletes those). Without
/// one: changes nothing, returns None.
pub fn fill_auto_ids(schema: &CollectionSchema, v: &mut Validated, row_ids: &[i64]) -> Option<Pks> {
    let pk = schema.fields.iter().position(|f| f.is_primary_key)?;
    let f = &schema.fields[pk];
    if !f.auto_id {
        return None;
    }
    // A VarChar key gets the row ID in decimal, as Milvus gives it.
    let (data, keys) = if kind(f.data_type) == DataType::VarChar {
        let keys: Vec<String> = row_ids.iter().map(i64::to_string).collect();
        (
            scalar_field::Data::StringData(StringArray { data: keys.clone() }),
            Pks::Str(keys),
        )
    } else {
        (
            scalar_field::Data::LongData(LongArray {
                data: row_ids.to_vec(),
            }),
            Pks::Int(row_ids.to_vec()),
        )
    };
    let generated = FieldData {
        r#type: f.data_type,
        field_name: f.name.clone(),
        field_id: f.field_id,
        field: Some(field_data::Field::Scalars(ScalarField { data: Some(data) })),
        ..Default::default()
    };
    match v.fields.iter().position(|c| c.field_id == f.field_id) {
        Some(i) => v.fields[i] = generated,
        None => v.fields.insert(pk.min(v.fields.len()), generated),
    }
    v.pks.replace(keys)
}

/// Validates the columns of an insert (or, with `upsert`, an upsert) of `num_rows`
/// rows against `schema`. Errors carry Milvus's code 1100 and say what was wrong.
pub fn validate_rows(
    schema: &CollectionSchema,
    columns: Vec<FieldData>,
    num_rows: u32,
    upsert: bool,
) -> Result<Validated, Status> {
    let rows = num_rows as usize;
    if rows == 0 {
        return Err(invalid("the insert data is empty: num_rows is 0"));
    }
    let mut given: Vec<Option<FieldData>> = columns.into_iter().map(Some).collect();
    for fd in given.iter().flatten() {
        let known = schema.fields.iter().any(|f| f.name == fd.field_name);
        if !(known || fd.is_dynamic || fd.field_name == META_FIELD) {
            return Err(invalid(if schema.enable_dynamic_field {
                format!(
                    "field {} does not exist in the collection schema",
                    fd.field_name
                )
            } else {
                format!(
                    "Attempt to insert an unexpected field `{}` to collection without enabling dynamic field",
                    fd.field_name
                )
            }));
        }
        if !known && !schema.enable_dynamic_field {
            return Err(invalid(
                "Attempt to insert dynamic ($meta) data to collection without enabling dynamic field",
            ));
        }
    }
    let mut take = |name: &str| {
        given
            .iter_mut()
            .find(|g| {
                g.as_ref().is_some_and(|fd| {
                    fd.field_name == name || (name == META_FIELD && fd.is_dynamic)
                })
            })
            .and_then(Option::take)
    };
    let mut fields = Vec::with_capacity(schema.fields.len());
    let mut pks = None;
    let mut outputs = Vec::new();
    for f in &schema.fields {
        let column = take(&f.name);
        if f.is_function_output {
            // Written by the server from its function's input (Milvus's pymilvus refuses
            // it client-side in these words).
            if column.is_some() {
                return Err(invalid(format!(
                    "Attempt to insert an unexpected function output field `{}` to collection",
                    f.name
                )));
            }
            outputs.push((fields.len(), f));
            fields.push(FieldData::default());
            continue;
        }
        if f.is_primary_key && f.auto_id && !upsert {
            if column.is_some() {
                return Err(invalid(format!(
                    "can not assign primary field data when auto id enabled (field {})",
                    f.name
                )));
            }
            continue;
        }
        let fd = match column {
            Some(fd) => check_column(f, fd, rows)?,
            None if f.is_dynamic => {
                let data = vec![b"{}".to_vec(); rows];
                FieldData {
                    r#type: DataType::Json as i32,
                    field_name: f.name.clone(),
                    field_id: f.field_id,
                    is_dynamic: true,
                    field: Some(field_data::Field::Scalars(ScalarField {
                        data: Some(scalar_field::Data::JsonData(JsonArray { data })),
                    })),
                    ..Default::default()
                }
            }
            None if f.is_primary_key => {
                return Err(invalid(format!(
                    "the primary key field {} is missing from the data{}",
                    f.name,
                    if upsert {
                        " (an upsert must give it)"
                    } else {
                        ""
                    }
                )))
            }
            None => default_column(f, rows)?,
        };
        if f.is_dynamic {
            check_dynamic(schema, &fd)?;
        }
        if f.is_primary_key {
            pks = Some(
                primary_keys(schema, std::slice::from_ref(&fd)).ok_or_else(|| {
                    invalid(format!(
                        "primary key field {} must be Int64 or VarChar",
                        f.name
                    ))
                })?,
            );
        }
        fields.push(fd);
    }
    for (at, f) in outputs {
        fields[at] = bm25_column(schema, f, &fields)?;
    }
    Ok(Validated { rows, fields, pks })
}

/// The analyzer of a BM25 function's input field: its `analyzer_params`, or its
/// `multi_analyzer_params` (one analyzer per name).
pub enum TextAnalyzer {
    /// One analyzer for every text.
    One(crate::analyzer::Analyzer),
    /// Several, picked by name.
    Many(crate::analyzer::MultiAnalyzer),
}

impl TextAnalyzer {
    /// The analyzer of text field `f` (code 1100 when its parameters do not build).
    pub fn of(f: &FieldSchema) -> Result<TextAnalyzer, Status> {
        let built = match param(f, "multi_analyzer_params") {
            Some(p) => crate::analyzer::MultiAnalyzer::new(p).map(TextAnalyzer::Many),
            None => crate::analyzer::cached(analyzer_params(f)).map(TextAnalyzer::One),
        };
        built.map_err(|e| invalid(format!("failed to create tokenizer: {e}")))
    }

    /// The BM25 term counts of `text` by the analyzer `name` picks (ignored with one).
    pub fn term_counts(&mut self, name: &str, text: &str) -> Vec<(u32, f32)> {
        let a = match self {
            TextAnalyzer::One(a) => a,
            TextAnalyzer::Many(m) => m.pick(name),
        };
        crate::analyzer::term_counts(a, text)
    }
}

/// The column a BM25 function writes into `output`: each row's term counts of its
/// input text ([`crate::analyzer::term_counts`]; a null text gives an empty row).
fn bm25_column(
    schema: &CollectionSchema,
    output: &FieldSchema,
    fields: &[FieldData],
) -> Result<FieldData, Status> {
    let input = bm25_source(schema, output.field_id).ok_or_else(|| {
        invalid(format!(
            "field {} is a function output but no BM25 function writes it",
            output.name
        ))
    })?;
    let texts = fields
        .iter()
        .find(|c| c.field_id == input.field_id)
        .and_then(scalars);
    let Some(scalar_field::Data::StringData(texts)) = texts else {
        return Err(invalid(format!(
            "the BM25 function's input field {} has no text",
            input.name
        )));
    };
    let mut analyzer = TextAnalyzer::of(input)?;
    // With several analyzers, each row's by_field value names its own.
    let names = match &analyzer {
        TextAnalyzer::Many(m) => {
            let by = schema.fields.iter().find(|f| f.name == m.by_field);
            let col = by.and_then(|b| fields.iter().find(|c| c.field_id == b.field_id));
            match col.and_then(scalars) {
                Some(scalar_field::Data::StringData(s)) => Some(s.data.clone()),
                _ => None,
            }
        }
        TextAnalyzer::One(_) => None,
    };
    let valid = &fields
        .iter()
        .find(|c| c.field_id == input.field_id)
        .map(|c| c.valid_data.clone())
        .unwrap_or_default();
    let contents = texts
        .data
        .iter()
        .enumerate()
        .map(|(i, t)| {
            if !valid.get(i).copied().unwrap_or(true) {
                return Vec::new();
            }
            let name = names
                .as_ref()
                .and_then(|n| n.get(i))
                .map_or("default", String::as_str);
            crate::index::sparse::encode_pairs(&analyzer.term_counts(name, t))
        })
        .collect();
    Ok(crate::index::sparse::column(output, contents))
}

/// The dynamic column must hold one JSON object per row, none of whose keys is a
/// schema field.
fn check_dynamic(schema: &CollectionSchema, fd: &FieldData) -> Result<(), Status> {
    let Some(scalar_field::Data::JsonData(a)) = scalars(fd) else {
        return Ok(());
    };
    for (i, raw) in a.data.iter().enumerate() {
        let v: serde_json::Value = serde_json::from_slice(raw).map_err(|_| {
            invalid(format!(
                "dynamic field ($meta) of row {i} is not valid JSON"
            ))
        })?;
        let Some(obj) = v.as_object() else {
            return Err(invalid(format!(
                "dynamic field ($meta) of row {i} must be a JSON object"
            )));
        };
        if let Some(k) = obj
            .keys()
            .find(|k| schema.fields.iter().any(|f| &f.name == *k && !f.is_dynamic))
        {
            return Err(invalid(format!(
                "dynamic field ($meta) of row {i} has the key {k}, which is a schema field"
            )));
        }
    }
    Ok(())
}

/// Number of rows in a column.
pub fn field_len(fd: &FieldData) -> usize {
    use scalar_field::Data as S;
    match &fd.field {
        Some(field_data::Field::Scalars(ScalarField { data: Some(d) })) => match d {
            S::BoolData(a) => a.data.len(),
            S::IntData(a) => a.data.len(),
            S::LongData(a) => a.data.len(),
            S::FloatData(a) => a.data.len(),
            S::DoubleData(a) => a.data.len(),
            S::StringData(a) => a.data.len(),
            S::JsonData(a) => a.data.len(),
            S::BytesData(a) => a.data.len(),
            S::ArrayData(a) => a.data.len(),
            S::GeometryData(a) => a.data.len(),
            S::GeometryWktData(a) => a.data.len(),
        },
        Some(field_data::Field::Vectors(v)) => {
            let dim = v.dim.max(1) as usize;
            match &v.data {
                Some(vector_field::Data::FloatVector(a)) => a.data.len() / dim,
                Some(vector_field::Data::BinaryVector(b)) => b.len() / (dim / 8).max(1),
                Some(vector_field::Data::Float16Vector(b))
                | Some(vector_field::Data::Bfloat16Vector(b)) => b.len() / (dim * 2),
                Some(vector_field::Data::SparseFloatVector(s)) => s.contents.len(),
                None => 0,
            }
        }
        _ => 0,
    }
}

/// Appends the rows of `src` to `dst` (columns of the same field). A column with no
/// data yet takes `src`'s kind.
pub fn extend_field(dst: &mut FieldData, src: FieldData) {
    use scalar_field::Data as S;
    let dst_rows = field_len(dst);
    let src_rows = field_len(&src);
    if !dst.valid_data.is_empty() || !src.valid_data.is_empty() {
        if dst.valid_data.is_empty() {
            dst.valid_data = vec![true; dst_rows];
        }
        if src.valid_data.is_empty() {
            dst.valid_data.extend(std::iter::repeat_n(true, src_rows));
        } else {
            dst.valid_data.extend(src.valid_data);
        }
    }
    match (&mut dst.field, src.field) {
        (
            Some(field_data::Field::Scalars(ScalarField { data: Some(d) })),
            Some(field_data::Field::Scalars(ScalarField { data: Some(s) })),
        ) => match (d, s) {
            (S::BoolData(a), S::BoolData(b)) => a.data.extend(b.data),
            (S::IntData(a), S::IntData(b)) => a.data.extend(b.data),
            (S::LongData(a), S::LongData(b)) => a.data.extend(b.data),
            (S::FloatData(a), S::FloatData(b)) => a.data.extend(b.data),
            (S::DoubleData(a), S::DoubleData(b)) => a.data.extend(b.data),
            (S::StringData(a), S::StringData(b)) => a.data.extend(b.data),
            (S::JsonData(a), S::JsonData(b)) => a.data.extend(b.data),
            (S::BytesData(a), S::BytesData(b)) => a.data.extend(b.data),
            (S::ArrayData(a), S::ArrayData(b)) => a.data.extend(b.data),
            (S::GeometryData(a), S::GeometryData(b)) => a.data.extend(b.data),
            (S::GeometryWktData(a), S::GeometryWktData(b)) => a.data.extend(b.data),
            _ => {}
        },
        (Some(field_data::Field::Vectors(d)), Some(field_data::Field::Vectors(s))) => {
            if d.dim == 0 {
                d.dim = s.dim;
            }
            match (&mut d.data, s.data) {
                (
                    Some(vector_field::Data::FloatVector(a)),
                    Some(vector_field::Data::FloatVector(b)),
                ) => a.data.extend(b.data),
                (
                    Some(vector_field::Data::BinaryVector(a)),
                    Some(vector_field::Data::BinaryVector(b)),
                )
                | (
                    Some(vector_field::Data::Float16Vector(a)),
                    Some(vector_field::Data::Float16Vector(b)),
                )
                | (
                    Some(vector_field::Data::Bfloat16Vector(a)),
                    Some(vector_field::Data::Bfloat16Vector(b)),
                ) => a.extend(b),
                (
                    Some(vector_field::Data::SparseFloatVector(a)),
                    Some(vector_field::Data::SparseFloatVector(b)),
                ) => {
                    a.dim = a.dim.max(b.dim);
                    a.contents.extend(b.contents);
                }
                (slot @ None, data) => *slot = data,
                _ => {}
            }
        }
        (slot, field) if dst_rows == 0 => *slot = field,
        _ => {}
    }
}

/// Makes room in `dst` for `rows` more rows of its flat scalar or dense vector column,
/// so that rows added with [`extend_field`] are not copied as the column grows (other
/// columns grow as they are extended).
pub fn reserve_rows(dst: &mut FieldData, rows: usize) {
    use scalar_field::Data as S;
    match &mut dst.field {
        Some(field_data::Field::Scalars(ScalarField { data: Some(d) })) => match d {
            S::BoolData(a) => a.data.reserve_exact(rows),
            S::IntData(a) => a.data.reserve_exact(rows),
            S::LongData(a) => a.data.reserve_exact(rows),
            S::FloatData(a) => a.data.reserve_exact(rows),
            S::DoubleData(a) => a.data.reserve_exact(rows),
            S::StringData(a) => a.data.reserve_exact(rows),
            _ => {}
        },
        Some(field_data::Field::Vectors(v)) => {
            let dim = v.dim.max(0) as usize;
            match &mut v.data {
                Some(vector_field::Data::FloatVector(a)) => {
                    a.data.reserve_exact(rows.saturating_mul(dim))
                }
                Some(vector_field::Data::BinaryVector(a)) => {
                    a.reserve_exact(rows.saturating_mul(dim.div_ceil(8)))
                }
                Some(
                    vector_field::Data::Float16Vector(a) | vector_field::Data::Bfloat16Vector(a),
                ) => a.reserve_exact(rows.saturating_mul(dim).saturating_mul(2)),
                _ => {}
            }
        }
        _ => {}
    }
}

/// Row `row` of one column, as a column of one row.
pub fn take_row(fd: &FieldData, row: usize) -> FieldData {
    take_rows(std::slice::from_ref(fd), &[row])
        .pop()
        .expect("one column in, one out")
}

/// The rows `idx` of `fields` (in that order).
pub fn take_rows(fields: &[FieldData], idx: &[usize]) -> Vec<FieldData> {
    use scalar_field::Data as S;
    fn pick<T: Clone>(v: &[T], idx: &[usize]) -> Vec<T> {
        idx.iter().map(|i| v[*i].clone()).collect()
    }
    fields
        .iter()
        .map(|fd| {
            // Field by field: cloning `fd` whole would copy its full column per call.
            let mut out = FieldData {
                r#type: fd.r#type,
                field_name: fd.field_name.clone(),
                field_id: fd.field_id,
                is_dynamic: fd.is_dynamic,
                valid_data: if fd.valid_data.is_empty() {
                    vec![]
                } else {
                    pick(&fd.valid_data, idx)
                },
                field: None,
            };
            out.field = match &fd.field {
                Some(field_data::Field::Scalars(ScalarField { data: Some(d) })) => {
                    let d = match d {
                        S::BoolData(a) => S::BoolData(BoolArray {
                            data: pick(&a.data, idx),
                        }),
                        S::IntData(a) => S::IntData(IntArray {
                            data: pick(&a.data, idx),
                        }),
                        S::LongData(a) => S::LongData(LongArray {
                            data: pick(&a.data, idx),
                        }),
                        S::FloatData(a) => S::FloatData(FloatArray {
                            data: pick(&a.data, idx),
                        }),
                        S::DoubleData(a) => S::DoubleData(DoubleArray {
                            data: pick(&a.data, idx),
                        }),
                        S::StringData(a) => S::StringData(StringArray {
                            data: pick(&a.data, idx),
                        }),
                        S::JsonData(a) => S::JsonData(JsonArray {
                            data: pick(&a.data, idx),
                        }),
                        S::BytesData(a) => S::BytesData(crate::proto::schema::BytesArray {
                            data: pick(&a.data, idx),
                        }),
                        S::ArrayData(a) => S::ArrayData(crate::proto::schema::ArrayArray {
                            data: pick(&a.data, idx),
                            element_type: a.element_type,
                        }),
                        S::GeometryData(a) => {
                            S::GeometryData(crate::proto::schema::GeometryArray {
                                data: pick(&a.data, idx),
                            })
                        }
                        S::GeometryWktData(a) => {
                            S::GeometryWktData(crate::proto::schema::GeometryWktArray {
                                data: pick(&a.data, idx),
                            })
                        }
                    };
                    Some(field_data::Field::Scalars(ScalarField { data: Some(d) }))
                }
                Some(field_data::Field::Vectors(v)) => {
                    let dim = v.dim.max(1) as usize;
                    // Float data of another vector type holds words (vectors::to_words).
                    let words = vectors::Encoding::of_code(fd.r#type).map_or(dim, |e| e.words(dim));
                    let rows = |b: &[u8], width: usize| -> Vec<u8> {
                        idx.iter()
                            .flat_map(|i| b[i * width..(i + 1) * width].iter().copied())
                            .collect()
                    };
                    let data = v.data.as_ref().map(|d| match d {
                        vector_field::Data::FloatVector(a) => {
                            vector_field::Data::FloatVector(FloatArray {
                                data: idx
                                    .iter()
                                    .flat_map(|i| {
                                        a.data[i * words..(i + 1) * words].iter().copied()
                                    })
                                    .collect(),
                            })
                        }
                        vector_field::Data::BinaryVector(b) => {
                            vector_field::Data::BinaryVector(rows(b, dim / 8))
                        }
                        vector_field::Data::Float16Vector(b) => {
                            vector_field::Data::Float16Vector(rows(b, dim * 2))
                        }
                        vector_field::Data::Bfloat16Vector(b) => {
                            vector_field::Data::Bfloat16Vector(rows(b, dim * 2))
                        }
                        vector_field::Data::SparseFloatVector(s) => {
                            vector_field::Data::SparseFloatVector(
                                crate::proto::schema::SparseFloatArray {
                                    contents: pick(&s.contents, idx),
                                    dim: s.dim,
                                },
                            )
                        }
                    });
                    Some(field_data::Field::Vectors(
                        crate::proto::schema::VectorField { dim: v.dim, data },
                    ))
                }
                other => other.clone(),
            };
            out
        })
        .collect()
}

#[cfg(test)]
mod tests;
