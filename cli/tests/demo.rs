//! `veil demo` end to end (B = 2, D = 8, the dev keys cached under the target dir). Without
//! Bitcoin: exit 0, and the JSON summary shows the story (3 transfers: a deposit, a payment, a
//! withdrawal, in 3 proven batches, each with its proving time), the final balances and a
//! passed `verify-chain`. With a `bitcoind` (`VEIL_BITCOIND`, `PATH` or `make bitcoind`;
//! skipped with a notice otherwise): anchors on Bitcoin, satoshis in = the peg-in, out = the
//! withdrawal, `verify-chain` and `--from-bitcoin` passed. Every run must leave nothing behind:
//! its throwaway directory (under the test's own `TMPDIR`) is gone and no process runs from it,
//! after success, after an error (one `error:` line, exit 2) and after Ctrl-C (exit 130).

mod support;

use std::io::{BufRead, BufReader};
use std::path::Path;
use std::process::{Command, Output, Stdio};
use std::time::{Duration, Instant};

use serde_json::Value;
use support::bitcoind::{find_bitcoind, Lookup};
use support::{keys_dir, text};

/// `veil demo args` with `TMPDIR=tmp` (where its throwaway directory goes).
fn demo(tmp: &Path, args: &[&str], bitcoind: Option<&Path>) -> Command {
    let mut cmd = Command::new(env!("CARGO_BIN_EXE_veil"));
    cmd.arg("demo")
        .args(args)
        .env("TMPDIR", tmp)
        .env_remove("RUST_LOG");
    match bitcoind {
        Some(exe) => cmd.env("VEIL_BITCOIND", exe),
        None => cmd.env_remove("VEIL_BITCOIND"),
    };
    cmd
}

fn keys() -> String {
    keys_dir().display().to_string()
}

fn bitcoind_or_skip(test: &str) -> Option<std::path::PathBuf> {
    match find_bitcoind() {
        Lookup::Found(exe) => Some(exe),
        Lookup::BadEnv(msg) => panic!("{test}: {msg}"),
        Lookup::NotFound(msg) => {
            eprintln!("SKIPPED {test}: {msg}");
            None
        }
    }
}

/// Nothing of the demo is left: `tmp` is empty and no process runs from it.
fn assert_nothing_left(tmp: &Path) {
    let left: Vec<_> = std::fs::read_dir(tmp)
        .unwrap()
        .map(|e| e.unwrap().path())
        .collect();
    assert!(left.is_empty(), "left behind: {left:?}");
    let needle = tmp.display().to_string();
    let deadline = Instant::now() + Duration::from_secs(10);
    loop {
        let running: Vec<String> = std::fs::read_dir("/proc")
            .unwrap()
            .filter_map(|e| {
                let cmdline = std::fs::read(e.ok()?.path().join("cmdline")).ok()?;
                let cmdline = String::from_utf8_lossy(&cmdline).replace('\0', " ");
                cmdline.contains(&needle).then_some(cmdline)
            })
            .collect();
        if running.is_empty() {
            return;
        }
        assert!(Instant::now() < deadline, "still running: {running:?}");
        std::thread::sleep(Duration::from_millis(100));
    }
}

fn summary(out: &Output) -> Value {
    assert_eq!(
        out.status.code(),
        Some(0),
        "{}{}",
        text(&out.stdout),
        text(&out.stderr)
    );
    serde_json::from_slice(&out.stdout)
        .unwrap_or_else(|e| panic!("{e}: {}{}", text(&out.stdout), text(&out.stderr)))
}

