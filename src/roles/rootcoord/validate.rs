//! Request validation, as Milvus does it: names, schema, limits. Pure functions that
//! return the in-band status to answer with.

use prost::Message;

use crate::proto::common::{KeyValuePair, Status};
use crate::proto::schema::{CollectionSchema, DataType, FieldSchema, FunctionType};
use crate::schema::is_vector;
use crate::status::{code, error};

/// Largest vector dimension.
pub const MAX_DIM: i64 = 32768;
/// Largest VarChar max_length.
pub const MAX_VARCHAR_LEN: i64 = 65535;
/// Largest shards number.
pub const MAX_SHARDS: i32 = 16;
/// First user field ID.
pub const FIRST_FIELD_ID: i64 = 100;
/// Name of the hidden dynamic field.
pub const DYNAMIC_FIELD: &str = "$meta";

fn invalid(reason: String) -> Status {
    error(code::PARAMETER_INVALID, reason)
}

fn param<'a>(params: &'a [KeyValuePair], key: &str) -> Option<&'a str> {
    params
        .iter()
        .find(|p| p.key == key)
        .map(|p| p.value.as_str())
}

fn int_param(f: &FieldSchema, key: &str, min: i64, max: i64) -> Result<i64, Status> {
    let raw = param(&f.type_params, key).ok_or_else(|| {
        invalid(format!(
            "field {:?} of type {}: type param {key:?} is required",
            f.name,
            type_name(f.data_type)
        ))
    })?;
    match raw.trim().parse::<i64>() {
        Ok(v) if (min..=max).contains(&v) => Ok(v),
        _ => Err(invalid(format!(
            "field {:?}: {key} must be an integer in [{min}, {max}], got {raw:?}",
            f.name
        ))),
    }
}

fn type_name(t: i32) -> String {
    DataType::try_from(t).map_or_else(|_| t.to_string(), |d| d.as_str_name().to_string())
}

/// Refuses a field of a type this build cannot store, index and search end to end, at
/// creation (rather than accepting rows it can never flush or search).
fn supported(f: &FieldSchema, t: DataType) -> Result<(), Status> {
    match t {
        DataType::String => Err(invalid(format!(
            "string data type not supported yet, please use VarChar type instead (field {})",
            f.name
        ))),
        DataType::Bool
        | DataType::Int8
        | DataType::Int16
        | DataType::Int32
        | DataType::Int64
        | DataType::Float
        | DataType::Double
        | DataType::VarChar
        | DataType::Json
        | DataType::Array
        | DataType::Geometry
        | DataType::FloatVector
        | DataType::BinaryVector
        | DataType::Float16Vector
        | DataType::BFloat16Vector
        | DataType::SparseFloatVector => Ok(()),
        other => Err(invalid(format!(
            "field {}: data type {} is not supported by this build yet; supported: Bool, Int8, Int16, Int32, Int64, Float, Double, VarChar, JSON, Array, FloatVector, BinaryVector, Float16Vector, BFloat16Vector, SparseFloatVector and Geometry",
            f.name,
            other.as_str_name()
        ))),
    }
}

/// A vector's `dim`, checked as Milvus 2.5 checks it: 2 to 32768 for the float types; for
/// binary vectors a multiple of 8 up to 32768 x 8 bits.
fn dimension(f: &FieldSchema, binary: bool) -> Result<(), Status> {
    let raw = param(&f.type_params, "dim").ok_or_else(|| {
        invalid(format!(
            "dimension is not defined in field type params of field {}, check type param `dim` for vector field",
            f.name
        ))
    })?;
    let dim: i64 = raw.trim().parse().map_err(|_| {
        invalid(format!(
            "invalid dimension: {raw} of field {}. dimension should be an integer",
            f.name
        ))
    })?;
    if dim <= 1 {
        return Err(invalid(format!(
            "invalid dimension: {dim}. should be in range 2 ~ {MAX_DIM}"
        )));
    }
    if binary {
        if dim % 8 != 0 {
            return Err(invalid(format!(
                "invalid dimension: {dim} of field {}. binary vector dimension should be multiple of 8. ",
                f.name
            )));
        }
        if dim > MAX_DIM * 8 {
            return Err(invalid(format!(
                "invalid dimension: {dim} of field {}. binary vector dimension should be in range 2 ~ {}",
                f.name,
                MAX_DIM * 8
            )));
        }
        return Ok(());
    }
    if dim > MAX_DIM {
        return Err(invalid(format!(
            "invalid dimension: {dim} of field {}. float vector dimension should be in range 2 ~ {MAX_DIM}",
            f.name
        )));
    }
    Ok(())
}

