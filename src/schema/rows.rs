//! JSON rows to the columns a MilvusService insert carries, and result columns back to
//! JSON rows, by the collection's schema (what pymilvus does on the client side for
//! gRPC): the RESTful API's rows and bulk import's row-based files. A row's keys that are not fields go to the dynamic field `$meta` when the
//! collection has one; a missing field is an error unless it is nullable or has a
//! default value (then it is null, and the proxy fills the default).

use serde_json::{json, Map, Number, Value};

use crate::proto::schema::{
    field_data, scalar_field, vector_field, ArrayArray, BoolArray, CollectionSchema, DataType,
    DoubleArray, FieldData, FieldSchema, FloatArray, IntArray, JsonArray, LongArray, ScalarField,
    StringArray, VectorField,
};

use super::dim;

/// The dynamic field's name.
pub const META: &str = "$meta";

fn bad_row(i: usize, why: String) -> String {
    format!("data row {i} is not valid: {why}")
}

/// Whether a row gives this field (auto IDs and function outputs are never given).
fn written(f: &FieldSchema) -> bool {
    !(f.is_function_output || f.is_dynamic || (f.is_primary_key && f.auto_id))
}

/// One column being built.
enum Col {
    Bool(Vec<bool>),
    Int(Vec<i32>),
    Long(Vec<i64>),
    Float(Vec<f32>),
    Double(Vec<f64>),
    Str(Vec<String>),
    Json(Vec<Vec<u8>>),
    Array(Vec<ScalarField>),
    Vector(Vec<f32>),
    /// Binary, float16 or bfloat16 vectors as their bytes.
    Bytes(Vec<u8>),
    /// Sparse vectors, a row of bytes each.
    Sparse(Vec<Vec<u8>>),
}

/// One sparse vector as REST clients and JSON / Parquet import files give it (Milvus's
/// forms): an object of index -> value (`{"3": 0.5, "17": 0.1}`) or of two lists
/// (`{"indices": [3, 17], "values": [0.5, 0.1]}`), checked as pymilvus rows are.
pub fn sparse_row(f: &FieldSchema, v: &Value) -> Result<Vec<u8>, String> {
    let obj = v.as_object().ok_or_else(|| {
        format!(
            "field {}: {v} is not a sparse vector (an object of index -> value)",
            f.name
        )
    })?;
    let index = |k: &str| -> Result<u32, String> {
        k.trim().parse().map_err(|_| {
            format!(
                "field {}: sparse vector index {k:?} is not an integer in [0, 2^32-1)",
                f.name
            )
        })
    };
    let value = |x: &Value| {
        number_f64(x)
            .map(|x| x as f32)
            .ok_or_else(|| format!("field {}: sparse vector value {x} is not a number", f.name))
    };
    let mut pairs = Vec::with_capacity(obj.len());
    match (obj.get("indices"), obj.get("values")) {
        // Milvus's other JSON form: two lists of the same length.
        (Some(Value::Array(ds)), Some(Value::Array(xs))) if obj.len() == 2 => {
            if ds.len() != xs.len() {
                return Err(format!(
                    "field {}: a sparse vector has {} indices and {} values",
                    f.name,
                    ds.len(),
                    xs.len()
                ));
            }
            for (d, x) in ds.iter().zip(xs) {
                let d = match d.as_u64().and_then(|d| u32::try_from(d).ok()) {
                    Some(d) => d,
                    None => index(&d.to_string())?,
                };
                pairs.push((d, value(x)?));
            }
        }
        _ => {
            for (k, x) in obj {
                pairs.push((index(k)?, value(x)?));
            }
        }
    }
    pairs.sort_by_key(|p| p.0);
    let row = crate::index::sparse::encode_pairs(&pairs);
    crate::index::sparse::validate_row(&row).map_err(|e| format!("field {}: {e}", f.name))?;
    Ok(row)
}

/// A sparse row as REST clients read it: an object of index -> value.
fn sparse_value(row: &[u8]) -> Value {
    let v = crate::index::sparse::parse_row(row).unwrap_or_default();
    Value::Object(
        v.dims
            .iter()
            .zip(&v.values)
            .map(|(d, x)| (d.to_string(), float(f64::from(*x))))
            .collect(),
    )
}

