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

/// A table whose JSON paths' values are made as flat columns by kind (`PathColumn`)
/// on every test of a path, as querynodes' chunks make them.
struct Paths<'a>(&'a Table);

impl Columns for Paths<'_> {
    fn column(&self, id: i64) -> Option<&FieldData> {
        self.0.column(id)
    }
    fn json(&self, id: i64, row: usize) -> Option<&serde_json::Value> {
        self.0.json(id, row)
    }
    fn json_path(&self, id: i64, path: &[Step]) -> Option<std::sync::Arc<PathColumn>> {
        let docs = self.0.json.get(&id)?;
        let valid = &self.column(id)?.valid_data;
        Some(std::sync::Arc::new(PathColumn::of(docs, valid, path)))
    }
}

fn scalar(id: i64, data: scalar_field::Data) -> FieldData {
    FieldData {
        field_id: id,
        field: Some(field_data::Field::Scalars(ScalarField { data: Some(data) })),
        ..Default::default()
    }
}

/// A type parameter (`kv("max_length", "256")`).
fn kv(k: &str, v: &str) -> crate::proto::common::KeyValuePair {
    crate::proto::common::KeyValuePair {
        key: k.into(),
        value: v.into(),
    }
}

/// The rows a mask selects, as a row list.
fn picked_rows(m: &[bool]) -> Vec<u32> {
    (0..m.len() as u32).filter(|r| m[*r as usize]).collect()
}

/// The rows a mask selects.
fn picked(m: Vec<bool>) -> Vec<usize> {
    m.iter()
        .enumerate()
        .filter(|(_, b)| **b)
        .map(|(i, _)| i)
        .collect()
}

/// `expr` does not compile against `schema`, and the reason contains `why`.
fn refused(expr: &str, schema: &CollectionSchema, why: &str) {
    let e = Filter::compile(expr, schema, &HashMap::new())
        .err()
        .unwrap_or_else(|| panic!("{expr} compiled"));
    assert!(e.to_string().contains(why), "{expr}: {e}");
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

/// A small deterministic generator for the differential test.
struct Rng(u64);

impl Rng {
    fn next(&mut self) -> u64 {
        self.0 ^= self.0 << 13;
        self.0 ^= self.0 >> 7;
        self.0 ^= self.0 << 17;
        self.0
    }
    fn below(&mut self, n: u64) -> u64 {
        self.next() % n
    }
    fn pick<'a, T>(&mut self, xs: &'a [T]) -> &'a T {
        &xs[self.below(xs.len() as u64) as usize]
    }
}

/// Random columns of every flat kind (nulls, NaN, repeated values, short columns) plus
/// JSON and arrays, for `rows` rows.
fn random_table(r: &mut Rng, rows: usize) -> Table {
    use crate::proto::schema::{BoolArray, DoubleArray, FloatArray, IntArray};
    use scalar_field::Data as D;
    let nulls = |r: &mut Rng, col: FieldData| -> FieldData {
        let mut col = col;
        if r.below(2) == 0 {
            col.valid_data = (0..rows).map(|_| r.below(5) != 0).collect();
        }
        col
    };
    let base = r.below(1000) as i64 - 500;
    let ids: Vec<i64> = (0..rows as i64)
        .map(|i| base + i * (1 + r.below(3) as i64))
        .collect();
    let words = ["red", "green", "Product X", "re", "", "redder", "blue%"];
    let colors = (0..rows).map(|_| r.pick(&words).to_string()).collect();
    let prices = (0..rows)
        .map(|_| match r.below(10) {
            0 => f64::NAN,
            _ => r.below(200) as f64 / 2.0 - 20.0,
        })
        .collect();
    let small = (0..rows).map(|_| r.below(7) as i32 - 3).collect();
    let flags = (0..rows).map(|_| r.below(2) == 0).collect();
    let ratios = (0..rows).map(|_| r.below(9) as f32 / 4.0).collect();
    let mut small_col = scalar(107, D::IntData(IntArray { data: small }));
    if r.below(4) == 0 {
        // A column shorter than the chunk (rows past it read as null).
        if let Some(field_data::Field::Scalars(s)) = &mut small_col.field {
            if let Some(D::IntData(d)) = &mut s.data {
                d.data.truncate(rows / 2);
            }
        }
    }
    // JSON documents whose paths hold every kind (integers, floats, integral floats,
    // strings, booleans, objects), are missing or null, now and then an integer past
    // 2^53 (a JSON path index holding one is refused).
    let json_rows: Vec<serde_json::Value> = (0..rows)
        .map(|_| match r.below(5) {
            0 | 1 => {
                let price = match r.below(5) {
                    0 => serde_json::json!(r.below(20)),
                    1 => serde_json::json!(r.below(20) as f64 + 0.5),
                    2 => serde_json::json!(r.below(20) as f64),
                    3 if r.below(20) == 0 => serde_json::json!((1i64 << 60) + 1),
                    _ => serde_json::json!(-(r.below(5) as i64)),
                };
                serde_json::json!({
                    "price": price,
                    "name": *r.pick(&["red", "re", "", "green", "s"]),
                    "ok": r.below(2) == 0,
                    "tags": ["sale"],
                })
            }
            2 => serde_json::json!({"tags": [], "price": "12", "name": 3, "ok": "true"}),
            3 => serde_json::json!({"price": {"x": 1}, "name": true, "ok": 1}),
            _ => serde_json::Value::Null,
        })
        .collect();
    let mut json = HashMap::new();
    json.insert(104, json_rows.clone());
    json.insert(106, json_rows);
    let empty_json = || JsonArray {
        data: vec![vec![]; rows],
    };
    Table {
        cols: vec![
            scalar(100, D::LongData(LongArray { data: ids })),
            nulls(r, scalar(102, D::StringData(StringArray { data: colors }))),
            nulls(r, scalar(103, D::DoubleData(DoubleArray { data: prices }))),
            scalar(104, D::JsonData(empty_json())),
            scalar(106, D::JsonData(empty_json())),
            nulls(r, small_col),
            nulls(r, scalar(108, D::BoolData(BoolArray { data: flags }))),
            nulls(r, scalar(109, D::FloatData(FloatArray { data: ratios }))),
        ],
        json,
    }
}

