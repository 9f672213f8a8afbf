//! A field's several analyzers (`multi_analyzer_params`, Milvus 2.5): each row's text is
//! cut by the analyzer its `by_field` value names (through `alias`, else `default`), and
//! a search's text by the one its `analyzer_name` names (else `default`).

use std::collections::HashMap;

use serde_json::Value;

use super::{Analyzer, AnalyzerError};

/// The analyzers of a field with `multi_analyzer_params`.
#[derive(Debug, Clone)]
pub struct MultiAnalyzer {
    /// The VARCHAR field whose value names each row's analyzer.
    pub by_field: String,
    analyzers: HashMap<String, Analyzer>,
    alias: HashMap<String, String>,
}

fn bad(msg: impl Into<String>) -> AnalyzerError {
    AnalyzerError(msg.into())
}

impl MultiAnalyzer {
    /// Reads `params` with Milvus's checks and messages (proxy's
    /// validateMultiAnalyzerParams); `by_field`'s existence and type are the schema's
    /// check.
    pub fn new(params: &str) -> Result<MultiAnalyzer, AnalyzerError> {
        let m: serde_json::Map<String, Value> =
            serde_json::from_str(params).map_err(|e| bad(e.to_string()))?;
        let by_field = match m.get("by_field") {
            None => return Err(bad(
                "multi analyzer params now must set by_field to specify with field decide analyzer",
            )),
            Some(Value::String(s)) => s.clone(),
            Some(other) => {
                return Err(bad(format!(
                    "multi analyzer params by_field must be string but now: {other}"
                )))
            }
        };
        let mut alias = HashMap::new();
        if let Some(v) = m.get("alias") {
            let map = v.as_object().ok_or_else(|| {
                bad(format!(
                    "multi analyzer alias must be string map but now: {v}"
                ))
            })?;
            for (k, to) in map {
                let to = to.as_str().ok_or_else(|| {
                    bad(format!(
                        "multi analyzer alias must be string map but now: {v}"
                    ))
                })?;
                alias.insert(k.clone(), to.to_string());
            }
        }
        let list = match m.get("analyzers") {
            None => return Err(bad("multi analyzer params must set analyzers ")),
            Some(Value::Object(o)) => o,
            Some(other) => {
                return Err(bad(format!(
                    "unmarshal analyzers failed: {other} is not an object"
                )))
            }
        };
        let mut analyzers = HashMap::new();
        for (name, p) in list {
            let built = match p {
                Value::Object(o) => Analyzer::from_map(o),
                other => Err(bad(format!(
                    "analyzer params must be an object, got {other}"
                ))),
            }
            .map_err(|e| bad(format!("analyzer {name} params invalid: {e}")))?;
            analyzers.insert(name.clone(), built);
        }
        if !analyzers.contains_key("default") {
            return Err(bad(
                "multi analyzer must set default analyzer for all unknown value",
            ));
        }
        Ok(MultiAnalyzer {
            by_field,
            analyzers,
            alias,
        })
    }

    /// The analyzer `name` picks: through the alias, else by name, else `default`.
    pub fn pick(&mut self, name: &str) -> &mut Analyzer {
        let name = self.alias.get(name).map_or(name, String::as_str);
        let key = if self.analyzers.contains_key(name) {
            name.to_string()
        } else {
            "default".to_string()
        };
        self.analyzers.get_mut(&key).expect("a default analyzer")
    }
}