/// One binary, float16 or bfloat16 vector of field `f` as REST clients give it (Milvus's
/// RESTful API): its bytes in base64 text, or a JSON array: of byte values (binary, `dim
/// / 8` of them) or of numbers (float16 / bfloat16, `dim` of them, narrowed here).
pub fn vector_bytes(f: &FieldSchema, v: &Value) -> Result<Vec<u8>, String> {
    use base64::Engine;
    let enc = super::vectors::Encoding::of(f.data_type())
        .ok_or_else(|| format!("field {} is not a vector field", f.name))?;
    let d = dim(f).max(0) as usize;
    let width = enc.bytes(d);
    let bytes = match v {
        Value::String(text) => base64::engine::general_purpose::STANDARD
            .decode(text)
            .map_err(|e| format!("field {}: {text:?} is not base64 ({e})", f.name))?,
        Value::Array(items) if enc == super::vectors::Encoding::Binary => items
            .iter()
            .map(|x| x.as_u64().and_then(|b| u8::try_from(b).ok()))
            .collect::<Option<Vec<u8>>>()
            .ok_or_else(|| format!("field {}: {v} is not a list of byte values", f.name))?,
        Value::Array(items) => {
            let floats = items
                .iter()
                .map(|x| x.as_f64().map(|x| x as f32))
                .collect::<Option<Vec<f32>>>()
                .ok_or_else(|| format!("field {}: {v} is not a list of numbers", f.name))?;
            if floats.len() != d {
                return Err(format!(
                    "field {}: the vector has {} values, the field's dim is {d}",
                    f.name,
                    floats.len()
                ));
            }
            enc.encode(&floats, d)
        }
        _ => return Err(format!("invalid vector field: {}", f.name)),
    };
    if bytes.len() != width {
        return Err(format!(
            "field {}: the vector has {} bytes, a {} vector of dim {d} has {width}",
            f.name,
            bytes.len(),
            f.data_type().as_str_name()
        ));
    }
    Ok(bytes)
}

fn number_i64(v: &Value) -> Option<i64> {
    match v {
        Value::Number(n) => n.as_i64(),
        // Int64 values may come as strings (JavaScript clients keep 64-bit precision so).
        Value::String(s) => s.parse().ok(),
        _ => None,
    }
}

fn number_f64(v: &Value) -> Option<f64> {
    match v {
        Value::Number(n) => n.as_f64(),
        _ => None,
    }
}

/// A scalar array (ARRAY field element values) of `t`.
pub fn scalar_array(t: DataType, values: &[Value]) -> Result<ScalarField, String> {
    let bad = |v: &Value| format!("{v} is not a {} element", t.as_str_name());
    let data = match t {
        DataType::Bool => scalar_field::Data::BoolData(BoolArray {
            data: values
                .iter()
                .map(|v| v.as_bool().ok_or_else(|| bad(v)))
                .collect::<Result<_, _>>()?,
        }),
        DataType::Int8 | DataType::Int16 | DataType::Int32 => {
            scalar_field::Data::IntData(IntArray {
                data: values
                    .iter()
                    .map(|v| {
                        number_i64(v)
                            .and_then(|n| i32::try_from(n).ok())
                            .ok_or_else(|| bad(v))
                    })
                    .collect::<Result<_, _>>()?,
            })
        }
        DataType::Int64 => scalar_field::Data::LongData(LongArray {
            data: values
                .iter()
                .map(|v| number_i64(v).ok_or_else(|| bad(v)))
                .collect::<Result<_, _>>()?,
        }),
        DataType::Float => scalar_field::Data::FloatData(FloatArray {
            data: values
                .iter()
                .map(|v| number_f64(v).map(|n| n as f32).ok_or_else(|| bad(v)))
                .collect::<Result<_, _>>()?,
        }),
        DataType::Double => scalar_field::Data::DoubleData(DoubleArray {
            data: values
                .iter()
                .map(|v| number_f64(v).ok_or_else(|| bad(v)))
                .collect::<Result<_, _>>()?,
        }),
        DataType::VarChar | DataType::String => scalar_field::Data::StringData(StringArray {
            data: values
                .iter()
                .map(|v| v.as_str().map(str::to_string).ok_or_else(|| bad(v)))
                .collect::<Result<_, _>>()?,
        }),
        other => {
            return Err(format!(
                "arrays of {} are not supported",
                other.as_str_name()
            ))
        }
    };
    Ok(ScalarField { data: Some(data) })
}