/// A random filter over the random table's fields.
fn random_filter(r: &mut Rng, depth: u32) -> String {
    let leaf = |r: &mut Rng| -> String {
        let field = *r.pick(&[
            "id",
            "color",
            "price",
            "n",
            "flag",
            "ratio",
            "product['price']",
            "product['name']",
            "product['ok']",
            "product['tags'][0]",
            "product['tags']",
            "name",
        ]);
        let op = *r.pick(&["==", "!=", "<", "<=", ">", ">="]);
        let konst = match r.below(6) {
            0 => format!("{}", r.below(40) as i64 - 20),
            1 => format!("{}.5", r.below(40) as i64 - 20),
            2 => format!("'{}'", r.pick(&["red", "re", "", "green"])),
            3 => r.pick(&["true", "false"]).to_string(),
            4 => format!("{}", r.below(1500) as i64 - 500),
            _ => "0".to_string(),
        };
        match r.below(12) {
            0 => format!("{field} in [{}, {}, 3, -1]", r.below(30) as i64 - 10, konst),
            1 => format!("{field} not in ['red', {}]", r.below(5)),
            9 => format!(
                "{field} {}in [{}]",
                r.pick(&["", "not "]),
                r.pick(&["'red', 're', ''", "'green'", "1, 2.5, 19", "true", "0, -3"])
            ),
            2 => format!(
                "{} like '{}'",
                r.pick(&["color", "product['name']", "name"]),
                r.pick(&["re%", "%d", "%ee%", "r_d", "red", "%", "", "blue\\%", "%r%d%"])
            ),
            3 => format!("{field} is {}", r.pick(&["null", "not null"])),
            4 => r.pick(&["flag", "product['ok']", "ok"]).to_string(),
            5 => format!("{konst} {op} {field}"),
            10 => format!(
                "exists {}",
                r.pick(&["product['price']", "product['tags'][0]", "name", "product"])
            ),
            6 => format!("{field} + 1 {op} {konst}"),
            _ => format!("{field} {op} {konst}"),
        }
    };
    if depth == 0 || r.below(3) == 0 {
        return leaf(r);
    }
    match r.below(3) {
        0 => format!(
            "({}) and ({})",
            random_filter(r, depth - 1),
            random_filter(r, depth - 1)
        ),
        1 => format!(
            "({}) or ({})",
            random_filter(r, depth - 1),
            random_filter(r, depth - 1)
        ),
        _ => format!("not ({})", random_filter(r, depth - 1)),
    }
}

fn differential_schema() -> CollectionSchema {
    let mut s = schema(true);
    for (id, name, t) in [
        (107, "n", DataType::Int32),
        (108, "flag", DataType::Bool),
        (109, "ratio", DataType::Float),
    ] {
        s.fields.push(FieldSchema {
            field_id: id,
            name: name.into(),
            data_type: t as i32,
            nullable: true,
            ..Default::default()
        });
    }
    s
}

/// A table with a scalar index of every flat column and of JSON paths (`index::scalar`):
/// `product['price']` (DOUBLE), `product['name']` (VARCHAR), `product['ok']` (BOOL) and
/// the dynamic key `name` (VARCHAR), each attached only when it fits (X1, X2).
struct Sorted<'a> {
    table: &'a Table,
    indexes: Vec<(i64, Vec<String>, crate::index::scalar::ScalarIndex)>,
}

