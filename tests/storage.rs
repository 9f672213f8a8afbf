//! Object storage against a local directory and a real S3-protocol server (moto), and
//! segment files that pyarrow reads.

use std::process::Command;
use std::time::{Duration, Instant};

use bytes::Bytes;
use milvus::config::S3Config;
use milvus::proto::schema::{
    field_data, scalar_field, CollectionSchema, DataType, FieldData, FloatArray, LongArray,
    ScalarField, StringArray, VectorField,
};
use milvus::storage::segment::{self, SegmentBatch};
use milvus::storage::Storage;
use milvus::testkit::sample::field;
use milvus::testkit::{python, runtime, S3Server, TempDir};

const CALL: Duration = Duration::from_secs(3);

/// Put, get, list and delete, the same on every store.
async fn exercise(s: &Storage) {
    s.put("insert_log/1/2/a", Bytes::from_static(b"one"))
        .await
        .unwrap();
    s.put("insert_log/1/2/b", Bytes::from_static(b"two"))
        .await
        .unwrap();
    s.put("index_files/9/x", Bytes::from_static(b"idx"))
        .await
        .unwrap();
    assert_eq!(
        s.get("insert_log/1/2/b").await.unwrap(),
        Bytes::from_static(b"two")
    );
    assert_eq!(
        s.list("insert_log/1").await.unwrap(),
        vec![
            "insert_log/1/2/a".to_string(),
            "insert_log/1/2/b".to_string()
        ]
    );
    s.delete("insert_log/1/2/a").await.unwrap();
    s.delete("insert_log/1/2/a").await.unwrap(); // already gone: fine
    assert_eq!(
        s.list("insert_log").await.unwrap(),
        vec!["insert_log/1/2/b".to_string()]
    );
    let e = s.get("insert_log/none").await.unwrap_err().to_string();
    assert!(e.contains("insert_log/none"), "{e}");
    write_in_pieces(s).await;
    fetch_a_vector_column(s).await;
}

/// A segment file's vector column fetched alone (its footer and column chunks, a row
/// group at a time) is the column read from the whole file.
async fn fetch_a_vector_column(s: &Storage) {
    let schema = CollectionSchema {
        fields: vec![
            field(100, "id", DataType::Int64, None),
            field(101, "vec", DataType::FloatVector, Some("3")),
            field(102, "bits", DataType::BinaryVector, Some("16")),
            field(103, "title", DataType::VarChar, None),
        ],
        ..Default::default()
    };
    // Two row groups, the second short.
    let n = segment::ROW_GROUP + 100;
    let vectors = |name: &str, t: DataType, dim: i64, data| FieldData {
        r#type: t as i32,
        field_name: name.into(),
        field: Some(field_data::Field::Vectors(VectorField {
            dim,
            data: Some(data),
        })),
        ..Default::default()
    };
    use milvus::proto::schema::vector_field::Data as V;
    let batch = SegmentBatch {
        row_ids: (0..n as i64).collect(),
        timestamps: vec![7; n],
        fields: vec![
            FieldData {
                r#type: DataType::Int64 as i32,
                field_name: "id".into(),
                field: Some(field_data::Field::Scalars(ScalarField {
                    data: Some(scalar_field::Data::LongData(LongArray {
                        data: (0..n as i64).collect(),
                    })),
                })),
                ..Default::default()
            },
            vectors(
                "vec",
                DataType::FloatVector,
                3,
                V::FloatVector(FloatArray {
                    data: (0..3 * n).map(|i| i as f32 / 7.0).collect(),
                }),
            ),
            vectors(
                "bits",
                DataType::BinaryVector,
                16,
                V::BinaryVector((0..2 * n).map(|i| (i % 251) as u8).collect()),
            ),
            FieldData {
                r#type: DataType::VarChar as i32,
                field_name: "title".into(),
                field: Some(field_data::Field::Scalars(ScalarField {
                    data: Some(scalar_field::Data::StringData(StringArray {
                        data: (0..n).map(|i| format!("title {i}")).collect(),
                    })),
                })),
                ..Default::default()
            },
        ],
    };
    let file = segment::encode(&schema, &batch).unwrap();
    s.put("insert_log/5/6/seg", file.clone()).await.unwrap();
    for column in ["vec", "bits"] {
        let fetched = segment::fetch_vectors(s, "insert_log/5/6/seg", column)
            .await
            .unwrap();
        assert!(
            fetched == segment::read_vectors(file.clone(), column).unwrap(),
            "column {column} fetched differs from the one read whole"
        );
    }
    let e = segment::fetch_vectors(s, "insert_log/5/6/seg", "nope")
        .await
        .unwrap_err()
        .to_string();
    assert!(e.contains("no column nope"), "{e}");
    s.put(
        "insert_log/5/6/text",
        Bytes::from_static(b"not a parquet file at all"),
    )
    .await
    .unwrap();
    let e = segment::fetch_vectors(s, "insert_log/5/6/text", "vec")
        .await
        .unwrap_err()
        .to_string();
    assert!(e.contains("not a Parquet file"), "{e}");
    for k in ["insert_log/5/6/seg", "insert_log/5/6/text"] {
        s.delete(k).await.unwrap();
    }
}