/// Decodes and checks a collection schema for `collection_name`; returns it with field
/// IDs assigned from 100 and, when dynamic fields are on, the hidden `$meta` field.
pub fn schema(
    collection_name: &str,
    bytes: &[u8],
    max_fields: usize,
) -> Result<CollectionSchema, Status> {
    let mut s = CollectionSchema::decode(bytes).map_err(|e| {
        invalid(format!(
            "the collection schema is not a valid serialized CollectionSchema: {e}"
        ))
    })?;
    if s.name.is_empty() {
        s.name = collection_name.to_string();
    }
    if s.name != collection_name {
        return Err(invalid(format!(
            "schema name {:?} does not match the collection name {collection_name:?}",
            s.name
        )));
    }
    if s.fields.is_empty() {
        return Err(invalid("the schema has no fields".into()));
    }
    if s.fields.len() > max_fields {
        return Err(invalid(format!(
            "the schema has {} fields, more than proxy.maxFieldNum = {max_fields}",
            s.fields.len()
        )));
    }
    let mut seen = std::collections::HashSet::new();
    let mut primary = 0;
    let mut vectors = 0;
    for f in &s.fields {
        crate::schema::names::field(&f.name)?;
        if !seen.insert(f.name.clone()) {
            return Err(invalid(format!("duplicated field name {:?}", f.name)));
        }
        let t = DataType::try_from(f.data_type)
            .ok()
            .filter(|t| *t != DataType::None)
            .ok_or_else(|| {
                invalid(format!(
                    "field {:?} has an unknown data type {}",
                    f.name, f.data_type
                ))
            })?;
        if f.is_dynamic {
            return Err(invalid(format!(
                "field {:?}: is_dynamic is set by the server, not the client",
                f.name
            )));
        }
        supported(f, t)?;
        match t {
            DataType::FloatVector | DataType::Float16Vector | DataType::BFloat16Vector => {
                dimension(f, false)?
            }
            DataType::BinaryVector => dimension(f, true)?,
            DataType::SparseFloatVector if param(&f.type_params, "dim").is_some() => {
                return Err(invalid(format!(
                    "dim should not be specified for sparse vector field {}({})",
                    f.name, f.field_id
                )));
            }
            DataType::VarChar => {
                int_param(f, "max_length", 1, MAX_VARCHAR_LEN)?;
                text_match(f)?;
            }
            DataType::Geometry => {
                use crate::proto::schema::value_field::Data as V;
                match f.default_value.as_ref().and_then(|d| d.data.as_ref()) {
                    None => {}
                    Some(V::StringData(wkt)) if crate::geometry::parse(wkt).is_ok() => {}
                    Some(_) => {
                        return Err(invalid(format!(
                            "invalid default value for geometry field {}: a WKT string is expected",
                            f.name
                        )))
                    }
                }
            }
            DataType::Array => {
                let et = DataType::try_from(f.element_type).ok().filter(|e| {
                    !matches!(
                        e,
                        DataType::None | DataType::Array | DataType::Json | DataType::Geometry
                    ) && !is_vector(*e)
                });
                if et.is_none() {
                    return Err(invalid(format!(
                        "field {:?}: an array needs a valid scalar element_type",
                        f.name
                    )));
                }
                int_param(f, "max_capacity", 1, 4096)?;
            }
            _ => {}
        }
        if is_vector(t) {
            vectors += 1;
            // Milvus 2.5's rules and words.
            if f.nullable {
                return Err(invalid("vector type not support null".into()));
            }
            if f.default_value.is_some() {
                return Err(invalid(format!(
                    "type not support default_value, type:{}, name:{}",
                    t.as_str_name(),
                    f.name
                )));
            }
        }
        if f.is_primary_key && f.nullable {
            return Err(invalid("primary field not support null".into()));
        }
        if f.is_primary_key && f.default_value.is_some() {
            return Err(invalid("primary field not support default_value".into()));
        }
        if f.is_primary_key {
            primary += 1;
            if !matches!(t, DataType::Int64 | DataType::VarChar) {
                return Err(invalid(format!(
                    "primary key field {:?} must be Int64 or VarChar, not {}",
                    f.name,
                    t.as_str_name()
                )));
            }
        } else if f.auto_id {
            return Err(invalid(format!(
                "field {:?}: only the primary key can be autoID",
                f.name
            )));
        }
    }
    functions(&mut s)?;
    if primary != 1 {
        return Err(invalid(format!(
            "a schema needs exactly one primary key field, this one has {primary}"
        )));
    }
    partition_key(&s.fields)?;
    if vectors == 0 {
        return Err(invalid("the schema has no vector field".into()));
    }
    for (i, f) in s.fields.iter_mut().enumerate() {
        f.field_id = FIRST_FIELD_ID + i as i64;
        f.state = 0;
    }
    let ids: std::collections::HashMap<String, i64> = s
        .fields
        .iter()
        .map(|f| (f.name.clone(), f.field_id))
        .collect();
    for (i, func) in s.functions.iter_mut().enumerate() {
        func.id = FIRST_FIELD_ID + i as i64;
        func.input_field_ids = func.input_field_names.iter().map(|n| ids[n]).collect();
        func.output_field_ids = func.output_field_names.iter().map(|n| ids[n]).collect();
    }
    if s.enable_dynamic_field {
        s.fields.push(FieldSchema {
            field_id: FIRST_FIELD_ID + s.fields.len() as i64,
            name: DYNAMIC_FIELD.to_string(),
            description: "dynamic schema".to_string(),
            data_type: DataType::Json as i32,
            is_dynamic: true,
            ..Default::default()
        });
    }
    Ok(s)
}

