//! Sample requests shared by tests and benchmarks.

use std::time::Duration;

use prost::Message;

use crate::config::EtcdConfig;
use crate::proto::common::KeyValuePair;
use crate::proto::schema::{CollectionSchema, DataType, FieldSchema};

/// A key-value pair.
pub fn kv(k: &str, v: &str) -> KeyValuePair {
    KeyValuePair {
        key: k.into(),
        value: v.into(),
    }
}

/// A field `name` of type `t` with field ID `id`, and `dim` for vectors.
pub fn field(id: i64, name: &str, t: DataType, dim: Option<&str>) -> FieldSchema {
    FieldSchema {
        field_id: id,
        name: name.into(),
        data_type: t as i32,
        type_params: dim.map(|d| vec![kv("dim", d)]).unwrap_or_default(),
        ..Default::default()
    }
}

/// Int64 primary key `id`, FloatVector `vec` of `dim`, VarChar `title` (max_length 64).
pub fn fields(dim: &str) -> Vec<FieldSchema> {
    vec![
        FieldSchema {
            name: "id".into(),
            data_type: DataType::Int64 as i32,
            is_primary_key: true,
            ..Default::default()
        },
        FieldSchema {
            name: "vec".into(),
            data_type: DataType::FloatVector as i32,
            type_params: vec![kv("dim", dim)],
            ..Default::default()
        },
        FieldSchema {
            name: "title".into(),
            data_type: DataType::VarChar as i32,
            type_params: vec![kv("max_length", "64")],
            ..Default::default()
        },
    ]
}

/// A serialized schema named `name` with `fields` and dynamic fields on.
pub fn schema_with(name: &str, fields: Vec<FieldSchema>) -> Vec<u8> {
    CollectionSchema {
        name: name.into(),
        fields,
        enable_dynamic_field: true,
        ..Default::default()
    }
    .encode_to_vec()
}

/// A serialized sample schema named `name` with vectors of `dim`.
pub fn schema(name: &str, dim: &str) -> Vec<u8> {
    schema_with(name, fields(dim))
}

/// etcd settings for a test etcd at `endpoints` (comma separated) with the default paths.
pub fn etcd_config(endpoints: &str) -> EtcdConfig {
    EtcdConfig {
        endpoints: endpoints.split(',').map(str::to_string).collect(),
        root_path: "by-dev".into(),
        meta_sub_path: "meta".into(),
        kv_sub_path: "kv".into(),
        request_timeout: Duration::from_secs(2),
        tls: None,
        auth: None,
    }
}

/// `n x dim` floats uniform in [0, 1) from `seed` (splitmix64): the same set every run.
pub fn random_vectors(n: usize, dim: usize, seed: u64) -> Vec<f32> {
    let mut state = seed;
    (0..n * dim)
        .map(|_| {
            state = state.wrapping_add(0x9E37_79B9_7F4A_7C15);
            let mut z = state;
            z = (z ^ (z >> 30)).wrapping_mul(0xBF58_476D_1CE4_E5B9);
            z = (z ^ (z >> 27)).wrapping_mul(0x94D0_49BB_1331_11EB);
            z ^= z >> 31;
            (z >> 40) as f32 / (1u64 << 24) as f32
        })
        .collect()
}