impl<'a> Sorted<'a> {
    fn of(table: &'a Table) -> Sorted<'a> {
        use crate::index::scalar::{JsonCast, ScalarIndex};
        let mut indexes: Vec<_> = table
            .cols
            .iter()
            .filter_map(|c| {
                let index = ScalarIndex::build(c).ok()?;
                assert!(index.fits(c));
                Some((c.field_id, Vec::new(), index))
            })
            .collect();
        for (id, key, cast) in [
            (104, "price", JsonCast::Double),
            (104, "name", JsonCast::Varchar),
            (104, "ok", JsonCast::Bool),
            (106, "name", JsonCast::Varchar),
        ] {
            let docs = &table.json[&id];
            let col = scalar(
                id,
                scalar_field::Data::JsonData(JsonArray {
                    data: docs
                        .iter()
                        .map(|d| serde_json::to_vec(d).unwrap())
                        .collect(),
                }),
            );
            let keys = vec![key.to_string()];
            let index = ScalarIndex::build_json(&col, &keys, cast).unwrap();
            if index.fits_json(docs, |_| true, &keys) {
                indexes.push((id, keys, index));
            }
        }
        Sorted { table, indexes }
    }
}

impl Columns for Sorted<'_> {
    fn column(&self, id: i64) -> Option<&FieldData> {
        self.table.column(id)
    }
    fn json(&self, id: i64, row: usize) -> Option<&serde_json::Value> {
        self.table.json(id, row)
    }
    fn sorted(&self, id: i64, keys: &[String]) -> Option<&crate::index::scalar::ScalarIndex> {
        self.indexes
            .iter()
            .find(|(i, k, _)| *i == id && k == keys)
            .map(|(.., x)| x)
    }
}

/// Invariants B1, B2 and B3: the column-at-a-time evaluation answers exactly as the row
/// evaluator on random data and random filters, with or without JSON paths' values as
/// flat columns (P1), with or without scalar indexes (every lookup an index can answer
/// taken from it), and a chunk whose bounds rule a filter out has no matching row.
#[test]
fn batch_evaluation_and_chunk_bounds_agree_with_the_row_evaluator() {
    let schema = differential_schema();
    let mut r = Rng(0x9e37_79b9_7f4a_7c15);
    let (mut compiled, mut pruned, mut listed) = (0, 0, 0);
    for _ in 0..150 {
        let rows = 1 + r.below(60) as usize;
        let t = random_table(&mut r, rows);
        let bounds: HashMap<i64, Bounds> = t
            .cols
            .iter()
            .filter_map(|c| Bounds::of(c).map(|b| (c.field_id, b)))
            .collect();
        let sorted = Sorted::of(&t);
        for _ in 0..40 {
            let text = random_filter(&mut r, 3);
            let Ok(f) = Filter::compile(&text, &schema, &HashMap::new()) else {
                continue;
            };
            compiled += 1;
            let by_row: Vec<bool> = (0..rows).map(|row| f.matches(&t, row)).collect();
            assert_eq!(f.select(&t, rows), by_row, "{text}");
            assert_eq!(f.select(&Paths(&t), rows), by_row, "{text} (JSON paths)");
            assert_eq!(f.select_indexed(&sorted, rows), by_row, "{text} (indexed)");
            if let Some(list) = f.select_rows_indexed(&sorted, rows) {
                listed += 1;
                assert_eq!(list, picked_rows(&by_row), "{text} (indexed, rows)");
            }
            // With the shares the querynode uses (a lookup or an `and`'s part taken
            // only when it selects few rows).
            if let Some(list) = f.select_rows(&sorted, rows) {
                assert_eq!(list, picked_rows(&by_row), "{text} (rows, shares)");
            }
            if !f.may_match(&bounds) {
                pruned += 1;
                assert!(!by_row.contains(&true), "{text}: pruned, yet rows match");
            }
        }
    }
    assert!(compiled > 2000, "only {compiled} random filters compiled");
    assert!(
        pruned > 50,
        "only {pruned} filters were ruled out by bounds"
    );
    assert!(listed > 200, "only {listed} filters were answered as rows");
    eprintln!("{compiled} random filters, {pruned} ruled out by bounds, {listed} as rows");
}

