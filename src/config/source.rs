//! Where configuration values come from: the file search, the YAML flattening and the
//! environment overlay.

use std::collections::BTreeMap;
use std::fmt;
use std::path::{Path, PathBuf};

use serde_json::Value;

use super::keys::{normalize, KeyDef};
use super::ConfigError;

/// Where an effective value came from.
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum Source {
    /// The built-in default.
    Default,
    /// A key in this configuration file.
    File(PathBuf),
    /// This environment variable.
    Env(String),
}

impl fmt::Display for Source {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        match self {
            Source::Default => f.write_str("default"),
            Source::File(p) => write!(f, "file {}", p.display()),
            Source::Env(v) => write!(f, "env {v}"),
        }
    }
}

/// An effective value and its origin.
#[derive(Debug, Clone)]
pub struct Setting {
    /// The value as text.
    pub value: String,
    /// Where it came from.
    pub source: Source,
}

/// Finds the configuration file: `--config`, else `$MILVUSCONF/milvus.yaml`, else
/// `./milvus.yaml`, else `./configs/milvus.yaml`; `None` means defaults alone.
pub fn locate_file(
    explicit: Option<&Path>,
    milvusconf: Option<&str>,
) -> Result<Option<PathBuf>, ConfigError> {
    if let Some(p) = explicit {
        if !p.is_file() {
            return Err(ConfigError::MissingFile(p.to_path_buf()));
        }
        return Ok(Some(p.to_path_buf()));
    }
    let mut candidates = Vec::new();
    if let Some(dir) = milvusconf.filter(|d| !d.is_empty()) {
        candidates.push(Path::new(dir).join("milvus.yaml"));
    }
    candidates.push(PathBuf::from("milvus.yaml"));
    candidates.push(PathBuf::from("configs/milvus.yaml"));
    Ok(candidates.into_iter().find(|p| p.is_file()))
}

/// Parses YAML text into dotted keys and scalar text values. Lists become
/// comma-separated text; nulls are left out.
pub fn flatten_yaml(path: &Path, text: &str) -> Result<BTreeMap<String, String>, ConfigError> {
    let root: Value = serde_saphyr::from_str(text).map_err(|e| {
        let (line, column) = e
            .location()
            .map(|l| (l.line(), l.column()))
            .unwrap_or((0, 0));
        let message = e.to_string();
        let mut message = message.lines().next().unwrap_or("").trim();
        // The parser repeats the position ("error: line 3 column 10: ..."); keep the reason.
        message = message.strip_prefix("error: ").unwrap_or(message);
        if message.starts_with("line ") {
            message = message.split_once(": ").map_or(message, |(_, m)| m);
        }
        let message = message.to_string();
        ConfigError::Syntax {
            path: path.to_path_buf(),
            line,
            column,
            message,
        }
    })?;
    let mut out = BTreeMap::new();
    match root {
        Value::Null => {}
        Value::Object(_) => flatten_into(&mut out, String::new(), &root),
        _ => return Err(ConfigError::NotAMapping(path.to_path_buf())),
    }
    Ok(out)
}

fn flatten_into(out: &mut BTreeMap<String, String>, prefix: String, v: &Value) {
    let scalar = |v: &Value| match v {
        Value::String(s) => s.clone(),
        other => other.to_string(),
    };
    match v {
        Value::Null => {}
        Value::Object(map) => {
            for (k, child) in map {
                let name = if prefix.is_empty() {
                    k.clone()
                } else {
                    format!("{prefix}.{k}")
                };
                flatten_into(out, name, child);
            }
        }
        Value::Array(items) => {
            let joined: Vec<String> = items.iter().map(scalar).collect();
            out.insert(prefix, joined.join(","));
        }
        other => {
            out.insert(prefix, scalar(other));
        }
    }
}

/// The environment variable that sets `key`, if any: Milvus's rule, with an optional
/// `MILVUS_CONF_` prefix. The last match in `env` wins, a prefixed one over a plain one.
pub fn env_for<'a>(key: &KeyDef, env: &'a [(String, String)]) -> Option<(&'a str, &'a str)> {
    let want = normalize(&key.name);
    let mut plain = None;
    let mut prefixed = None;
    for (name, value) in env {
        if let Some(rest) = name.strip_prefix("MILVUS_CONF_") {
            if normalize(rest) == want {
                prefixed = Some((name.as_str(), value.as_str()));
            }
        } else if normalize(name) == want {
            plain = Some((name.as_str(), value.as_str()));
        }
    }
    prefixed.or(plain)
}
