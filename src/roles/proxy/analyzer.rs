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
        let params = if req.collection_name.is_empty() {
            req.analyzer_params.clone()
        } else {
            self.field_analyzer(db, &req).await?
        };
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
            let mut analyzer = crate::analyzer::cached(&params).map_err(|e| {
                error(
                    TOKENIZER_FAILED,
                    format!("failed to create tokenizer: {e}: invalid analyzer params {params}"),
                )
            })?;
            Ok(texts
                .iter()
                .map(|text| pb::AnalyzerResult {
                    tokens: analyzer
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

    /// The analyzer parameters of the field a collection-scoped request names.
    async fn field_analyzer(
        &self,
        db: &str,
        req: &pb::RunAnalyzerRequest,
    ) -> Result<String, Status> {
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
        if !req.analyzer_names.is_empty() {
            return Err(invalid(
                "analyzer_names choose among a field's multi-analyzers, which this cluster does \
                 not build: leave analyzer_names empty"
                    .into(),
            ));
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
        Ok(crate::schema::param(field, "analyzer_params")
            .unwrap_or_default()
            .to_string())
    }
}
