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

/// The most addresses [`PerAddress`] remembers at once.
const MAX_ADDRESSES: usize = 10_000;

/// Log throttling by client address: an event (a refused handshake, a failed sign-in)
/// is logged at most once per period per address, with how many were not logged since,
/// so a client retrying in a loop cannot fill the log.
pub struct PerAddress {
    every: std::time::Duration,
    /// Per address: when it was last logged and how many were not since; and when the
    /// map was last swept of stale addresses.
    seen: std::sync::Mutex<(Seen, std::time::Instant)>,
}

/// Per address: when it was last logged and how many events were not logged since.
type Seen = std::collections::HashMap<String, (std::time::Instant, u64)>;

impl PerAddress {
    /// At most one line per `every` per address.
    pub fn new(every: std::time::Duration) -> Self {
        PerAddress {
            every,
            seen: std::sync::Mutex::new((Default::default(), std::time::Instant::now())),
        }
    }

    /// Whether an event from `address` is logged now: `Some(n)` with the `n` events
    /// not logged since the last line, `None` when this one is not logged.
    pub fn admit(&self, address: &str) -> Option<u64> {
        let mut guard = self.seen.lock().expect("per-address log lock");
        let (seen, swept) = &mut *guard;
        if seen.len() >= MAX_ADDRESSES && !seen.contains_key(address) {
            // Swept at most once a period, so a flood costs no scan per event.
            if swept.elapsed() >= self.every {
                seen.retain(|_, (at, _)| at.elapsed() < self.every);
                *swept = std::time::Instant::now();
            }
            if seen.len() >= MAX_ADDRESSES {
                // Many addresses at once (a scan, a flood): their events go unlogged
                // (they are still counted by the caller) rather than grow the map.
                return None;
            }
        }
        let now = std::time::Instant::now();
        match seen.get_mut(address) {
            Some((at, skipped)) if at.elapsed() < self.every => {
                *skipped += 1;
                None
            }
            Some((at, skipped)) => {
                let n = *skipped;
                *at = now;
                *skipped = 0;
                Some(n)
            }
            None => {
                seen.insert(address.to_string(), (now, 0));
                Some(0)
            }
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn one_line_per_address_per_period_with_the_count_not_logged() {
        let p = PerAddress::new(std::time::Duration::from_millis(200));
        assert_eq!(p.admit("10.0.0.1"), Some(0));
        assert_eq!(p.admit("10.0.0.1"), None);
        assert_eq!(p.admit("10.0.0.1"), None);
        assert_eq!(p.admit("10.0.0.2"), Some(0));
        std::thread::sleep(std::time::Duration::from_millis(250));
        assert_eq!(p.admit("10.0.0.1"), Some(2));
        assert_eq!(p.admit("10.0.0.1"), None);
    }
}