/// Objects written in pieces: one of several parts (pieces that do not line up with
/// them) reads back as their concatenation, and is not there until finished; one smaller
/// than a part is one put; an aborted one leaves nothing.
async fn write_in_pieces(s: &Storage) {
    let part = milvus::storage::UPLOAD_PART;
    let pieces: Vec<Bytes> = [part / 2 - 1, part, 3, part + part / 3, 5]
        .iter()
        .enumerate()
        .map(|(i, n)| Bytes::from(vec![i as u8 + 1; *n]))
        .collect();
    let mut up = s.upload("insert_log/7/8/merged");
    for p in &pieces {
        up.write(p.clone()).await.unwrap();
    }
    assert!(
        s.get("insert_log/7/8/merged").await.is_err(),
        "visible before finish"
    );
    let size = up.finish().await.unwrap();
    let whole: Vec<u8> = pieces.concat();
    assert_eq!(size, whole.len() as u64);
    let back = s.get("insert_log/7/8/merged").await.unwrap();
    assert!(
        back == whole,
        "{} bytes read, {} written",
        back.len(),
        whole.len()
    );
    let mut small = s.upload("insert_log/7/8/small");
    small.write(Bytes::from_static(b"ab")).await.unwrap();
    small.write(Bytes::from_static(b"cd")).await.unwrap();
    assert_eq!(small.finish().await.unwrap(), 4);
    assert_eq!(
        s.get("insert_log/7/8/small").await.unwrap(),
        Bytes::from_static(b"abcd")
    );
    let mut gone = s.upload("insert_log/7/8/aborted");
    gone.write(Bytes::from(vec![9u8; part + 1])).await.unwrap();
    gone.abort().await;
    assert!(s.get("insert_log/7/8/aborted").await.is_err());
    assert_eq!(
        s.list("insert_log/7").await.unwrap(),
        vec![
            "insert_log/7/8/merged".to_string(),
            "insert_log/7/8/small".to_string()
        ]
    );
    for k in ["insert_log/7/8/merged", "insert_log/7/8/small"] {
        s.delete(k).await.unwrap();
    }
}

#[test]
fn local_storage_keeps_objects_under_its_root_directory() {
    let dir = TempDir::new("local-storage");
    let s = Storage::local(&dir.0, "files", CALL).unwrap();
    runtime().block_on(exercise(&s));
    assert_eq!(
        std::fs::read(dir.0.join("files/insert_log/1/2/b")).unwrap(),
        b"two"
    );
}

