use std::collections::HashMap;

use super::*;
use crate::proto::schema::{
    field_data, scalar_field, ArrayArray, DataType, FieldData, FieldSchema, JsonArray, LongArray,
    ScalarField, StringArray,
};

fn schema(dynamic: bool) -> CollectionSchema {
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
    ];
    if dynamic {
        let mut m = f(106, "$meta", DataType::Json);
        m.is_dynamic = true;
        fields.push(m);
    }
    CollectionSchema {
        name: "c".into(),
        fields,
        enable_dynamic_field: dynamic,
        ..Default::default()
    }
}

struct Table {
    cols: Vec<FieldData>,
    json: HashMap<i64, Vec<serde_json::Value>>,
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

fn table() -> Table {
    let json = |s: &[&str]| -> Vec<serde_json::Value> {
        s.iter().map(|x| serde_json::from_str(x).unwrap()).collect()
    };
    let ints = |v: Vec<i64>| ScalarField {
        data: Some(scalar_field::Data::LongData(LongArray { data: v })),
    };
    let mut j = HashMap::new();
    j.insert(
        104,
        json(&[
            r#"{"price": 1500, "tags": ["sale", "new"]}"#,
            r#"{"price": 10, "tags": ["old"]}"#,
            r#"{"tags": []}"#,
        ]),
    );
    j.insert(
        106,
        json(&[
            r#"{"subject": "history"}"#,
            r#"{"subject": "math"}"#,
            r#"{}"#,
        ]),
    );
    Table {
        cols: vec![
            scalar(
                100,
                scalar_field::Data::LongData(LongArray {
                    data: vec![1, 2, 3],
                }),
            ),
            scalar(
                102,
                scalar_field::Data::StringData(StringArray {
                    data: vec!["red".into(), "green".into(), "Product X".into()],
                }),
            ),
            scalar(
                103,
                scalar_field::Data::DoubleData(crate::proto::schema::DoubleArray {
                    data: vec![50.0, 120.5, 99.0],
                }),
            ),
            scalar(
                104,
                scalar_field::Data::JsonData(JsonArray {
                    data: vec![vec![], vec![], vec![]],
                }),
            ),
            scalar(
                105,
                scalar_field::Data::ArrayData(ArrayArray {
                    data: vec![ints(vec![23, 5]), ints(vec![1; 12]), ints(vec![])],
                    element_type: DataType::Int64 as i32,
                }),
            ),
            scalar(
                106,
                scalar_field::Data::JsonData(JsonArray {
                    data: vec![vec![], vec![], vec![]],
                }),
            ),
        ],
        json: j,
    }
}

fn rows(expr: &str) -> Vec<usize> {
    let f = Filter::compile(expr, &schema(true), &HashMap::new())
        .unwrap_or_else(|e| panic!("{expr}: {e}"));
    let t = table();
    (0..3).filter(|r| f.matches(&t, *r)).collect()
}

#[test]
fn the_documented_filters_select_the_right_rows() {
    assert_eq!(rows("id in [1, 3]"), vec![0, 2]);
    assert_eq!(rows("id not in [1, 3]"), vec![1]);
    assert_eq!(rows("color == 'red'"), vec![0]);
    assert_eq!(rows("color != \"red\""), vec![1, 2]);
    assert_eq!(rows("price < 100"), vec![0, 2]);
    assert_eq!(rows("10 < price < 100"), vec![0, 2]);
    assert_eq!(rows("100 > price >= 50"), vec![0, 2]);
    assert_eq!(rows("color == \"red\" AND price > 40"), vec![0]);
    assert_eq!(
        rows("(color == 'red' OR color == 'green') and price < 100"),
        vec![0]
    );
    assert_eq!(rows("not (color == 'green')"), vec![0, 2]);
    assert_eq!(rows("!(color == 'green')"), vec![0, 2]);
    assert_eq!(rows("color like 'Prod%'"), vec![2]);
    assert_eq!(rows("color LIKE '%ee%'"), vec![1]);
    assert_eq!(rows("color like 'r_d'"), vec![0]);
    assert_eq!(rows("price * 0.9 < 50"), vec![0]);
    assert_eq!(rows("id + 5 == 7"), vec![1]);
    assert_eq!(rows("id % 2 == 1 && id ** 2 > 4"), vec![2]);
    assert_eq!(rows("-id < -2"), vec![2]);
    assert_eq!(rows("product[\"price\"] > 1000"), vec![0]);
    assert_eq!(rows("json_contains(product[\"tags\"], \"sale\")"), vec![0]);
    assert_eq!(
        rows("JSON_CONTAINS_ANY(product['tags'], ['old', 'new'])"),
        vec![0, 1]
    );
    assert_eq!(
        rows("json_contains_all(product['tags'], ['sale', 'new'])"),
        vec![0]
    );
    assert_eq!(rows("ARRAY_CONTAINS(temps, 23)"), vec![0]);
    assert_eq!(rows("array_length(temps) < 10"), vec![0, 2]);
    assert_eq!(rows("temps[10] > 0"), vec![1]);
    assert_eq!(rows("subject == 'history'"), vec![0]);
    assert_eq!(rows("$meta['subject'] in ['math']"), vec![1]);
    assert_eq!(rows("exists product['price']"), vec![0, 1]);
    assert_eq!(rows("product['price'] is null"), vec![2]);
    assert_eq!(rows("id in []"), Vec::<usize>::new());
    assert_eq!(rows("id in [0x1, 0b11]"), vec![0, 2]);
}

#[test]
fn bad_filters_are_refused_with_the_reason() {
    let s = schema(false);
    let bad = |e: &str| {
        Filter::compile(e, &s, &HashMap::new())
            .expect_err(e)
            .to_string()
    };
    assert!(
        bad("nope == 1").contains("field nope not exist"),
        "{}",
        bad("nope == 1")
    );
    assert!(bad("id >> 3").contains("syntax error"));
    assert!(bad("color == 3").contains("cannot compare"));
    assert!(bad("price like 'a%'").contains("like applies to strings"));
    assert!(bad("vector == 1").contains("vector field"));
    assert!(bad("id").contains("not a boolean"));
    assert!(bad("id in [price]").contains("constants"));
    assert!(bad("1 < id > 3").contains("range"));
    assert!(bad("id > {x}").contains("placeholder"));
    assert!(bad("").contains("syntax error"));
}

#[test]
fn templates_fill_placeholders_and_primary_keys_are_extracted() {
    use crate::proto::schema::{template_value::Val, TemplateValue};
    let mut t = HashMap::new();
    t.insert(
        "min".to_string(),
        TemplateValue {
            val: Some(Val::Int64Val(1)),
        },
    );
    let f = Filter::compile("id > {min}", &schema(false), &t).unwrap();
    let tb = table();
    assert_eq!((0..3).filter(|r| f.matches(&tb, *r)).count(), 2);
    let f = Filter::compile("id in [4, 5]", &schema(false), &HashMap::new()).unwrap();
    let mut pks = f.primary_keys(100).unwrap();
    pks.sort_by(|a, b| a.compare(b).unwrap());
    assert_eq!(pks, vec![Value::Int(4), Value::Int(5)]);
    assert!(Filter::compile("id > 4", &schema(false), &HashMap::new())
        .unwrap()
        .primary_keys(100)
        .is_none());
}
