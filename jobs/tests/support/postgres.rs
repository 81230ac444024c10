//! A throwaway PostgreSQL cluster for tests, started by the project's own
//! `scripts/postgres.sh` (as an unprivileged user when the tests run as root) in a temp
//! directory, stopped when dropped. Without PostgreSQL's server binaries the test is skipped
//! with a notice, unless `VEIL_REQUIRE_POSTGRES=1` (CI) makes that a failure.

#![allow(dead_code)]

use std::path::{Path, PathBuf};
use std::process::Command;

/// A started cluster.
pub struct Postgres {
    dir: tempfile::TempDir,
    /// `postgres://veil@127.0.0.1:PORT/veil`.
    pub url: String,
}

fn script() -> PathBuf {
    Path::new(env!("CARGO_MANIFEST_DIR")).join("../scripts/postgres.sh")
}

fn run(args: &[&str]) -> Result<String, String> {
    let out = Command::new("bash")
        .arg(script())
        .args(args)
        .output()
        .map_err(|e| format!("running scripts/postgres.sh: {e}"))?;
    if out.status.success() {
        Ok(String::from_utf8_lossy(&out.stdout).trim().to_string())
    } else {
        Err(String::from_utf8_lossy(&out.stderr).trim().to_string())
    }
}

impl Postgres {
    /// Starts a cluster, or returns `None` (printing `SKIPPED test`) when PostgreSQL is not
    /// installed and not required.
    pub fn start_or_skip(test: &str) -> Option<Postgres> {
        // Under /tmp: the cluster's owner must be able to reach the directory.
        let dir = tempfile::Builder::new()
            .prefix("veil-pg-")
            .tempdir_in(std::env::temp_dir())
            .unwrap();
        match run(&["start", dir.path().to_str().unwrap()]) {
            Ok(url) => Some(Postgres { dir, url }),
            Err(e) if e.contains("no PostgreSQL server binaries") => {
                if std::env::var("VEIL_REQUIRE_POSTGRES").as_deref() == Ok("1") {
                    panic!("{test}: {e}");
                }
                eprintln!("SKIPPED {test}: {e}");
                None
            }
            Err(e) => panic!("{test}: starting PostgreSQL: {e}"),
        }
    }

    /// The cluster's directory.
    pub fn dir(&self) -> &Path {
        self.dir.path()
    }

    /// Immediate shutdown, as a crash would (connections drop at once).
    pub fn kill(&self) {
        run(&["kill", self.dir.path().to_str().unwrap()]).expect("stopping PostgreSQL");
    }

    /// Starts the cluster again on the same port.
    pub fn restart(&self) {
        let url =
            run(&["start", self.dir.path().to_str().unwrap()]).expect("restarting PostgreSQL");
        assert_eq!(url, self.url);
    }

    /// A fresh database on this cluster (one per test scenario), by URL.
    pub fn database(&self, name: &str) -> String {
        let base = self.url.rsplit_once('/').unwrap().0;
        let admin = format!("{base}/postgres");
        let out = Command::new(Path::new(&pg_bin()).join("psql"))
            .args([&admin, "-q", "-c", &format!("CREATE DATABASE {name}")])
            .output()
            .expect("psql");
        assert!(
            out.status.success(),
            "CREATE DATABASE {name}: {}",
            String::from_utf8_lossy(&out.stderr)
        );
        format!("{base}/{name}")
    }
}

/// psql from the same place the script takes the server from.
fn pg_bin() -> String {
    if let Ok(b) = std::env::var("VEIL_PG_BIN") {
        return b;
    }
    let mut dirs: Vec<_> = std::fs::read_dir("/usr/lib/postgresql")
        .map(|r| {
            r.filter_map(|e| e.ok())
                .map(|e| e.path().join("bin"))
                .collect()
        })
        .unwrap_or_default();
    dirs.sort();
    dirs.pop()
        .map(|d| d.display().to_string())
        .unwrap_or_else(|| "/usr/bin".into())
}

impl Drop for Postgres {
    fn drop(&mut self) {
        let _ = run(&["kill", self.dir.path().to_str().unwrap()]);
    }
}