/// What both demos show about the story itself.
fn assert_story(s: &Value) {
    assert_eq!(s["ok"], true, "{s}");
    assert_eq!(s["transfers"]["total"], 3, "{s}");
    assert_eq!(s["transfers"]["deposits"], 1, "{s}");
    assert_eq!(s["transfers"]["payments"], 1, "{s}");
    assert_eq!(s["transfers"]["withdrawals"], 1, "{s}");
    assert_eq!(s["batches"], 3, "{s}");
    assert_eq!(s["proven"], 3, "{s}");
    let per_batch = s["proving_seconds"]["per_batch"].as_array().unwrap();
    assert_eq!(per_batch.len(), 3, "{s}");
    assert!(per_batch.iter().all(|v| v.as_f64().unwrap() > 0.0), "{s}");
    let total = s["proving_seconds"]["total"].as_f64().unwrap();
    let sum: f64 = per_batch.iter().map(|v| v.as_f64().unwrap()).sum();
    assert!((total - sum).abs() < 1e-3, "{s}");
    assert_eq!(s["balances"]["alice"], 100_000 - 60_000 - 100, "{s}");
    assert_eq!(s["balances"]["bob"], 60_000 - 40_000 - 500, "{s}");
    assert_eq!(s["verify_chain"]["ok"], true, "{s}");
    assert_eq!(s["verify_chain"]["batches"], 3, "{s}");
}

#[test]
fn demo_without_bitcoin_tells_the_story_and_cleans_up() {
    let tmp = tempfile::tempdir().unwrap();
    let out = demo(
        tmp.path(),
        &["--no-bitcoin", "--json", "--keys-dir", &keys()],
        None,
    )
    .output()
    .unwrap();
    let s = summary(&out);
    assert_story(&s);
    assert_eq!(s["bitcoin"], false, "{s}");
    assert_eq!(s["anchors"]["count"], 0, "{s}");
    assert_eq!(s["sats_in"], 0, "{s}");
    assert_eq!(s["sats_out"], 0, "{s}");
    assert_eq!(s["verify_chain"]["from_bitcoin"], Value::Null, "{s}");
    // One progress line per step on stderr.
    let err = text(&out.stderr);
    for step in [
        "keys",
        "node",
        "wallets",
        "deposit",
        "payment",
        "withdrawal",
        "verify-chain",
    ] {
        assert!(
            err.lines().any(|l| l.contains(&format!("] {step} "))),
            "no {step} line: {err}"
        );
    }
    assert_nothing_left(tmp.path());

    // The table, with --keep: the directory stays and is named.
    let out = demo(
        tmp.path(),
        &["--no-bitcoin", "--keep", "--keys-dir", &keys()],
        None,
    )
    .output()
    .unwrap();
    assert_eq!(out.status.code(), Some(0), "{}", text(&out.stderr));
    let table = text(&out.stdout);
    assert!(
        table.contains("transfers      3: 1 deposit, 1 private payment, 1 withdrawal"),
        "{table}"
    );
    assert!(
        table.contains("balances       alice 39900 sat, bob 19500 sat"),
        "{table}"
    );
    let kept: Vec<_> = std::fs::read_dir(tmp.path()).unwrap().collect();
    assert_eq!(kept.len(), 1, "{table}");
    let kept = kept[0].as_ref().unwrap().path();
    assert!(table.contains(&kept.display().to_string()), "{table}");
    assert!(kept.join("alice").join("key.json").exists());
    std::fs::remove_dir_all(&kept).unwrap();
}

#[test]
fn demo_errors_in_one_line_and_leaves_nothing() {
    let tmp = tempfile::tempdir().unwrap();
    let work = tempfile::tempdir().unwrap();
    // A damaged proving key: the demo fails once its throwaway directory exists.
    let bad_keys = work.path().join("keys");
    std::fs::create_dir(&bad_keys).unwrap();
    std::fs::write(bad_keys.join("pk-B2-D8.bin"), b"not a key").unwrap();
    let out = demo(
        tmp.path(),
        &["--no-bitcoin", "--keys-dir", bad_keys.to_str().unwrap()],
        None,
    )
    .output()
    .unwrap();
    assert_eq!(out.status.code(), Some(2), "{}", text(&out.stderr));
    assert!(out.stdout.is_empty());
    let err = text(&out.stderr);
    let errors: Vec<&str> = err.lines().filter(|l| l.starts_with("error: ")).collect();
    assert_eq!(errors.len(), 1, "{err}");
    assert!(errors[0].contains("pk-B2-D8.bin"), "{err}");
    assert_nothing_left(tmp.path());
}

