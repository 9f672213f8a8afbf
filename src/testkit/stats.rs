//! Median and p99 of measured durations, and Markdown table rows, for benchmarks.

use std::time::Duration;

/// The value at quantile `p` (0..=1) of `sorted` (nearest rank).
pub fn percentile(sorted: &[Duration], p: f64) -> Duration {
    if sorted.is_empty() {
        return Duration::ZERO;
    }
    let i = ((sorted.len() as f64 - 1.0) * p).round() as usize;
    sorted[i.min(sorted.len() - 1)]
}

/// Sorts `xs` and returns (median, p99).
pub fn median_p99(xs: &mut [Duration]) -> (Duration, Duration) {
    xs.sort();
    (percentile(xs, 0.5), percentile(xs, 0.99))
}

/// Milliseconds with one decimal.
pub fn ms(d: Duration) -> String {
    format!("{:.1}", d.as_secs_f64() * 1000.0)
}

/// Parses a `Duration` as its `Debug` form prints it (`12.5ms`, `1.2s`, `950µs`, `80ns`).
pub fn parse_debug_duration(s: &str) -> Option<Duration> {
    let s = s.trim();
    let (num, unit) = s.split_at(s.find(|c: char| c.is_alphabetic() || c == 'µ')?);
    let v: f64 = num.parse().ok()?;
    let secs = match unit {
        "s" => v,
        "ms" => v / 1e3,
        "µs" | "us" => v / 1e6,
        "ns" => v / 1e9,
        _ => return None,
    };
    Some(Duration::from_secs_f64(secs))
}

/// The value after `name` on the command line (`--runs 5`), or `default`.
pub fn arg(name: &str, default: usize) -> usize {
    let args: Vec<String> = std::env::args().collect();
    args.iter()
        .position(|a| a == name)
        .and_then(|i| args.get(i + 1))
        .and_then(|v| v.parse().ok())
        .unwrap_or(default)
}

/// A size field (`VmRSS`, `VmHWM`, ...) of `/proc/<pid>/status` in MiB (`pid` may be
/// `self`); 0 when it cannot be read.
pub fn proc_status_mib(pid: &str, field: &str) -> f64 {
    std::fs::read_to_string(format!("/proc/{pid}/status"))
        .ok()
        .and_then(|s| {
            s.lines()
                .find(|l| l.strip_prefix(field).is_some_and(|r| r.starts_with(':')))
                .and_then(|l| l.split_whitespace().nth(1)?.parse::<f64>().ok())
        })
        .map_or(0.0, |kb| kb / 1024.0)
}

/// The proportional set size of a process in MiB (`Pss` of `/proc/<pid>/smaps_rollup`):
/// its private pages plus its share of pages shared with other processes (the text of
/// a binary eight processes run counts one eighth each); 0 when it cannot be read.
pub fn proc_pss_mib(pid: &str) -> f64 {
    std::fs::read_to_string(format!("/proc/{pid}/smaps_rollup"))
        .ok()
        .and_then(|s| {
            s.lines()
                .find(|l| l.starts_with("Pss:"))
                .and_then(|l| l.split_whitespace().nth(1)?.parse::<f64>().ok())
        })
        .map_or(0.0, |kb| kb / 1024.0)
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn parses_debug_durations() {
        assert_eq!(
            parse_debug_duration("12.5ms"),
            Some(Duration::from_micros(12500))
        );
        assert_eq!(parse_debug_duration("2s"), Some(Duration::from_secs(2)));
        assert_eq!(
            parse_debug_duration("950µs"),
            Some(Duration::from_micros(950))
        );
        assert_eq!(parse_debug_duration("x"), None);
    }

    #[test]
    fn percentiles() {
        let mut xs: Vec<Duration> = (1..=100).map(Duration::from_millis).collect();
        let (m, p) = median_p99(&mut xs);
        assert_eq!(m, Duration::from_millis(51));
        assert_eq!(p, Duration::from_millis(99));
    }
}
