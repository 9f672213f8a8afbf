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
/// `self`). Panics when it cannot be read: a process that died during a benchmark must
/// not count as using no memory.
pub fn proc_status_mib(pid: &str, field: &str) -> f64 {
    std::fs::read_to_string(format!("/proc/{pid}/status"))
        .ok()
        .and_then(|s| {
            s.lines()
                .find(|l| l.strip_prefix(field).is_some_and(|r| r.starts_with(':')))
                .and_then(|l| l.split_whitespace().nth(1)?.parse::<f64>().ok())
        })
        .map(|kb| kb / 1024.0)
        .unwrap_or_else(|| panic!("cannot read {field} of process {pid}: did it die?"))
}

/// The proportional set size of a process in MiB (`Pss` of `/proc/<pid>/smaps_rollup`):
/// its private pages plus its share of pages shared with other processes (the text of
/// a binary eight processes run counts one eighth each). Panics when it cannot be read.
pub fn proc_pss_mib(pid: &str) -> f64 {
    std::fs::read_to_string(format!("/proc/{pid}/smaps_rollup"))
        .ok()
        .and_then(|s| {
            s.lines()
                .find(|l| l.starts_with("Pss:"))
                .and_then(|l| l.split_whitespace().nth(1)?.parse::<f64>().ok())
        })
        .map(|kb| kb / 1024.0)
        .unwrap_or_else(|| panic!("cannot read the PSS of process {pid}: did it die?"))
}

/// User + system CPU seconds a process has used. Panics when it cannot be read.
pub fn proc_cpu_s(pid: &str) -> f64 {
    std::fs::read_to_string(format!("/proc/{pid}/stat"))
        .ok()
        .and_then(|s| {
            // Fields after the command name (which may hold spaces) in parentheses.
            let rest = s.rsplit_once(')')?.1;
            let f: Vec<&str> = rest.split_whitespace().collect();
            let ticks = f.get(11)?.parse::<f64>().ok()? + f.get(12)?.parse::<f64>().ok()?;
            Some(ticks / 100.0)
        })
        .unwrap_or_else(|| panic!("cannot read the CPU time of process {pid}: did it die?"))
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
    #[should_panic(expected = "did it die?")]
    fn a_process_that_is_gone_is_not_counted_as_zero() {
        proc_status_mib("999999999", "VmRSS");
    }

    #[test]
    fn the_own_process_is_measured() {
        assert!(proc_status_mib("self", "VmRSS") > 0.0);
        assert!(proc_cpu_s("self") >= 0.0);
    }

    #[test]
    fn percentiles() {
        let mut xs: Vec<Duration> = (1..=100).map(Duration::from_millis).collect();
        let (m, p) = median_p99(&mut xs);
        assert_eq!(m, Duration::from_millis(51));
        assert_eq!(p, Duration::from_millis(99));
    }
}