/// Milvus 2.5's rules for schema functions (proxy's validateFunction, its words, code
/// 65535): BM25 only, a name used once, one VARCHAR input with `enable_analyzer`, one
/// SPARSE_FLOAT_VECTOR output that is no key and not nullable, no parameters. Each
/// output field is marked `is_function_output` (and only those).
fn functions(s: &mut CollectionSchema) -> Result<(), Status> {
    let plain = |m: String| error(code::UNEXPECTED, m);
    s.fields
        .iter_mut()
        .for_each(|f| f.is_function_output = false);
    let mut names = std::collections::HashSet::new();
    let mut outputs = Vec::new();
    for func in &s.functions {
        if func.name.is_empty() {
            return Err(plain("function name cannot be empty".into()));
        }
        if !names.insert(func.name.clone()) {
            return Err(plain(format!("duplicate function name: {}", func.name)));
        }
        if func.r#type != FunctionType::Bm25 as i32 {
            return Err(plain(format!(
                "function {}: type {} is not supported: only BM25 functions are",
                func.name,
                FunctionType::try_from(func.r#type).map_or("unknown", |t| t.as_str_name())
            )));
        }
        if func.input_field_names.is_empty() {
            return Err(plain(format!(
                "function input field names cannot be empty, function: {}",
                func.name
            )));
        }
        if func.output_field_names.is_empty() {
            return Err(plain(format!(
                "function output field names cannot be empty, function: {}",
                func.name
            )));
        }
        for i in &func.input_field_names {
            if func.output_field_names.contains(i) {
                return Err(plain(format!(
                    "a single field cannot be both input and output in the same function, function: {}, field: {i}",
                    func.name
                )));
            }
        }
        let find = |name: &str, what: &str| {
            s.fields
                .iter()
                .find(|f| f.name == name)
                .ok_or_else(|| plain(format!("function {what} field not found: {name}")))
        };
        if func.input_field_names.len() != 1 {
            return Err(plain(format!(
                "BM25 function only need 1 input field, but got {}",
                func.input_field_names.len()
            )));
        }
        let input = find(&func.input_field_names[0], "input")?;
        if input.data_type != DataType::VarChar as i32 {
            return Err(plain(format!(
                "BM25 function input field must be a VARCHAR field, got {} field with type {}",
                input.data_type,
                DataType::try_from(input.data_type).map_or("unknown", |t| t.as_str_name())
            )));
        }
        if !crate::schema::flag(input, "enable_analyzer") {
            return Err(plain(
                "BM25 function input field must set enable_analyzer to true".into(),
            ));
        }
        match crate::schema::param(input, "multi_analyzer_params") {
            Some(multi) => multi_analyzer(s, input, multi).map_err(plain)?,
            None => {
                crate::analyzer::cached(crate::schema::analyzer_params(input)).map_err(|e| {
                    invalid(format!(
                        "field {}: invalid analyzer_params: failed to create tokenizer: {e}",
                        input.name
                    ))
                })?;
            }
        }
        if func.output_field_names.len() != 1 {
            return Err(plain(format!(
                "BM25 function only need 1 output field, but got {}",
                func.output_field_names.len()
            )));
        }
        let output = find(&func.output_field_names[0], "output")?;
        if output.data_type != DataType::SparseFloatVector as i32 {
            return Err(plain(format!(
                "BM25 function output field must be a SparseFloatVector field, but got {}",
                DataType::try_from(output.data_type).map_or("unknown", |t| t.as_str_name())
            )));
        }
        if output.is_primary_key {
            return Err(plain(format!(
                "function output field cannot be primary key: function {}, field {}",
                func.name, output.name
            )));
        }
        if output.is_partition_key || output.is_clustering_key {
            return Err(plain(format!(
                "function output field cannot be partition key or clustering key: function {}, field {}",
                func.name, output.name
            )));
        }
        if output.nullable {
            return Err(plain(format!(
                "function output field cannot be nullable: function {}, field {}",
                func.name, output.name
            )));
        }
        if !func.params.is_empty() {
            return Err(plain("BM25 function accepts no params".into()));
        }
        outputs.push(output.name.clone());
    }
    for f in &mut s.fields {
        f.is_function_output = outputs.contains(&f.name);
    }
    Ok(())
}