impl Col {
    fn new(f: &FieldSchema) -> Result<Col, String> {
        Ok(match f.data_type() {
            DataType::Bool => Col::Bool(vec![]),
            DataType::Int8 | DataType::Int16 | DataType::Int32 => Col::Int(vec![]),
            DataType::Int64 => Col::Long(vec![]),
            DataType::Float => Col::Float(vec![]),
            DataType::Double => Col::Double(vec![]),
            DataType::VarChar | DataType::String | DataType::Geometry => Col::Str(vec![]),
            DataType::Json => Col::Json(vec![]),
            DataType::Array => Col::Array(vec![]),
            DataType::FloatVector => Col::Vector(vec![]),
            DataType::BinaryVector | DataType::Float16Vector | DataType::BFloat16Vector => {
                Col::Bytes(vec![])
            }
            DataType::SparseFloatVector => Col::Sparse(vec![]),
            other => {
                return Err(format!(
                    "field {} is of type {}, which this build does not take over REST yet",
                    f.name,
                    other.as_str_name()
                ))
            }
        })
    }

    /// Appends a null (a placeholder the valid flags mark).
    fn push_null(&mut self) {
        match self {
            Col::Bool(v) => v.push(false),
            Col::Int(v) => v.push(0),
            Col::Long(v) => v.push(0),
            Col::Float(v) => v.push(0.0),
            Col::Double(v) => v.push(0.0),
            Col::Str(v) => v.push(String::new()),
            Col::Json(v) => v.push(b"{}".to_vec()),
            Col::Array(v) => v.push(ScalarField::default()),
            Col::Vector(_) | Col::Bytes(_) | Col::Sparse(_) => {}
        }
    }

    fn push(&mut self, f: &FieldSchema, v: &Value) -> Result<(), String> {
        let bad = || {
            format!(
                "field {}: {v} is not a {}",
                f.name,
                f.data_type().as_str_name()
            )
        };
        match self {
            Col::Bool(c) => c.push(v.as_bool().ok_or_else(bad)?),
            Col::Int(c) => c.push(
                number_i64(v)
                    .and_then(|n| i32::try_from(n).ok())
                    .ok_or_else(bad)?,
            ),
            Col::Long(c) => c.push(number_i64(v).ok_or_else(bad)?),
            Col::Float(c) => c.push(number_f64(v).ok_or_else(bad)? as f32),
            Col::Double(c) => c.push(number_f64(v).ok_or_else(bad)?),
            Col::Str(c) => c.push(v.as_str().ok_or_else(bad)?.to_string()),
            // A string is JSON text (Milvus reads it so); anything else is the value.
            Col::Json(c) => c.push(match v {
                Value::String(text) => {
                    serde_json::from_str::<serde::de::IgnoredAny>(text)
                        .map_err(|e| format!("field {}: {text:?} is not JSON text: {e}", f.name))?;
                    text.clone().into_bytes()
                }
                other => serde_json::to_vec(other).map_err(|e| e.to_string())?,
            }),
            Col::Array(c) => {
                let items = v.as_array().ok_or_else(bad)?;
                c.push(scalar_array(f.element_type(), items)?);
            }
            Col::Vector(c) => {
                let items = v.as_array().ok_or_else(bad)?;
                let want = dim(f);
                if items.len() as i64 != want {
                    return Err(format!(
                        "field {}: the vector has {} values, the field's dim is {want}",
                        f.name,
                        items.len()
                    ));
                }
                for x in items {
                    c.push(number_f64(x).ok_or_else(bad)? as f32);
                }
            }
            Col::Bytes(c) => c.extend(vector_bytes(f, v)?),
            Col::Sparse(c) => c.push(sparse_row(f, v)?),
        }
        Ok(())
    }

