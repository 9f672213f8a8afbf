use super::*;
use crate::proto::common::KeyValuePair;
use crate::proto::schema::VectorField;

fn field(id: i64, name: &str, t: DataType) -> FieldSchema {
    crate::testkit::sample::field(id, name, t, None)
}

fn schema(auto_id: bool, dynamic: bool) -> CollectionSchema {
    let mut pk = field(100, "id", DataType::Int64);
    pk.is_primary_key = true;
    pk.auto_id = auto_id;
    let mut vec = field(101, "vec", DataType::FloatVector);
    vec.type_params = vec![KeyValuePair {
        key: "dim".into(),
        value: "2".into(),
    }];
    let mut title = field(102, "title", DataType::VarChar);
    title.type_params = vec![KeyValuePair {
        key: "max_length".into(),
        value: "5".into(),
    }];
    let mut score = field(103, "score", DataType::Float);
    score.nullable = true;
    let mut fields = vec![pk, vec, title, score];
    if dynamic {
        let mut meta = field(104, META_FIELD, DataType::Json);
        meta.is_dynamic = true;
        fields.push(meta);
    }
    CollectionSchema {
        name: "c".into(),
        fields,
        enable_dynamic_field: dynamic,
        ..Default::default()
    }
}

fn scalar(name: &str, t: DataType, d: scalar_field::Data) -> FieldData {
    FieldData {
        r#type: t as i32,
        field_name: name.into(),
        field: Some(field_data::Field::Scalars(ScalarField { data: Some(d) })),
        ..Default::default()
    }
}

fn ids(v: Vec<i64>) -> FieldData {
    scalar(
        "id",
        DataType::Int64,
        scalar_field::Data::LongData(LongArray { data: v }),
    )
}

fn vecs(dim: i64, data: Vec<f32>) -> FieldData {
    FieldData {
        r#type: DataType::FloatVector as i32,
        field_name: "vec".into(),
        field: Some(field_data::Field::Vectors(VectorField {
            dim,
            data: Some(vector_field::Data::FloatVector(FloatArray { data })),
        })),
        ..Default::default()
    }
}

fn titles(v: &[&str]) -> FieldData {
    scalar(
        "title",
        DataType::VarChar,
        scalar_field::Data::StringData(StringArray {
            data: v.iter().map(|s| s.to_string()).collect(),
        }),
    )
}

fn meta(v: &[&str]) -> FieldData {
    FieldData {
        is_dynamic: true,
        ..scalar(
            META_FIELD,
            DataType::Json,
            scalar_field::Data::JsonData(JsonArray {
                data: v.iter().map(|s| s.as_bytes().to_vec()).collect(),
            }),
        )
    }
}

fn good(dynamic: bool) -> Vec<FieldData> {
    let mut v = vec![
        ids(vec![1, 2, 3]),
        vecs(2, vec![0.0, 1.0, 2.0, 3.0, 4.0, 5.0]),
        titles(&["a", "bb", "ccc"]),
    ];
    if dynamic {
        v.push(meta(&["{}", "{\"color\":\"red\"}", "{}"]));
    }
    v
}

fn message(r: Result<Validated, Status>) -> (i32, String) {
    let s = r.expect_err("should be refused");
    (s.code, s.reason)
}

#[test]
fn a_good_batch_is_checked_and_completed() {
    let v = validate_rows(&schema(false, true), good(true), 3, false).unwrap();
    assert_eq!(v.rows, 3);
    assert_eq!(v.pks, Some(Pks::Int(vec![1, 2, 3])));
    let names: Vec<&str> = v.fields.iter().map(|f| f.field_name.as_str()).collect();
    assert_eq!(names, vec!["id", "vec", "title", "score", META_FIELD]);
    assert_eq!(v.fields[1].field_id, 101);
    // The nullable field that was not given is all nulls.
    assert_eq!(v.fields[3].valid_data, vec![false; 3]);
}

#[test]
fn nullable_columns_in_the_compact_layout_are_expanded() {
    let mut cols = good(false);
    let mut score = scalar(
        "score",
        DataType::Float,
        scalar_field::Data::FloatData(FloatArray {
            data: vec![0.5, 1.5],
        }),
    );
    score.valid_data = vec![true, false, true];
    cols.push(score);
    let v = validate_rows(&schema(false, false), cols, 3, false).unwrap();
    assert_eq!(
        v.fields[3].field,
        Some(field_data::Field::Scalars(ScalarField {
            data: Some(scalar_field::Data::FloatData(FloatArray {
                data: vec![0.5, 0.0, 1.5]
            }))
        }))
    );
}

