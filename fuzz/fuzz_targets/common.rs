#![allow(dead_code)]
//! A collection schema with one field of each kind filters read, and three rows of it.

use std::collections::HashMap;

use milvus::expr::Columns;
use milvus::proto::schema::{
    field_data, scalar_field, ArrayArray, BoolArray, CollectionSchema, DataType, DoubleArray,
    FieldData, FieldSchema, JsonArray, LongArray, ScalarField, StringArray,
};

pub fn schema() -> CollectionSchema {
    let f = |id: i64, name: &str, t: DataType| FieldSchema {
        field_id: id,
        name: name.into(),
        data_type: t as i32,
        is_primary_key: id == 100,
        ..Default::default()
    };
    let mut fields = vec![
        f(100, "id", DataType::Int64),
        f(101, "vector", DataType::FloatVector),
        f(102, "color", DataType::VarChar),
        f(103, "price", DataType::Double),
        f(104, "product", DataType::Json),
        f(105, "temps", DataType::Array),
        f(107, "flag", DataType::Bool),
    ];
    fields[1].type_params = vec![milvus::proto::common::KeyValuePair {
        key: "dim".into(),
        value: "2".into(),
    }];
    fields[2].type_params = vec![milvus::proto::common::KeyValuePair {
        key: "max_length".into(),
        value: "16".into(),
    }];
    fields[5].element_type = DataType::Int64 as i32;
    fields[5].type_params = vec![milvus::proto::common::KeyValuePair {
        key: "max_capacity".into(),
        value: "4".into(),
    }];
    let mut meta = f(106, "$meta", DataType::Json);
    meta.is_dynamic = true;
    fields.push(meta);
    CollectionSchema {
        name: "c".into(),
        fields,
        enable_dynamic_field: true,
        ..Default::default()
    }
}

pub struct Table {
    pub cols: Vec<FieldData>,
    pub json: HashMap<i64, Vec<serde_json::Value>>,
}

impl Columns for Table {
    fn column(&self, id: i64) -> Option<&FieldData> {
        self.cols.iter().find(|c| c.field_id == id)
    }
    fn json(&self, id: i64, row: usize) -> Option<&serde_json::Value> {
        self.json.get(&id).and_then(|v| v.get(row))
    }
}

fn scalar(id: i64, data: scalar_field::Data) -> FieldData {
    FieldData {
        field_id: id,
        field: Some(field_data::Field::Scalars(ScalarField { data: Some(data) })),
        ..Default::default()
    }
}

pub fn table() -> Table {
    let parse = |s: &[&str]| -> Vec<serde_json::Value> {
        s.iter().map(|x| serde_json::from_str(x).unwrap()).collect()
    };
    let ints = |v: Vec<i64>| ScalarField {
        data: Some(scalar_field::Data::LongData(LongArray { data: v })),
    };
    let mut json = HashMap::new();
    json.insert(
        104,
        parse(&[r#"{"price": 1500, "tags": ["sale", "new"], "a": {"b": [1, 2.5, "x"]}}"#, r#"{"price": -10}"#, r#"null"#]),
    );
    json.insert(106, parse(&[r#"{"subject": "history", "n": 3}"#, r#"{"n": 1e300}"#, r#"{}"#]));
    let empty_json = || scalar_field::Data::JsonData(JsonArray { data: vec![vec![]; 3] });
    Table {
        cols: vec![
            scalar(100, scalar_field::Data::LongData(LongArray { data: vec![i64::MIN, 0, i64::MAX] })),
            scalar(102, scalar_field::Data::StringData(StringArray { data: vec!["red".into(), "".into(), "Ünïcode %_".into()] })),
            scalar(103, scalar_field::Data::DoubleData(DoubleArray { data: vec![f64::NAN, -0.0, 1e308] })),
            scalar(104, empty_json()),
            scalar(
                105,
                scalar_field::Data::ArrayData(ArrayArray {
                    data: vec![ints(vec![23, 5]), ints(vec![i64::MIN; 4]), ints(vec![])],
                    element_type: DataType::Int64 as i32,
                }),
            ),
            scalar(106, empty_json()),
            scalar(107, scalar_field::Data::BoolData(BoolArray { data: vec![true, false, true] })),
        ],
        json,
    }
}
