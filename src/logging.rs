//! Milvus-style log lines on stderr:
//! `[2026/11/27 10:00:00.123 +00:00] [INFO] [session/standby.rs:42] ["message"] [key=value]`.

use std::io::Write;

use log::kv::{Key, Value, VisitSource};

/// Starts logging at `level`, unless `RUST_LOG` is set, which then decides.
pub fn init(level: log::LevelFilter) {
    let mut builder = env_logger::Builder::new();
    builder.filter_level(level);
    // Our own crate's lines at `level`; noisy dependencies only from warn up.
    for noisy in ["h2", "hyper", "tower", "tonic", "axum"] {
        builder.filter_module(noisy, log::LevelFilter::Warn.min(level));
    }
    if let Ok(spec) = std::env::var("RUST_LOG") {
        builder.parse_filters(&spec);
    }
    builder.format(|buf, record| {
        let now = chrono::Local::now().format("%Y/%m/%d %H:%M:%S%.3f %:z");
        let file = record
            .file()
            .map(|f| f.strip_prefix("src/").unwrap_or(f))
            .unwrap_or("?");
        write!(
            buf,
            "[{now}] [{}] [{file}:{}] [{}]",
            record.level(),
            record.line().unwrap_or(0),
            quote(&record.args().to_string())
        )?;
        let mut fields = Fields(String::new());
        let _ = record.key_values().visit(&mut fields);
        writeln!(buf, "{}", fields.0)
    });
    // A second init (tests) keeps the first logger.
    let _ = builder.try_init();
}

struct Fields(String);

impl<'kvs> VisitSource<'kvs> for Fields {
    fn visit_pair(&mut self, key: Key<'kvs>, value: Value<'kvs>) -> Result<(), log::kv::Error> {
        let v = value.to_string();
        let needs_quotes = v.is_empty()
            || v.chars()
                .any(|c| c.is_whitespace() || matches!(c, '"' | '[' | ']' | '='));
        if needs_quotes {
            self.0.push_str(&format!(" [{key}={}]", quote(&v)));
        } else {
            self.0.push_str(&format!(" [{key}={v}]"));
        }
        Ok(())
    }
}

/// Quotes text as a JSON string, as Milvus's zap encoder does.
fn quote(s: &str) -> String {
    serde_json::to_string(s).unwrap_or_else(|_| format!("\"{s}\""))
}