    fn finish(self, f: &FieldSchema, valid: Vec<bool>) -> FieldData {
        let scalars = |data| Some(field_data::Field::Scalars(ScalarField { data: Some(data) }));
        let field = match self {
            Col::Bool(data) => scalars(scalar_field::Data::BoolData(BoolArray { data })),
            Col::Int(data) => scalars(scalar_field::Data::IntData(IntArray { data })),
            Col::Long(data) => scalars(scalar_field::Data::LongData(LongArray { data })),
            Col::Float(data) => scalars(scalar_field::Data::FloatData(FloatArray { data })),
            Col::Double(data) => scalars(scalar_field::Data::DoubleData(DoubleArray { data })),
            // A geometry's WKT text is checked and made canonical by `check_column`.
            Col::Str(data) if f.data_type() == DataType::Geometry => {
                scalars(scalar_field::Data::GeometryWktData(
                    crate::proto::schema::GeometryWktArray { data },
                ))
            }
            Col::Str(data) => scalars(scalar_field::Data::StringData(StringArray { data })),
            Col::Json(data) => scalars(scalar_field::Data::JsonData(JsonArray { data })),
            Col::Array(data) => scalars(scalar_field::Data::ArrayData(ArrayArray {
                data,
                element_type: f.element_type,
            })),
            Col::Vector(data) => Some(field_data::Field::Vectors(VectorField {
                dim: dim(f),
                data: Some(vector_field::Data::FloatVector(FloatArray { data })),
            })),
            Col::Sparse(rows) => crate::index::sparse::column(f, rows).field,
            Col::Bytes(b) => Some(field_data::Field::Vectors(VectorField {
                dim: dim(f),
                data: Some(match f.data_type() {
                    DataType::BinaryVector => vector_field::Data::BinaryVector(b),
                    DataType::Float16Vector => vector_field::Data::Float16Vector(b),
                    _ => vector_field::Data::Bfloat16Vector(b),
                }),
            })),
        };
        FieldData {
            r#type: f.data_type,
            field_name: f.name.clone(),
            field,
            field_id: f.field_id,
            is_dynamic: f.is_dynamic,
            valid_data: if f.nullable || f.default_value.is_some() {
                valid
            } else {
                vec![]
            },
        }
    }
}