#[test]
fn s3_storage_works_against_a_real_s3_server_and_fails_in_time_without_it() {
    let mut server = S3Server::start("milvus-bucket");
    let settings = S3Config {
        address: server.host(),
        port: server.port,
        access_key_id: "minioadmin".into(),
        secret_access_key: "minioadmin".into(),
        use_ssl: false,
        ca_cert: None,
        bucket: "milvus-bucket".into(),
        region: "us-east-1".into(),
    };
    let rt = runtime();
    let s = Storage::s3(&settings, "files", CALL).unwrap();
    rt.block_on(exercise(&s));
    // A bucket that does not exist: a clear error naming the object.
    let other = Storage::s3(
        &S3Config {
            bucket: "no-such-bucket".into(),
            ..settings.clone()
        },
        "files",
        CALL,
    )
    .unwrap();
    let e = rt
        .block_on(other.put("k", Bytes::from_static(b"v")))
        .unwrap_err()
        .to_string();
    assert!(e.contains("files/k"), "{e}");
    // The server gone: writes fail within the bound.
    server.kill();
    let t = Instant::now();
    assert!(rt.block_on(s.put("k", Bytes::from_static(b"v"))).is_err());
    assert!(t.elapsed() < 3 * CALL, "{:?}", t.elapsed());
}

#[test]
fn pyarrow_reads_a_segment_file() {
    let schema = CollectionSchema {
        name: "books".into(),
        fields: vec![
            field(100, "id", DataType::Int64, None),
            field(101, "vec", DataType::FloatVector, Some("3")),
            field(102, "title", DataType::VarChar, None),
        ],
        ..Default::default()
    };
    let n = 1000usize;
    let batch = SegmentBatch {
        row_ids: (0..n as i64).collect(),
        timestamps: (0..n as u64).map(|i| (1000 + i) << 18).collect(),
        fields: vec![
            FieldData {
                r#type: DataType::Int64 as i32,
                field_name: "id".into(),
                field: Some(field_data::Field::Scalars(ScalarField {
                    data: Some(scalar_field::Data::LongData(LongArray {
                        data: (0..n as i64).map(|i| i * 10).collect(),
                    })),
                })),
                ..Default::default()
            },
            FieldData {
                r#type: DataType::FloatVector as i32,
                field_name: "vec".into(),
                field: Some(field_data::Field::Vectors(VectorField {
                    dim: 3,
                    data: Some(milvus::proto::schema::vector_field::Data::FloatVector(
                        FloatArray {
                            data: (0..3 * n).map(|i| i as f32).collect(),
                        },
                    )),
                })),
                ..Default::default()
            },
            FieldData {
                r#type: DataType::VarChar as i32,
                field_name: "title".into(),
                field: Some(field_data::Field::Scalars(ScalarField {
                    data: Some(scalar_field::Data::StringData(StringArray {
                        data: (0..n).map(|i| format!("t{i}")).collect(),
                    })),
                })),
                ..Default::default()
            },
        ],
    };
    let dir = TempDir::new("segment");
    let s = Storage::local(&dir.0, "files", CALL).unwrap();
    let rt = runtime();
    rt.block_on(s.put(
        "insert_log/1/2/3.parquet",
        segment::encode(&schema, &batch).unwrap(),
    ))
    .unwrap();
    let path = dir.0.join("files/insert_log/1/2/3.parquet");
    let out = Command::new(python())
        .args([
            "-c",
            "import sys, pyarrow.parquet as pq\n\
             t = pq.read_table(sys.argv[1])\n\
             print(t.num_rows, ','.join(t.column_names))\n\
             print(t.column('id')[999].as_py(), t.column('vec')[1].as_py(), t.column('title')[5].as_py())\n\
             print(t.schema.field('vec').metadata[b'field_id'].decode())",
        ])
        .arg(&path)
        .output()
        .unwrap();
    let text = String::from_utf8_lossy(&out.stdout).to_string();
    assert!(
        out.status.success(),
        "pyarrow could not read the file: {}{}",
        text,
        String::from_utf8_lossy(&out.stderr)
    );
    let lines: Vec<&str> = text.lines().collect();
    assert_eq!(lines[0], "1000 RowID,Timestamp,id,vec,title");
    assert_eq!(lines[1], "9990 [3.0, 4.0, 5.0] t5");
    assert_eq!(lines[2], "101");
    // And it reads back whole.
    let back = segment::decode(
        &schema,
        rt.block_on(s.get("insert_log/1/2/3.parquet")).unwrap(),
    )
    .unwrap();
    assert_eq!(back.row_ids, batch.row_ids);
    assert_eq!(back.timestamps, batch.timestamps);
    assert_eq!(back.fields[1].field, batch.fields[1].field);
}