#[test]
fn demo_with_bitcoin_anchors_pegs_in_and_out_and_verifies() {
    let test = "demo_with_bitcoin_anchors_pegs_in_and_out_and_verifies";
    let Some(exe) = bitcoind_or_skip(test) else {
        return;
    };
    let tmp = tempfile::tempdir().unwrap();
    let out = demo(tmp.path(), &["--json", "--keys-dir", &keys()], Some(&exe))
        .output()
        .unwrap();
    let s = summary(&out);
    assert_story(&s);
    assert_eq!(s["bitcoin"], true, "{s}");
    let anchors = s["anchors"]["count"].as_u64().unwrap();
    assert!(anchors > 0, "{s}");
    assert_eq!(
        s["anchors"]["txids"].as_array().unwrap().len() as u64,
        anchors
    );
    assert!(s["fees_sat"]["anchors"].as_u64().unwrap() > 0, "{s}");
    assert_eq!(s["sats_in"], 100_000, "{s}");
    assert_eq!(s["sats_out"], 40_000, "{s}");
    assert!(s["peg_in"].as_str().unwrap().ends_with(":0"), "{s}");
    let paid_by = s["withdrawal_txid"].as_str().unwrap();
    assert!(
        s["anchors"]["txids"]
            .as_array()
            .unwrap()
            .iter()
            .any(|t| t == paid_by),
        "{s}"
    );
    assert_eq!(s["verify_chain"]["anchors"], anchors, "{s}");
    let fb = &s["verify_chain"]["from_bitcoin"];
    assert_eq!(fb["ok"], true, "{s}");
    assert_eq!(fb["batches"], 3, "{s}");
    assert_eq!(fb["peg_ins"], 1, "{s}");
    assert_eq!(fb["peg_outs"], 1, "{s}");
    assert_eq!(fb["supply_sat"], 100_000 - 40_000 - 100 - 500, "{s}");
    assert_nothing_left(tmp.path());
}

#[test]
fn demo_interrupted_stops_bitcoind_and_removes_its_directory() {
    let exe = match find_bitcoind() {
        Lookup::Found(exe) => Some(exe),
        Lookup::BadEnv(msg) => panic!("{msg}"),
        Lookup::NotFound(_) => None,
    };
    let tmp = tempfile::tempdir().unwrap();
    let mut args = vec!["--keys-dir".to_owned(), keys()];
    if exe.is_none() {
        args.push("--no-bitcoin".into());
    }
    let args: Vec<&str> = args.iter().map(String::as_str).collect();
    let mut child = demo(tmp.path(), &args, exe.as_deref())
        .stdout(Stdio::null())
        .stderr(Stdio::piped())
        .spawn()
        .unwrap();
    // Interrupted once its node runs (and, with Bitcoin, its bitcoind).
    let mut lines = BufReader::new(child.stderr.take().unwrap()).lines();
    let mut seen = String::new();
    loop {
        let line = lines
            .next()
            .unwrap_or_else(|| panic!("demo ended before its node started: {seen}"))
            .unwrap();
        seen.push_str(&line);
        seen.push('\n');
        if line.contains("] node ") {
            break;
        }
    }
    let status = Command::new("kill")
        .args(["-INT", &child.id().to_string()])
        .status()
        .unwrap();
    assert!(status.success());
    let rest: Vec<String> = lines.map_while(Result::ok).collect();
    let code = child.wait().unwrap().code();
    assert_eq!(code, Some(130), "{seen}{rest:?}");
    assert!(
        rest.iter().any(|l| l.starts_with("error: interrupted")),
        "{seen}{rest:?}"
    );
    assert_nothing_left(tmp.path());
}