/// B3 for ranges: comparisons of one indexed field within an `and` (answered as one
/// intersection of ranges in the field's value order) select what the row evaluator
/// selects, with other parts beside them.
#[test]
fn ranges_of_one_indexed_field_agree_with_the_row_evaluator() {
    let schema = differential_schema();
    let mut r = Rng(0x2545_f491_4f6c_dd1d);
    let (mut checked, mut listed) = (0, 0);
    for _ in 0..200 {
        let rows = 1 + r.below(80) as usize;
        let t = random_table(&mut r, rows);
        let sorted = Sorted::of(&t);
        for _ in 0..20 {
            let field = *r.pick(&[
                "id",
                "color",
                "price",
                "n",
                "flag",
                "ratio",
                "product['price']",
                "product['name']",
                "name",
            ]);
            let konst = |r: &mut Rng| match r.below(5) {
                0 => format!("{}", r.below(40) as i64 - 20),
                1 => format!("{}.5", r.below(40) as i64 - 20),
                2 => format!("'{}'", r.pick(&["red", "re", "", "green", "s"])),
                3 => r.pick(&["true", "false"]).to_string(),
                _ => format!("{}", r.below(1500) as i64 - 500),
            };
            let mut parts = Vec::new();
            for _ in 0..2 + r.below(2) {
                let op = *r.pick(&["==", "<", "<=", ">", ">=", "!="]);
                let k = konst(&mut r);
                parts.push(if r.below(2) == 0 {
                    format!("{field} {op} {k}")
                } else {
                    format!("{k} {op} {field}")
                });
            }
            if r.below(3) == 0 {
                parts.push("flag".to_string());
            }
            let text = parts.join(" and ");
            let Ok(f) = Filter::compile(&text, &schema, &HashMap::new()) else {
                continue;
            };
            checked += 1;
            let by_row: Vec<bool> = (0..rows).map(|row| f.matches(&t, row)).collect();
            assert_eq!(f.select_indexed(&sorted, rows), by_row, "{text} (indexed)");
            if let Some(list) = f.select_rows_indexed(&sorted, rows) {
                listed += 1;
                assert_eq!(list, picked_rows(&by_row), "{text} (indexed, rows)");
            }
            if let Some(list) = f.select_rows(&sorted, rows) {
                assert_eq!(list, picked_rows(&by_row), "{text} (rows, shares)");
            }
        }
    }
    assert!(checked > 600, "only {checked} range filters compiled");
    assert!(
        listed > 300,
        "only {listed} range filters were answered as rows"
    );
}

#[test]
fn chunk_bounds_rule_out_ranges_and_lists_outside_them() {
    let schema = differential_schema();
    let t = table();
    let bounds: HashMap<i64, Bounds> = t
        .cols
        .iter()
        .filter_map(|c| Bounds::of(c).map(|b| (c.field_id, b)))
        .collect();
    let may = |e: &str| {
        Filter::compile(e, &schema, &HashMap::new())
            .unwrap()
            .may_match(&bounds)
    };
    assert!(!may("id > 3"));
    assert!(!may("id in [7, 9]"));
    assert!(!may("id >= 10 and color == 'red'"));
    assert!(!may("color > 'red'"));
    assert!(!may("price < 50 or id == 0"));
    assert!(may("id >= 3"));
    assert!(may("id in [9, 2]"));
    assert!(may("not (id > 3)"));
    assert!(may("id + 1 > 100"));
    assert!(may("product['price'] > 100000"));
}

#[test]
fn key_values_bound_a_field_through_and_and_or() {
    let schema = schema(true);
    let vals = |e: &str| {
        Filter::compile(e, &schema, &HashMap::new())
            .unwrap()
            .key_values(102)
            .map(|v| v.into_iter().map(|x| format!("{x:?}")).collect::<Vec<_>>())
    };
    assert_eq!(
        vals("color == 'red'"),
        Some(vec!["Str(\"red\")".to_string()])
    );
    assert_eq!(vals("id > 3 and color in ['a']").map(|v| v.len()), Some(1));
    assert_eq!(
        vals("color == 'a' or color in ['b', 'c']").map(|v| v.len()),
        Some(3)
    );
    assert_eq!(vals("color == 'a' or id == 2"), None);
    assert_eq!(vals("not (color == 'a')"), None);
    assert_eq!(vals("color != 'a'"), None);
    assert_eq!(vals("color like 'a%'"), None);
}