#[test]
fn bad_batches_are_refused_with_code_1100_and_a_reason() {
    let s = schema(false, false);
    let (code, why) = message(validate_rows(
        &s,
        vec![ids(vec![1, 2, 3]), titles(&["a", "b", "c"])],
        3,
        false,
    ));
    assert_eq!(code, 1100);
    assert!(why.contains("field vec is missing"), "{why}");
    let mut cols = good(false);
    cols[1] = vecs(3, vec![0.0; 9]);
    let (_, why) = message(validate_rows(&s, cols, 3, false));
    assert!(
        why.contains("dim (3)") && why.contains("schema dim (2)"),
        "{why}"
    );
    let mut cols = good(false);
    cols[2] = titles(&["a", "bb", "toolong"]);
    let (_, why) = message(validate_rows(&s, cols, 3, false));
    assert!(
        why.contains("length of varchar field title exceeds max length, row number: 2, length: 7, max length: 5"),
        "{why}"
    );
    let mut cols = good(false);
    cols[0] = scalar(
        "id",
        DataType::VarChar,
        scalar_field::Data::StringData(StringArray {
            data: vec!["x".into(); 3],
        }),
    );
    let (_, why) = message(validate_rows(&s, cols, 3, false));
    assert!(why.contains("does not match the field type Int64"), "{why}");
    let (_, why) = message(validate_rows(&s, good(false), 4, false));
    assert!(why.contains("num_rows"), "{why}");
    let (_, why) = message(validate_rows(&s, good(true), 3, false));
    assert!(why.contains("without enabling dynamic field"), "{why}");
    let mut cols = good(false);
    cols.push(scalar(
        "extra",
        DataType::Int64,
        scalar_field::Data::LongData(LongArray { data: vec![1; 3] }),
    ));
    let (_, why) = message(validate_rows(&s, cols, 3, false));
    assert!(why.contains("unexpected field `extra`"), "{why}");
    let (_, why) = message(validate_rows(&s, good(false)[1..].to_vec(), 3, false));
    assert!(why.contains("primary key field id is missing"), "{why}");
    let d = schema(false, true);
    let mut cols = good(true);
    cols[3] = meta(&["{}", "[1]", "{}"]);
    let (_, why) = message(validate_rows(&d, cols, 3, false));
    assert!(why.contains("must be a JSON object"), "{why}");
    let mut cols = good(true);
    cols[3] = meta(&["{}", "{\"title\":1}", "{}"]);
    let (_, why) = message(validate_rows(&d, cols, 3, false));
    assert!(why.contains("which is a schema field"), "{why}");
}

#[test]
fn auto_id_keys_are_generated_not_given_except_on_upsert() {
    let s = schema(true, false);
    let (_, why) = message(validate_rows(&s, good(false), 3, false));
    assert!(
        why.contains("can not assign primary field data when auto id enabled"),
        "{why}"
    );
    let v = validate_rows(&s, good(false)[1..].to_vec(), 3, false).unwrap();
    assert_eq!(v.pks, None);
    assert_eq!(v.fields.len(), 3);
    let v = validate_rows(&s, good(false), 3, true).unwrap();
    assert_eq!(v.pks, Some(Pks::Int(vec![1, 2, 3])));
}

#[test]
fn rows_are_picked_and_routed_by_key() {
    let v = validate_rows(&schema(false, false), good(false), 3, false).unwrap();
    let picked = take_rows(&v.fields, &[2, 0]);
    assert_eq!(picked[0].field, ids(vec![3, 1]).field);
    assert_eq!(picked[1].field, vecs(2, vec![4.0, 5.0, 0.0, 1.0]).field);
    assert_eq!(picked[3].valid_data, vec![false, false]);
    let pks = Pks::Int((0..1000).collect());
    let shards: Vec<usize> = (0..1000).map(|i| pks.shard(i, 4)).collect();
    for s in 0..4 {
        let n = shards.iter().filter(|x| **x == s).count();
        assert!((150..350).contains(&n), "shard {s} got {n} of 1000");
    }
    assert_eq!(pks.shard(7, 4), (hash::hash_int64(7) % 4) as usize);
}

#[test]
fn vectors_must_be_whole_and_finite() {
    // Float: 7 values are not rows of dim 2; NaN is refused.
    let mut cols = good(false);
    cols[1] = vecs(2, vec![0.0, 1.0, 2.0, 3.0, 4.0, 5.0, 6.0]);
    let (code, why) = message(validate_rows(&schema(false, false), cols, 3, false));
    assert_eq!(code, 1100);
    assert!(
        why.contains("the length(7) of float data should divide the dim(2)"),
        "{why}"
    );
    let mut cols = good(false);
    cols[1] = vecs(2, vec![0.0, 1.0, 2.0, f32::NAN, 4.0, 5.0]);
    let (_, why) = message(validate_rows(&schema(false, false), cols, 3, false));
    assert!(
        why.contains("value 'NaN' is not a number or infinity"),
        "{why}"
    );
    // Binary (dim 16, 2 bytes a row) and float16 (dim 2, 4 bytes a row).
    for (t, data, dim, needle) in [
        (
            DataType::BinaryVector,
            vector_field::Data::BinaryVector(vec![1, 2, 3, 4, 5, 6, 7]),
            16,
            "the num(56) of all bits should divide the dim(16)",
        ),
        (
            DataType::Float16Vector,
            vector_field::Data::Float16Vector(vec![0; 13]),
            2,
            "the length(13) of float16 data should divide the dim(2)",
        ),
        (
            DataType::Float16Vector,
            // 0x7c00: +infinity.
            vector_field::Data::Float16Vector(vec![0, 0x7c, 0, 0, 0, 0, 0, 0, 0, 0, 0, 0]),
            2,
            "float16 vector contain nan or infinity value.",
        ),
    ] {
        let mut s = schema(false, false);
        s.fields[1].data_type = t as i32;
        s.fields[1].type_params[0].value = dim.to_string();
        let mut cols = good(false);
        cols[1] = FieldData {
            r#type: t as i32,
            field_name: "vec".into(),
            field: Some(field_data::Field::Vectors(VectorField {
                dim,
                data: Some(data),
            })),
            ..Default::default()
        };
        let (code, why) = message(validate_rows(&s, cols, 3, false));
        assert_eq!(code, 1100);
        assert!(why.contains(needle), "{why}");
    }
}
