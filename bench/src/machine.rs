//! The machine a benchmark ran on: cores, CPU model, memory, load and date, read from `/proc`
//! and `date` (Linux).

use std::process::Command;

use serde::Serialize;

/// Machine facts printed above the table and stored in the JSON.
#[derive(Debug, Clone, Serialize)]
pub struct Machine {
    /// Cores this process may use (`nproc`).
    pub nproc: usize,
    /// `model name` from `/proc/cpuinfo`.
    pub cpu_model: String,
    /// `MemTotal` from `/proc/meminfo`, bytes.
    pub mem_total_bytes: Option<u64>,
    /// 1, 5 and 15-minute load averages when the benchmark started (the machine may be shared).
    pub load_average: String,
    /// UTC date and time when the benchmark started.
    pub date: String,
}

impl Machine {
    /// Reads the facts; a missing one is reported as `unknown`.
    pub fn collect() -> Self {
        let nproc = std::thread::available_parallelism().map_or(1, |n| n.get());
        let cpu_model = std::fs::read_to_string("/proc/cpuinfo")
            .ok()
            .and_then(|s| {
                s.lines()
                    .filter(|l| l.starts_with("model name"))
                    .find_map(|l| l.split_once(':').map(|(_, v)| v.trim().to_string()))
            })
            .unwrap_or_else(|| "unknown".into());
        let mem_total_bytes = std::fs::read_to_string("/proc/meminfo")
            .ok()
            .and_then(|s| {
                s.lines()
                    .find_map(|l| l.strip_prefix("MemTotal:"))
                    .and_then(|v| v.trim().trim_end_matches("kB").trim().parse::<u64>().ok())
            })
            .map(|kib| kib * 1024);
        let load_average = std::fs::read_to_string("/proc/loadavg")
            .ok()
            .map(|s| s.split_whitespace().take(3).collect::<Vec<_>>().join(" "))
            .unwrap_or_else(|| "unknown".into());
        let date = Command::new("date")
            .args(["-u", "+%Y-%m-%d %H:%M:%S UTC"])
            .output()
            .ok()
            .filter(|o| o.status.success())
            .map(|o| String::from_utf8_lossy(&o.stdout).trim().to_string())
            .unwrap_or_else(|| "unknown".into());
        Machine {
            nproc,
            cpu_model,
            mem_total_bytes,
            load_average,
            date,
        }
    }

    /// Markdown lines describing the machine.
    pub fn markdown(&self) -> String {
        let mem = self.mem_total_bytes.map_or_else(
            || "unknown".into(),
            |b| format!("{:.1} GiB", b as f64 / GIB),
        );
        format!(
            "- date: {}\n- nproc: {}\n- CPU: {}\n- memory: {}\n- load average at start: {}\n",
            self.date, self.nproc, self.cpu_model, mem, self.load_average
        )
    }
}

const GIB: f64 = (1u64 << 30) as f64;
