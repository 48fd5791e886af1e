//! The process metrics Prometheus' own clients export (`process_cpu_seconds_total`,
//! `process_resident_memory_bytes`, `process_virtual_memory_bytes`,
//! `process_start_time_seconds`, `process_threads`, `process_open_fds`),
//! read from `/proc/self` at each scrape. Where there is no `/proc` (not
//! Linux) the collector exports nothing.

use prometheus_client::collector::Collector;
use prometheus_client::encoding::{DescriptorEncoder, EncodeMetric};
use prometheus_client::metrics::counter::ConstCounter;
use prometheus_client::metrics::gauge::ConstGauge;

/// The collector of this process's metrics (see the module docs).
#[derive(Debug, Clone, Copy, Default)]
pub struct ProcessCollector;

/// This process's figures, as `/proc/self` tells them.
#[derive(Debug, Clone, Copy, PartialEq)]
pub struct ProcessStats {
    /// User plus system CPU time, seconds.
    pub cpu_seconds: f64,
    /// Resident set size, bytes.
    pub resident_bytes: f64,
    /// Virtual memory size, bytes.
    pub virtual_bytes: f64,
    /// Start time, seconds since the Unix epoch.
    pub start_time_seconds: f64,
    /// Threads.
    pub threads: f64,
    /// Open file descriptors.
    pub open_fds: f64,
}

/// Clock ticks per second of `/proc`'s times.
fn clock_ticks() -> f64 {
    // SAFETY: sysconf reads a constant of the system.
    let t = unsafe { libc::sysconf(libc::_SC_CLK_TCK) };
    if t > 0 {
        t as f64
    } else {
        100.0
    }
}

fn page_size() -> f64 {
    // SAFETY: sysconf reads a constant of the system.
    let p = unsafe { libc::sysconf(libc::_SC_PAGESIZE) };
    if p > 0 {
        p as f64
    } else {
        4096.0
    }
}

/// Parses `/proc/<pid>/stat` (the fields after the command, whose name
/// may hold spaces and parentheses, so the split starts after its last `)`),
/// with `boot_time` (seconds since the epoch, from `/proc/stat`'s `btime`)
/// and the open descriptors counted by the caller.
pub fn parse_stat(stat: &str, boot_time: f64, open_fds: usize) -> Option<ProcessStats> {
    let rest = &stat[stat.rfind(')')? + 1..];
    // rest starts at field 3 (state): field n is rest's index n - 3.
    let f: Vec<&str> = rest.split_whitespace().collect();
    let num = |field: usize| -> Option<f64> { f.get(field - 3)?.parse::<f64>().ok() };
    let ticks = clock_ticks();
    Some(ProcessStats {
        cpu_seconds: (num(14)? + num(15)?) / ticks,
        threads: num(20)?,
        start_time_seconds: boot_time + num(22)? / ticks,
        virtual_bytes: num(23)?,
        resident_bytes: num(24)? * page_size(),
        open_fds: open_fds as f64,
    })
}

/// The `btime` line of `/proc/stat`: boot time, seconds since the epoch.
pub fn parse_boot_time(proc_stat: &str) -> Option<f64> {
    proc_stat
        .lines()
        .find_map(|l| l.strip_prefix("btime "))
        .and_then(|v| v.trim().parse().ok())
}

/// This process's figures now; `None` where `/proc` cannot be read.
pub fn read() -> Option<ProcessStats> {
    let stat = std::fs::read_to_string("/proc/self/stat").ok()?;
    let boot = parse_boot_time(&std::fs::read_to_string("/proc/stat").ok()?)?;
    let fds = std::fs::read_dir("/proc/self/fd").map_or(0, |d| d.count());
    parse_stat(&stat, boot, fds)
}

impl Collector for ProcessCollector {
    fn encode(&self, mut encoder: DescriptorEncoder) -> Result<(), std::fmt::Error> {
        let Some(s) = read() else {
            return Ok(());
        };
        let cpu = ConstCounter::new(s.cpu_seconds);
        let m = encoder.encode_descriptor(
            "process_cpu_seconds",
            "Total user and system CPU time spent in seconds",
            None,
            cpu.metric_type(),
        )?;
        cpu.encode(m)?;
        let gauges = [
            (
                "process_resident_memory_bytes",
                "Resident memory size in bytes",
                s.resident_bytes,
            ),
            (
                "process_virtual_memory_bytes",
                "Virtual memory size in bytes",
                s.virtual_bytes,
            ),
            (
                "process_start_time_seconds",
                "Start time of the process since unix epoch in seconds",
                s.start_time_seconds,
            ),
            (
                "process_threads",
                "Number of OS threads in the process",
                s.threads,
            ),
            (
                "process_open_fds",
                "Number of open file descriptors",
                s.open_fds,
            ),
        ];
        for (name, help, v) in gauges {
            let g = ConstGauge::new(v);
            let m = encoder.encode_descriptor(name, help, None, g.metric_type())?;
            g.encode(m)?;
        }
        Ok(())
    }
}