#[test]
fn text_match_finds_rows_with_any_token_of_the_query_through_the_field_analyzer() {
    let mut s = schema(false);
    s.fields.push(FieldSchema {
        field_id: 107,
        name: "text".into(),
        data_type: DataType::VarChar as i32,
        type_params: vec![
            kv("max_length", "256"),
            kv("enable_analyzer", "true"),
            kv("enable_match", "true"),
            kv(
                "analyzer_params",
                r#"{"tokenizer": "standard", "filter": ["lowercase", {"type": "stop", "stop_words": ["the"]}]}"#,
            ),
        ],
        ..Default::default()
    });
    let mut t = table();
    let mut text = scalar(
        107,
        scalar_field::Data::StringData(StringArray {
            data: vec![
                "The quick brown fox".into(),
                "Lazy dogs, THE END".into(),
                String::new(),
            ],
        }),
    );
    text.valid_data = vec![true, true, false];
    t.cols.push(text);
    // The same rows with a text index, as querynodes keep one per chunk.
    let params = crate::schema::match_analyzer(s.fields.last().unwrap()).unwrap();
    let mut analyzer = crate::analyzer::cached(params).unwrap();
    let index = crate::analyzer::TextIndex::build(
        &mut analyzer,
        [
            Some("The quick brown fox"),
            Some("Lazy dogs, THE END"),
            None,
        ],
    );
    let indexed = Indexed { table: &t, index };
    let run = |expr: &str| -> (Vec<usize>, Vec<usize>) {
        let f =
            Filter::compile(expr, &s, &HashMap::new()).unwrap_or_else(|e| panic!("{expr}: {e}"));
        let by_row = (0..3).filter(|r| f.matches(&t, *r)).collect();
        let batch = picked(f.select(&t, 3));
        assert_eq!(
            picked(f.select(&indexed, 3)),
            batch,
            "{expr} through the text index"
        );
        (by_row, batch)
    };
    for (expr, want) in [
        ("TEXT_MATCH(text, 'fox')", vec![0]),
        ("text_match(text, 'FOX dogs')", vec![0, 1]),
        // "the" is a stop word: the query has no token left and matches nothing.
        ("TEXT_MATCH(text, 'the')", vec![]),
        ("TEXT_MATCH(text, 'end') and id > 1", vec![1]),
        ("not TEXT_MATCH(text, 'fox')", vec![1, 2]),
    ] {
        let (by_row, batch) = run(expr);
        assert_eq!(by_row, want, "{expr} row by row");
        assert_eq!(batch, want, "{expr} in batches");
    }
    for (expr, why) in [
        (
            "TEXT_MATCH(color, 'red')",
            "field color does not enable match",
        ),
        (
            "TEXT_MATCH(price, 'red')",
            "text match operation on non-string is unsupported",
        ),
        (
            "TEXT_MATCH(text, 1)",
            "TEXT_MATCH takes a field and a string",
        ),
    ] {
        refused(expr, &s, why);
    }
}

