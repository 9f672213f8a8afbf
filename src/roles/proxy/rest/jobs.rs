//! REST v2 import jobs: `jobs/import/{create, list, get_progress, describe}`.

use std::sync::Arc;

use serde_json::{json, Value};

use super::{endpoint, fail, missing, wrong_type, Answer, Call, Reply, Routes};
use crate::proto::datacoord::ImportJob;
use crate::roles::proxy::import::rest_state;
use crate::roles::proxy::service::Service;

/// `files`: a list of file groups, each a list of paths (one import unit).
fn units(c: &Call) -> Result<Vec<Vec<String>>, crate::proto::common::Status> {
    let bad = |v: &Value| wrong_type("files", "a list of lists of paths", v);
    match c.body.get("files") {
        None | Some(Value::Null) => Err(missing("files")),
        Some(Value::Array(groups)) => groups
            .iter()
            .map(|g| match g {
                Value::Array(paths) => paths
                    .iter()
                    .map(|p| p.as_str().map(str::to_string).ok_or_else(|| bad(p)))
                    .collect(),
                other => Err(bad(other)),
            })
            .collect(),
        Some(other) => Err(bad(other)),
    }
}

/// What import jobs need: the Import privilege on the collection (`*`: any).
fn import_need(c: &Call, collection: &str) -> crate::proto::milvus::ImportRequest {
    crate::proto::milvus::ImportRequest {
        db_name: c.db.clone(),
        collection_name: collection.to_string(),
        ..Default::default()
    }
}

async fn create(s: Arc<Service>, c: Call) -> Answer {
    let coll = c.string("collectionName")?;
    c.authorize(&s, import_need(&c, &coll))?;
    let id =
        s.0.create_import(&c.db, &coll, &c.opt_string("partitionName")?, units(&c)?)
            .await?;
    Ok(Reply::data(json!({"jobId": id.to_string()})))
}

fn job_id(c: &Call) -> Result<i64, crate::proto::common::Status> {
    let raw = c.string("jobId")?;
    raw.parse().map_err(|_| {
        fail(
            crate::status::code::PARAMETER_INVALID,
            format!("jobId must be a job ID (an integer as text), got {raw:?}: invalid parameter"),
        )
    })
}

fn describe_json(job: &ImportJob) -> Value {
    let (state, progress) = rest_state(job);
    let mut m = json!({
        "jobId": job.id.to_string(),
        "collectionName": job.collection_name,
        "state": state,
        "progress": progress,
        "importedRows": job.imported_rows,
        "totalRows": job.imported_rows,
        "completeTime": if job.finished_ms > 0 {
            chrono::DateTime::from_timestamp_millis(job.finished_ms)
                .map(|t| t.to_rfc3339())
                .unwrap_or_default()
        } else {
            String::new()
        },
        "details": job.files.iter().map(|f| json!({
            "fileName": f.paths.join(","),
            "state": state,
            "progress": progress,
        })).collect::<Vec<_>>(),
    });
    if !job.reason.is_empty() {
        m["reason"] = json!(job.reason);
    }
    m
}

async fn describe(s: Arc<Service>, c: Call) -> Answer {
    c.authorize(&s, import_need(&c, "*"))?;
    let job = s.0.import_job(job_id(&c)?).await?;
    Ok(Reply::data(describe_json(&job)))
}

async fn list(s: Arc<Service>, c: Call) -> Answer {
    let coll = c.opt_string("collectionName")?;
    c.authorize(
        &s,
        import_need(&c, if coll.is_empty() { "*" } else { &coll }),
    )?;
    let coll_id = if coll.is_empty() {
        0
    } else {
        let m = crate::proto::milvus::DescribeCollectionRequest {
            db_name: c.db.clone(),
            collection_name: coll,
            ..Default::default()
        };
        use crate::proto::milvus::milvus_service_server::MilvusService;
        super::checked(s.describe_collection(c.request(m)).await)?.collection_id
    };
    let jobs = s.0.import_jobs(0, coll_id).await?;
    let records: Vec<Value> = jobs
        .iter()
        .filter(|j| coll_id != 0 || j.db_name == c.db)
        .map(|j| {
            let (state, progress) = rest_state(j);
            let mut r = json!({
                "jobId": j.id.to_string(),
                "collectionName": j.collection_name,
                "state": state,
                "progress": progress,
            });
            if !j.reason.is_empty() {
                r["reason"] = json!(j.reason);
            }
            r
        })
        .collect();
    Ok(Reply::data(json!({"records": records})))
}

pub(super) fn routes() -> Routes {
    vec![
        ("jobs/import/create", endpoint(create)),
        ("jobs/import/list", endpoint(list)),
        ("jobs/import/get_progress", endpoint(describe)),
        ("jobs/import/describe", endpoint(describe)),
    ]
}