/// Milvus 2.5's rules for a BM25 input field's `multi_analyzer_params` (its proxy's
/// validateAnalyzer and validateMultiAnalyzerParams, their words): no `enable_match`, no
/// `analyzer_params` beside it, parameters that build with a `default` analyzer, and a
/// `by_field` naming a VARCHAR field of the collection.
fn multi_analyzer(s: &CollectionSchema, input: &FieldSchema, params: &str) -> Result<(), String> {
    if crate::schema::flag(input, "enable_match") {
        return Err(format!(
            "multi analyzer now only support for bm25, but now field {} enable match",
            input.name
        ));
    }
    if crate::schema::param(input, "analyzer_params").is_some() {
        return Err(format!(
            "field {} analyzer params should be none if has multi analyzer params",
            input.name
        ));
    }
    let m = crate::analyzer::MultiAnalyzer::new(params).map_err(|e| e.to_string())?;
    match s.fields.iter().find(|f| f.name == m.by_field) {
        None => Err(format!(
            "multi analyzer dependent field \"{}\" not exist in collection {}",
            m.by_field, s.name
        )),
        Some(f) if f.data_type != DataType::VarChar as i32 => Err(format!(
            "multi analyzer params now only support by string field, but field {} is not string",
            f.name
        )),
        Some(_) => Ok(()),
    }
}