/// PHRASE_MATCH on Milvus's documented examples (its "Phrase Match" page and the issue
/// that asked for it), row by row, in batches and through a text index; and its refusals
/// in Milvus's words.
#[test]
fn phrase_match_finds_the_phrase_within_the_slop_as_milvus_documents_it() {
    let s = CollectionSchema {
        name: "p".into(),
        fields: vec![
            FieldSchema {
                field_id: 100,
                name: "id".into(),
                data_type: DataType::Int64 as i32,
                is_primary_key: true,
                ..Default::default()
            },
            FieldSchema {
                field_id: 107,
                name: "text".into(),
                data_type: DataType::VarChar as i32,
                nullable: true,
                type_params: vec![
                    kv("max_length", "256"),
                    kv("enable_analyzer", "true"),
                    kv("enable_match", "true"),
                    kv("analyzer_params", r#"{"type": "english"}"#),
                ],
                ..Default::default()
            },
            FieldSchema {
                field_id: 108,
                name: "plain".into(),
                data_type: DataType::VarChar as i32,
                type_params: vec![kv("max_length", "256")],
                ..Default::default()
            },
        ],
        ..Default::default()
    };
    let rows: Vec<Option<&str>> = vec![
        Some("Machine learning boosts efficiency in large-scale data analysis"),
        Some("Learning a machine-based approach is vital for modern AI progress"),
        Some("Deep learning machine architectures optimize computational loads"),
        Some("Machine swiftly improves model performance for ongoing learning"),
        Some("Learning advanced machine algorithms expands AI capabilities"),
        Some("I like swimming and riding!"),
        None,
        Some("important notice: read the notice"),
    ];
    let mut text = scalar(
        107,
        scalar_field::Data::StringData(StringArray {
            data: rows.iter().map(|r| r.unwrap_or("").to_string()).collect(),
        }),
    );
    text.valid_data = rows.iter().map(|r| r.is_some()).collect();
    let t = Table {
        cols: vec![text],
        json: HashMap::new(),
    };
    let params = crate::schema::match_analyzer(&s.fields[1]).unwrap();
    let index =
        crate::analyzer::TextIndex::build(&mut crate::analyzer::cached(params).unwrap(), rows);
    let indexed = Indexed { table: &t, index };
    let n = 8;
    for (expr, want) in [
        // Milvus's documented examples (rows 0-4).
        ("PHRASE_MATCH(text, 'machine learning')", vec![0]),
        ("PHRASE_MATCH(text, 'learning machine', 1)", vec![1, 2, 4]),
        ("PHRASE_MATCH(text, 'machine learning', 2)", vec![0, 2]),
        ("PHRASE_MATCH(text, 'machine learning', 3)", vec![0, 1, 2, 4]),
        // The request's examples: "and" is a stop word of `english`, so it leaves a gap.
        ("phrase_match(text, 'swimming riding')", vec![]),
        ("phrase_match(text, 'swimming and riding')", vec![5]),
        ("phrase_match(text, 'swimming riding', 1)", vec![5]),
        ("phrase_match(text, 'riding swimming', 2)", vec![]),
        ("phrase_match(text, 'riding swimming', 3)", vec![5]),
        // One token: a text match of it, whatever the slop; none: nothing.
        ("PHRASE_MATCH(text, 'capabilities', 0)", vec![4]),
        ("PHRASE_MATCH(text, 'the and', 4)", vec![]),
        // A repeated query token may take the same position (Milvus issue 41738).
        ("PHRASE_MATCH(text, 'important important notice', 1)", vec![7]),
        ("PHRASE_MATCH(text, 'important important notice')", vec![]),
        ("PHRASE_MATCH(text, 'machine learning', 4294967295) and not PHRASE_MATCH(text, 'machine learning')", vec![1, 2, 3, 4]),
        ("not PHRASE_MATCH(text, 'learning machine', 1)", vec![0, 3, 5, 6, 7]),
    ] {
        let f = Filter::compile(expr, &s, &HashMap::new()).unwrap_or_else(|e| panic!("{expr}: {e}"));
        let by_row: Vec<usize> = (0..n).filter(|r| f.matches(&t, *r)).collect();
        assert_eq!(by_row, want, "{expr} row by row");
        assert_eq!(picked(f.select(&t, n)), want, "{expr} in batches");
        assert_eq!(picked(f.select(&indexed, n)), want, "{expr} through the text index");
    }
    for (expr, why) in [
        (
            "PHRASE_MATCH(plain, 'a b')",
            "field plain does not enable match",
        ),
        (
            "PHRASE_MATCH(id, 'a b')",
            "phrase match operation on non-string is unsupported",
        ),
        (
            "PHRASE_MATCH(text, 'a b', -1)",
            r#""slop" should not be a negative interger. "slop" passed: -1"#,
        ),
        (
            "PHRASE_MATCH(text, 'a b', 4294967296)",
            r#""slop" exceeds the range of "uint32". "slop" expression passed: 4294967296"#,
        ),
        (
            "PHRASE_MATCH(text, 'a b', id)",
            r#""slop" should be a const integer expression with "uint32" value. "slop" expression passed: id"#,
        ),
        (
            "PHRASE_MATCH(text, 'a b', 1.5)",
            r#""slop" should be a const integer expression"#,
        ),
        (
            "PHRASE_MATCH(text)",
            "PHRASE_MATCH takes a field, a string and an optional slop",
        ),
        (
            "PHRASE_MATCH(text, 'a', 1, 2)",
            "PHRASE_MATCH takes a field, a string and an optional slop",
        ),
        (
            "Phrase_Match(text, 'a b')",
            "function Phrase_Match is not found",
        ),
    ] {
        refused(expr, &s, why);
    }
}

/// The phrase rule against its definition, by enumeration: random texts of a few words and
/// random phrases (repeats included) match exactly when some choice of one position per
/// query token fits in a window of the slop.
#[test]
fn phrase_windows_agree_with_every_choice_of_positions() {
    use crate::analyzer::Token;
    use crate::expr::compile::Phrase;
    let mut rng = 0x2545_f491_4f6c_dd1du64;
    let mut next = |m: u64| {
        rng ^= rng << 13;
        rng ^= rng >> 7;
        rng ^= rng << 17;
        rng % m
    };
    let words = ["a", "b", "c", "d"];
    for _ in 0..3000 {
        let len = 1 + next(9) as usize;
        let cut: Vec<Token> = (0..len)
            .map(|i| Token {
                text: words[next(4) as usize].to_string(),
                start_offset: 0,
                end_offset: 0,
                position: i + next(2) as usize * (i % 3),
                position_length: 1,
            })
            .collect();
        let terms: Vec<(String, i64)> = (0..2 + next(3) as usize)
            .map(|i| {
                (
                    words[next(4) as usize].to_string(),
                    i as i64 + next(2) as i64,
                )
            })
            .collect();
        let slop = next(6);
        let phrase = Phrase {
            terms: terms.clone(),
            slop,
        };
        // Every choice of one position per query token.
        let lists: Vec<Vec<i64>> = terms
            .iter()
            .map(|(w, q)| {
                cut.iter()
                    .filter(|t| &t.text == w)
                    .map(|t| t.position as i64 - q)
                    .collect()
            })
            .collect();
        let mut fits = false;
        let mut pick = vec![0usize; lists.len()];
        if lists.iter().all(|l| !l.is_empty()) {
            'all: loop {
                let vals: Vec<i64> = pick.iter().zip(&lists).map(|(i, l)| l[*i]).collect();
                let (lo, hi) = (vals.iter().min().unwrap(), vals.iter().max().unwrap());
                if (hi - lo) as u64 <= slop {
                    fits = true;
                    break;
                }
                for k in 0..pick.len() {
                    pick[k] += 1;
                    if pick[k] < lists[k].len() {
                        continue 'all;
                    }
                    pick[k] = 0;
                }
                break;
            }
        }
        assert_eq!(
            phrase.found_in(&cut),
            fits,
            "{terms:?} slop {slop} in {:?}",
            cut.iter()
                .map(|t| (&t.text, t.position))
                .collect::<Vec<_>>()
        );
    }
}

