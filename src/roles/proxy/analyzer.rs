//! `RunAnalyzer`: the tokens an analyzer gives each text, with offsets, positions and
//! Milvus's token hashes on request. The analyzer is the one `analyzer_params`
//! describes or, with a collection and field, that field's own (its `analyzer_params`
//! type parameter); the proxy runs it itself, so the collection need not be loaded.

use crate::analyzer::token_hash;
use crate::proto::common::Status;
use crate::proto::milvus as pb;
use crate::proto::schema::DataType;
use crate::status::{code, error, ok};

use super::Proxy;

/// Milvus answers analyzer parameters it cannot build with a segcore error (2000).
const TOKENIZER_FAILED: i32 = 2000;

impl Proxy {
    pub async fn run_analyzer(
        &self,
        db: &str,
        req: pb::RunAnalyzerRequest,
    ) -> pb::RunAnalyzerResponse {
        match self.analyze(db, req).await {
            Ok(results) => pb::RunAnalyzerResponse {
                status: Some(ok()),
                results,
            },
            Err(status) => pb::RunAnalyzerResponse {
                status: Some(status),
                results: vec![],
            },
        }
    }

    async fn analyze(
        &self,
        db: &str,
        req: pb::RunAnalyzerRequest,
    ) -> Result<Vec<pb::AnalyzerResult>, Status> {
        if req.placeholder.is_empty() {
            return Ok(vec![]);
        }
        let (params, multi) = if req.collection_name.is_empty() {
            (req.analyzer_params.clone(), false)
        } else {
            self.field_analyzer(db, &req).await?
        };
        let names = req.analyzer_names.clone();
        let texts = req
            .placeholder
            .into_iter()
            .enumerate()
            .map(|(i, t)| {
                String::from_utf8(t).map_err(|_| {
                    error(
                        code::PARAMETER_INVALID,
                        format!("text {i} is not valid UTF-8: run_analyzer takes strings"),
                    )
                })
            })
            .collect::<Result<Vec<_>, _>>()?;
        let (detail, hash) = (req.with_detail, req.with_hash);
        // Building an analyzer may load a dictionary and cutting long texts takes CPU:
        // off the async workers.
        tokio::task::spawn_blocking(move || {
            let failed = |e: crate::analyzer::AnalyzerError| {
                error(
                    TOKENIZER_FAILED,
                    format!("failed to create tokenizer: {e}: invalid analyzer params {params}"),
                )
            };
            let (mut one, mut many) = if multi {
                (
                    None,
                    Some(crate::analyzer::MultiAnalyzer::new(&params).map_err(failed)?),
                )
            } else {
                (
                    Some(crate::analyzer::cached(&params).map_err(failed)?),
                    None,
                )
            };
            Ok(texts
                .iter()
                .enumerate()
                .map(|(i, text)| pb::AnalyzerResult {
                    tokens: match (&mut one, &mut many) {
                        (Some(a), _) => a,
                        (None, Some(m)) => m.pick(
                            names
                                .get(i)
                                .or(names.first())
                                .map_or("default", String::as_str),
                        ),
                        (None, None) => unreachable!("one analyzer or several"),
                    }
                    .tokens(text)
                    .into_iter()
                    .map(|t| {
                        let mut token = pb::AnalyzerToken {
                            hash: if hash { token_hash(&t.text) } else { 0 },
                            token: t.text,
                            ..Default::default()
                        };
                        if detail {
                            token.start_offset = t.start_offset as i64;
                            token.end_offset = t.end_offset as i64;
                            token.position = t.position as i64;
                            token.position_length = t.position_length as i64;
                        }
                        token
                    })
                    .collect(),
                })
                .collect())
        })
        .await
        .map_err(|e| error(code::UNEXPECTED, format!("analyzer task failed: {e}")))?
    }

    /// The analyzer parameters of the field a collection-scoped request names, and
    /// whether they are `multi_analyzer_params` (several analyzers, picked by the
    /// request's `analyzer_names`).
    async fn field_analyzer(
        &self,
        db: &str,
        req: &pb::RunAnalyzerRequest,
    ) -> Result<(String, bool), Status> {
        let invalid = |msg: String| error(code::PARAMETER_INVALID, msg);
        if !req.analyzer_params.is_empty() {
            return Err(invalid(
                "run analyzer can't use analyzer params and (collection,field) in same time".into(),
            ));
        }
        if req.field_name.is_empty() {
            return Err(invalid(
                "must set field name when collection name was set".into(),
            ));
        }
        let names = req.analyzer_names.len();
        if names > 1 && names != req.placeholder.len() {
            return Err(invalid(format!(
                "only support set one analyzer name for all text or set analyzer name for each text, but now analzer name num: {names}, text num: {}",
                req.placeholder.len()
            )));
        }
        let record = self.collection_record(db, &req.collection_name).await?;
        let schema = record.schema.unwrap_or_default();
        let field = schema
            .fields
            .iter()
            .find(|f| f.name == req.field_name)
            .ok_or_else(|| {
                error(
                    code::FIELD_NOT_FOUND,
                    format!("field not found[field={}]", req.field_name),
                )
            })?;
        if field.data_type() != DataType::VarChar || !crate::schema::flag(field, "enable_analyzer")
        {
            return Err(invalid(format!(
                "field {} has no analyzer: run_analyzer by collection and field needs a VARCHAR \
                 field with enable_analyzer=True",
                field.name
            )));
        }
        if let Some(multi) = crate::schema::param(field, "multi_analyzer_params") {
            return Ok((multi.to_string(), true));
        }
        Ok((
            crate::schema::param(field, "analyzer_params")
                .unwrap_or_default()
                .to_string(),
            false,
        ))
    }
}