/// The columns of `rows` (JSON objects) for an insert or upsert into a collection of
/// `schema` (as DescribeCollection gives it: no `$meta`, which `dynamic` adds).
/// `with_auto_id`: an upsert gives the auto ID primary key too.
pub fn rows_to_columns(
    schema: &CollectionSchema,
    dynamic: bool,
    rows: &[Value],
    with_auto_id: bool,
) -> Result<Vec<FieldData>, String> {
    let fields: Vec<&FieldSchema> = schema
        .fields
        .iter()
        .filter(|f| written(f) || (with_auto_id && f.is_primary_key))
        .collect();
    let mut cols = Vec::new();
    for f in &fields {
        cols.push((Col::new(f)?, Vec::with_capacity(rows.len())));
    }
    let mut meta = Vec::new();
    for (i, row) in rows.iter().enumerate() {
        let Value::Object(row) = row else {
            return Err(bad_row(i, format!("{row} is not a JSON object")));
        };
        for (f, (col, valid)) in fields.iter().zip(cols.iter_mut()) {
            match row.get(&f.name) {
                None | Some(Value::Null) if f.nullable || f.default_value.is_some() => {
                    col.push_null();
                    valid.push(false);
                }
                None | Some(Value::Null) => {
                    return Err(bad_row(i, format!("field {} is missing", f.name)))
                }
                Some(v) => {
                    col.push(f, v).map_err(|e| bad_row(i, e))?;
                    valid.push(true);
                }
            }
        }
        if dynamic {
            let mut extra: Map<String, Value> = row
                .iter()
                .filter(|(k, _)| {
                    *k != META && !schema.fields.iter().any(|f| &f.name == *k && !f.is_dynamic)
                })
                .map(|(k, v)| (k.clone(), v.clone()))
                .collect();
            // A `$meta` key (as pymilvus's bulk writers write rows) holds dynamic keys:
            // an object, or its JSON text; other keys merge into it (Milvus's rule).
            match row.get(META) {
                None => {}
                Some(Value::Object(o)) => extra.extend(o.clone()),
                Some(Value::String(t)) => match serde_json::from_str::<Value>(t) {
                    Ok(Value::Object(o)) => extra.extend(o),
                    _ => {
                        return Err(bad_row(
                            i,
                            format!("{META} must be a JSON object or its text, got {t:?}"),
                        ))
                    }
                },
                Some(v) => {
                    return Err(bad_row(
                        i,
                        format!("{META} must be a JSON object or its text, got {v}"),
                    ))
                }
            }
            meta.push(serde_json::to_vec(&Value::Object(extra)).expect("JSON"));
        }
    }
    let mut out: Vec<FieldData> = fields
        .iter()
        .zip(cols)
        .map(|(f, (col, valid))| col.finish(f, valid))
        .collect();
    if dynamic {
        out.push(FieldData {
            r#type: DataType::Json as i32,
            field_name: META.to_string(),
            field: Some(field_data::Field::Scalars(ScalarField {
                data: Some(scalar_field::Data::JsonData(JsonArray { data: meta })),
            })),
            is_dynamic: true,
            ..Default::default()
        });
    }
    Ok(out)
}

/// How 64-bit integers are written: as JSON numbers, or (for clients that cannot hold
/// them, without `Accept-Type-Allow-Int64: true`) as strings when they would lose
/// precision. Milvus's REST writes them as numbers by default.
#[derive(Clone, Copy)]
pub struct Int64s {
    /// Numbers (true) or strings.
    pub as_numbers: bool,
}

impl Int64s {
    fn value(self, n: i64) -> Value {
        if self.as_numbers {
            json!(n)
        } else {
            json!(n.to_string())
        }
    }
}

fn float(x: f64) -> Value {
    Number::from_f64(x).map_or(Value::Null, Value::Number)
}

fn scalar_values(s: &ScalarField, int64: Int64s) -> Vec<Value> {
    use scalar_field::Data as D;
    match &s.data {
        Some(D::BoolData(a)) => a.data.iter().map(|v| json!(v)).collect(),
        Some(D::IntData(a)) => a.data.iter().map(|v| json!(v)).collect(),
        Some(D::LongData(a)) => a.data.iter().map(|v| int64.value(*v)).collect(),
        Some(D::FloatData(a)) => a.data.iter().map(|v| float(*v as f64)).collect(),
        Some(D::DoubleData(a)) => a.data.iter().map(|v| float(*v)).collect(),
        Some(D::StringData(a)) => a.data.iter().map(|v| json!(v)).collect(),
        Some(D::JsonData(a)) => a
            .data
            .iter()
            .map(|b| serde_json::from_slice(b).unwrap_or(Value::Null))
            .collect(),
        Some(D::ArrayData(a)) => a
            .data
            .iter()
            .map(|s| Value::Array(scalar_values(s, int64)))
            .collect(),
        Some(D::BytesData(a)) => a.data.iter().map(|b| json!(b)).collect(),
        Some(D::GeometryWktData(a)) => a.data.iter().map(|v| json!(v)).collect(),
        Some(D::GeometryData(a)) => a.data.iter().map(|b| json!(b)).collect(),
        None => vec![],
    }
}