struct Indexed<'a> {
    table: &'a Table,
    index: crate::analyzer::TextIndex,
}

impl Columns for Indexed<'_> {
    fn column(&self, id: i64) -> Option<&FieldData> {
        self.table.column(id)
    }
    fn json(&self, id: i64, row: usize) -> Option<&serde_json::Value> {
        self.table.json(id, row)
    }
    fn text_index(&self, id: i64) -> Option<&crate::analyzer::TextIndex> {
        (id == 107).then_some(&self.index)
    }
}

/// A GEOMETRY column as its text only (the row evaluator parses each row), as parsed
/// values (a scan of bounding boxes), or as parsed values with an RTREE index.
struct Geo<'a> {
    table: &'a Table,
    parsed: Option<crate::geometry::GeoColumn>,
    rtree: Option<crate::index::rtree::RTreeIndex>,
}

impl Columns for Geo<'_> {
    fn column(&self, id: i64) -> Option<&FieldData> {
        self.table.column(id)
    }
    fn json(&self, id: i64, row: usize) -> Option<&serde_json::Value> {
        self.table.json(id, row)
    }
    fn geometries(&self, id: i64) -> Option<&crate::geometry::GeoColumn> {
        self.parsed.as_ref().filter(|_| id == 101)
    }
    fn rtree(&self, id: i64) -> Option<&crate::index::rtree::RTreeIndex> {
        self.rtree.as_ref().filter(|_| id == 101)
    }
}