/// Milvus's rules for `enable_match` (TEXT_MATCH): the field needs `enable_analyzer`,
/// and its `analyzer_params` must build an analyzer.
fn text_match(f: &FieldSchema) -> Result<(), Status> {
    let Some(params) = crate::schema::match_analyzer(f) else {
        return Ok(());
    };
    if !crate::schema::flag(f, "enable_analyzer") {
        return Err(invalid(format!(
            "field {} is set to enable match or bm25 function but not enable analyzer",
            f.name
        )));
    }
    if crate::schema::param(f, "multi_analyzer_params").is_some() {
        return Err(error(
            code::UNEXPECTED,
            format!(
                "multi analyzer now only support for bm25, but now field {} enable match",
                f.name
            ),
        ));
    }
    crate::analyzer::cached(params).map(|_| ()).map_err(|e| {
        invalid(format!(
            "field {}: invalid analyzer_params: failed to create tokenizer: {e}",
            f.name
        ))
    })
}

/// Milvus's rules for a partition key: at most one, not the primary key, Int64 or
/// VarChar, not nullable.
fn partition_key(fields: &[FieldSchema]) -> Result<(), Status> {
    let keys: Vec<&FieldSchema> = fields.iter().filter(|f| f.is_partition_key).collect();
    if let [a, b, ..] = keys.as_slice() {
        return Err(invalid(format!(
            "there are more than one partition key, field name = {}, {}",
            a.name, b.name
        )));
    }
    let Some(f) = keys.first() else {
        return Ok(());
    };
    if f.is_primary_key {
        return Err(invalid(
            "the partition key field must not be primary field".into(),
        ));
    }
    if !matches!(f.data_type(), DataType::Int64 | DataType::VarChar) {
        return Err(invalid(
            "the data type of partition key should be Int64 or VarChar".into(),
        ));
    }
    if f.nullable {
        return Err(invalid("partition key field not support nullable".into()));
    }
    Ok(())
}