/// Bytes one vector of a binary or half-float result column takes.
fn vector_width(fd: &FieldData) -> Option<usize> {
    let Some(field_data::Field::Vectors(v)) = &fd.field else {
        return None;
    };
    let enc = super::vectors::Encoding::of_code(fd.r#type)?;
    Some(enc.bytes(v.dim.max(0) as usize)).filter(|w| *w > 0)
}

/// The number of rows a result column holds.
pub fn column_len(fd: &FieldData) -> usize {
    if !fd.valid_data.is_empty() {
        return fd.valid_data.len();
    }
    match &fd.field {
        Some(field_data::Field::Scalars(s)) => scalar_values(s, Int64s { as_numbers: true }).len(),
        Some(field_data::Field::Vectors(v)) => match (&v.data, vector_width(fd)) {
            (Some(vector_field::Data::FloatVector(a)), _) if v.dim > 0 => {
                a.data.len() / v.dim as usize
            }
            (Some(vector_field::Data::SparseFloatVector(a)), _) => a.contents.len(),
            (Some(d), Some(w)) => super::vectors::bytes_of(d).map_or(0, |b| b.len() / w),
            _ => 0,
        },
        None => 0,
    }
}

/// Each row's value of one output column (dynamic keys spread into the row later).
fn column_values(fd: &FieldData, rows: usize, int64: Int64s) -> Vec<Value> {
    let mut values = match &fd.field {
        Some(field_data::Field::Scalars(s)) => scalar_values(s, int64),
        Some(field_data::Field::Vectors(v)) => match &v.data {
            Some(vector_field::Data::FloatVector(a)) if v.dim > 0 => a
                .data
                .chunks(v.dim as usize)
                .map(|c| Value::Array(c.iter().map(|x| float(*x as f64)).collect()))
                .collect(),
            Some(vector_field::Data::SparseFloatVector(a)) => {
                a.contents.iter().map(|r| sparse_value(r)).collect()
            }
            // Binary and half-float vectors: base64 text of their bytes (Milvus's REST).
            Some(d) => match (super::vectors::bytes_of(d), vector_width(fd)) {
                (Some(b), Some(w)) => {
                    use base64::Engine;
                    b.chunks(w)
                        .map(|c| Value::String(base64::engine::general_purpose::STANDARD.encode(c)))
                        .collect()
                }
                _ => vec![],
            },
            _ => vec![],
        },
        None => vec![],
    };
    // Nullable columns: null where not valid.
    if !fd.valid_data.is_empty() {
        let mut dense = values.into_iter();
        let compact = fd.valid_data.iter().filter(|v| **v).count() != fd.valid_data.len()
            && dense.len() < fd.valid_data.len();
        values = fd
            .valid_data
            .iter()
            .map(|ok| {
                if compact {
                    if *ok {
                        dense.next().unwrap_or(Value::Null)
                    } else {
                        Value::Null
                    }
                } else {
                    let v = dense.next().unwrap_or(Value::Null);
                    if *ok {
                        v
                    } else {
                        Value::Null
                    }
                }
            })
            .collect();
    }
    values.resize(rows, Value::Null);
    values
}

/// Result columns to JSON rows: `rows` rows, each with the output fields named in
/// `output` (a dynamic key is taken out of `$meta`; `*` or an empty list: every column).
pub fn columns_to_rows(
    fields: &[FieldData],
    rows: usize,
    output: &[String],
    int64: Int64s,
) -> Vec<Map<String, Value>> {
    let mut out = vec![Map::new(); rows];
    let all = output.is_empty() || output.iter().any(|o| o == "*");
    for fd in fields {
        let values = column_values(fd, rows, int64);
        if fd.is_dynamic || fd.field_name == META {
            for (row, v) in out.iter_mut().zip(values) {
                if let Value::Object(m) = v {
                    for (k, v) in m {
                        if all || output.contains(&k) {
                            row.entry(k).or_insert(v);
                        }
                    }
                }
            }
        } else if fd.r#type == DataType::Json as i32 {
            // A JSON field is written as its JSON text (a string), as Milvus's REST does.
            for (row, v) in out.iter_mut().zip(values) {
                let text = if v.is_null() {
                    Value::Null
                } else {
                    json!(v.to_string())
                };
                row.insert(fd.field_name.clone(), text);
            }
        } else {
            for (row, v) in out.iter_mut().zip(values) {
                row.insert(fd.field_name.clone(), v);
            }
        }
    }
    out
}