/// Spatial filters over random points, lines, boxes, multi-parts, empty values and
/// nulls give the same rows through the R-tree (R1), through a scan of bounding boxes
/// (G2) and row by row from the stored text; the index file reads back as the same index.
#[test]
fn spatial_filters_agree_through_the_rtree_the_box_scan_and_the_row_evaluator() {
    use crate::geometry::GeoColumn;
    use crate::index::rtree::RTreeIndex;
    use crate::proto::schema::GeometryWktArray;
    let schema = CollectionSchema {
        name: "g".into(),
        fields: vec![
            FieldSchema {
                field_id: 100,
                name: "id".into(),
                data_type: DataType::Int64 as i32,
                is_primary_key: true,
                ..Default::default()
            },
            FieldSchema {
                field_id: 101,
                name: "geo".into(),
                data_type: DataType::Geometry as i32,
                nullable: true,
                ..Default::default()
            },
        ],
        ..Default::default()
    };
    let mut r = Rng(0x9E37_79B9_7F4A_7C15);
    let coord = |r: &mut Rng| (r.below(400) as f64) / 20.0 - 10.0;
    let shape = |r: &mut Rng| -> String {
        let (x, y) = (coord(r), coord(r));
        let (w, h) = (
            1.0 + r.below(60) as f64 / 10.0,
            1.0 + r.below(60) as f64 / 10.0,
        );
        match r.below(8) {
            0 | 1 => format!("POINT ({x} {y})"),
            // Beside the antimeridian, and off the globe's coordinates (ST_DWITHIN).
            6 => format!(
                "POINT ({} {y})",
                if x < 0.0 { -179.0 } else { 179.0 } + x / 10.0
            ),
            7 => format!("POINT ({} {y})", 190.0 + x),
            2 => format!("LINESTRING ({x} {y}, {} {})", x + w, y - h),
            3 => format!(
                "POLYGON (({x} {y}, {} {y}, {} {}, {x} {}, {x} {y}))",
                x + w,
                x + w,
                y + h,
                y + h
            ),
            4 => format!("MULTIPOINT (({x} {y}), ({} {}))", x + w, y + h),
            _ => "POINT EMPTY".to_string(),
        }
    };
    let rows = 600;
    let mut texts = Vec::with_capacity(rows);
    let mut valid = Vec::with_capacity(rows);
    for _ in 0..rows {
        let null = r.below(10) == 0;
        valid.push(!null);
        texts.push(if null {
            String::new()
        } else {
            crate::geometry::parse(&shape(&mut r)).unwrap().0
        });
    }
    let mut col = scalar(
        101,
        scalar_field::Data::GeometryWktData(GeometryWktArray {
            data: texts.clone(),
        }),
    );
    col.valid_data = valid.clone();
    let ids = scalar(
        100,
        scalar_field::Data::LongData(LongArray {
            data: (0..rows as i64).collect(),
        }),
    );
    let table = Table {
        cols: vec![ids, col.clone()],
        json: HashMap::new(),
    };
    let parsed = GeoColumn::of(&texts, &valid);
    let index = RTreeIndex::build(&col).unwrap();
    assert!(index.fits(&parsed), "R1 for the built index");
    let read = RTreeIndex::from_bytes(&index.to_bytes()).unwrap();
    assert!(read.fits(&parsed), "R1 for the index read back");
    assert_eq!(read.to_bytes(), index.to_bytes());
    let raw = Geo {
        table: &table,
        parsed: None,
        rtree: None,
    };
    let scan = Geo {
        table: &table,
        parsed: Some(parsed.clone()),
        rtree: None,
    };
    let indexed = Geo {
        table: &table,
        parsed: Some(parsed),
        rtree: Some(read),
    };
    let ops = [
        "ST_EQUALS",
        "ST_TOUCHES",
        "ST_OVERLAPS",
        "ST_CROSSES",
        "ST_CONTAINS",
        "ST_INTERSECTS",
        "ST_WITHIN",
    ];
    let mut matched = 0;
    for i in 0..120 {
        let expr = if i % 6 == 5 {
            let (x, y) = (coord(&mut r) * 4.0, coord(&mut r) * 4.0);
            // Every other one beside the antimeridian.
            let x = if i % 12 == 5 {
                x
            } else {
                x.signum() * (180.0 - x.abs() / 400.0)
            };
            format!("ST_DWITHIN(geo, 'POINT ({x} {y})', {})", r.below(400_000))
        } else {
            let q = shape(&mut r).replace("POINT EMPTY", "POINT (0 0)");
            format!("{}(geo, '{q}')", r.pick(&ops))
        };
        let expr = if i % 4 == 3 {
            format!("not {expr} or id < 20")
        } else {
            expr
        };
        let f = Filter::compile(&expr, &schema, &HashMap::new())
            .unwrap_or_else(|e| panic!("{expr}: {e}"));
        let by_row: Vec<bool> = (0..rows).map(|row| f.matches(&raw, row)).collect();
        assert_eq!(f.select(&raw, rows), by_row, "{expr}: text, in batches");
        assert_eq!(f.select(&scan, rows), by_row, "{expr}: box scan");
        assert_eq!(f.select(&indexed, rows), by_row, "{expr}: R-tree");
        matched += by_row.iter().filter(|b| **b).count();
    }
    assert!(matched > 1000, "the random filters select rows: {matched}");
    for (expr, why) in [
        (
            "geo == 'POINT (1 1)'",
            "a geometry field is tested with the spatial functions",
        ),
        (
            "geo like 'POINT%'",
            "a geometry field is tested with the spatial functions",
        ),
        (
            "'POINT (1 1)' == geo",
            "a geometry field is tested with the spatial functions",
        ),
        (
            "geo + 0 > 1",
            "a geometry field is tested with the spatial functions",
        ),
        (
            "geo in ['POINT (1 1)']",
            "a geometry field is tested with the spatial functions",
        ),
        ("ST_DWITHIN(geo, 'POINT (200 0)', 5)", "invalid coordinate"),
        (
            "ST_WITHIN(id, 'POINT (1 1)')",
            "spatial operation are only supported on geometry fields now, got: Int64",
        ),
        ("ST_WITHIN(geo)", "ST_WITHIN takes 2 arguments, got 1"),
        (
            "ST_Within(geo, 'POINT (1 1)')",
            "Create retrieve plan by expr failed",
        ),
        (
            "ST_WITHIN(geo, 'POINT (1')",
            "invalid WKT in ST_WITHIN: syntax error",
        ),
        (
            "ST_DWITHIN(geo, 'POINT (1 1)', -1)",
            "distance parameter must be non-negative",
        ),
        (
            "ST_DWITHIN(geo, 'POINT (1 1)', 'far')",
            "distance parameter must be a numeric value",
        ),
    ] {
        refused(expr, &schema, why);
    }
    let nulls = Filter::compile("geo is null", &schema, &HashMap::new()).unwrap();
    let want: Vec<bool> = valid.iter().map(|v| !v).collect();
    assert_eq!(nulls.select(&indexed, rows), want, "geo is null");
}