/// The shards number: 0 means the default, 1.
pub fn shards(n: i32) -> Result<i32, Status> {
    match n {
        0 => Ok(1),
        1..=MAX_SHARDS => Ok(n),
        _ => Err(invalid(format!(
            "shards_num must be between 1 and {MAX_SHARDS}, got {n}"
        ))),
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::proto::schema::FieldSchema;

    fn kv(k: &str, v: &str) -> KeyValuePair {
        KeyValuePair {
            key: k.into(),
            value: v.into(),
        }
    }

    fn field(name: &str, t: DataType) -> FieldSchema {
        FieldSchema {
            name: name.into(),
            data_type: t as i32,
            ..Default::default()
        }
    }

    fn good() -> CollectionSchema {
        let mut pk = field("id", DataType::Int64);
        pk.is_primary_key = true;
        let mut v = field("v", DataType::FloatVector);
        v.type_params = vec![kv("dim", "8")];
        let mut t = field("title", DataType::VarChar);
        t.type_params = vec![kv("max_length", "64")];
        CollectionSchema {
            name: "c".into(),
            fields: vec![pk, v, t],
            enable_dynamic_field: true,
            ..Default::default()
        }
    }

    fn check(s: &CollectionSchema) -> Result<CollectionSchema, Status> {
        schema("c", &s.encode_to_vec(), 64)
    }

    #[test]
    fn a_good_schema_gets_field_ids_and_the_dynamic_field() {
        let s = check(&good()).unwrap();
        let ids: Vec<i64> = s.fields.iter().map(|f| f.field_id).collect();
        assert_eq!(ids, vec![100, 101, 102, 103]);
        assert!(s.fields[3].is_dynamic && s.fields[3].name == "$meta");
    }

    #[test]
    fn bad_schemas_are_refused_with_a_reason() {
        let mut no_pk = good();
        no_pk.fields[0].is_primary_key = false;
        assert!(check(&no_pk)
            .unwrap_err()
            .reason
            .contains("exactly one primary key"));
        let mut two_pk = good();
        two_pk.fields[2].is_primary_key = true;
        assert!(check(&two_pk)
            .unwrap_err()
            .reason
            .contains("exactly one primary key"));
        let mut no_dim = good();
        no_dim.fields[1].type_params.clear();
        assert!(check(&no_dim)
            .unwrap_err()
            .reason
            .contains("dimension is not defined"));
        let mut big_dim = good();
        big_dim.fields[1].type_params = vec![kv("dim", "40000")];
        assert!(check(&big_dim)
            .unwrap_err()
            .reason
            .contains("float vector dimension should be in range 2 ~ 32768"));
        let mut one_dim = good();
        one_dim.fields[1].type_params = vec![kv("dim", "1")];
        assert!(check(&one_dim)
            .unwrap_err()
            .reason
            .contains("invalid dimension: 1. should be in range 2 ~ 32768"));
        let mut geometry = good();
        geometry.fields.push(field("geo", DataType::Geometry));
        assert!(check(&geometry).is_ok(), "a GEOMETRY field");
        let wkt = |s: &str| crate::proto::schema::ValueField {
            data: Some(crate::proto::schema::value_field::Data::StringData(
                s.into(),
            )),
        };
        geometry.fields[3].default_value = Some(wkt("POINT (1 2)"));
        assert!(check(&geometry).is_ok(), "a WKT default value");
        geometry.fields[3].default_value = Some(wkt("LINESTRING (0 0)"));
        let reason = check(&geometry).unwrap_err().reason;
        assert!(
            reason.contains("invalid default value for geometry field geo"),
            "{reason}"
        );
        let mut sparse = good();
        sparse.fields[1].data_type = DataType::SparseFloatVector as i32;
        assert!(check(&sparse)
            .unwrap_err()
            .reason
            .contains("dim should not be specified for sparse vector field"));
        sparse.fields[1].type_params.clear();
        assert!(check(&sparse).is_ok());
        let mut unknown = good();
        unknown.fields[2].data_type = 999;
        assert!(check(&unknown)
            .unwrap_err()
            .reason
            .contains("unknown data type"));
        let mut dup = good();
        dup.fields[2].name = "v".into();
        assert!(check(&dup)
            .unwrap_err()
            .reason
            .contains("duplicated field name"));
        let e = schema("c", b"\xff\xff\xff", 64).unwrap_err();
        assert!(
            e.reason.contains("not a valid serialized CollectionSchema"),
            "{}",
            e.reason
        );
        // A name that is not UTF-8 (field 1 of the schema, 2 bytes).
        let e = schema("c", &[0x0a, 0x02, 0xc3, 0x28], 64).unwrap_err();
        assert!(e.reason.contains("not a valid serialized"), "{}", e.reason);
        let mut wrong_name = good();
        wrong_name.name = "d".into();
        assert!(check(&wrong_name)
            .unwrap_err()
            .reason
            .contains("does not match"));
        let mut too_many = good();
        for i in 0..70 {
            too_many
                .fields
                .push(field(&format!("f{i}"), DataType::Int32));
        }
        assert!(check(&too_many).unwrap_err().reason.contains("maxFieldNum"));
    }

    #[test]
    fn shards_default_and_limit() {
        assert_eq!(shards(0).unwrap(), 1);
        assert_eq!(shards(4).unwrap(), 4);
        assert!(shards(17).is_err());
        assert!(shards(-1).is_err());
    }
}
