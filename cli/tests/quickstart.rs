//! The README's quick start, run verbatim so the README cannot rot: the commands between
//! `<!-- quickstart:begin -->` and `<!-- quickstart:end -->` in README.md are read from the file
//! (at most ten, one per line) and each runs with `sh -c` against a real `veil node` started as
//! `make run` starts it (dev keys, `--dev-token`), in a temporary directory that looks like the
//! clone: `./target/release/veil` is this build's binary, `data` the node's data directory and
//! `keys` its keys. The only substitution is the documented `$VEIL_NODE` (the default node URL
//! of every command), which points at this test's node on a free port; its shape is B = 2,
//! D = 8 instead of `make run`'s B = 4, D = 32, and it seals a batch after 300 ms instead of 5 s.
//! Every command must call the release binary a newcomer has after `make run`. The balances the
//! `sync` lines print must be the ones their comments promise (alice 100000 sat, then bob 30000,
//! then bob 9500), and the story's outcome is checked on the node: the payment and the
//! withdrawal are in proven batches, and every batch verifies (and does not under another key).
//! A last test checks that a `--wait` which times out says so in one `error:` line, exit 2.

use std::io::Read;
use std::path::{Path, PathBuf};
use std::process::{Command, Output, Stdio};
use std::time::{Duration, Instant};

use serde_json::Value;

mod node_process;
mod veil_bin;
use node_process::NodeProcess;
use veil_bin::text;

const BEGIN: &str = "<!-- quickstart:begin -->";
const END: &str = "<!-- quickstart:end -->";
/// The issue's limit: the whole story in at most ten copy-paste commands.
const MAX_COMMANDS: usize = 10;
/// One command's limit (each waits at most for one proof at B = 2, D = 8).
const COMMAND_TIMEOUT: Duration = Duration::from_secs(300);

/// The command lines of the quick start in `readme`: the lines of the one ```sh fence between
/// the markers, without blank and comment-only lines.
fn quickstart_commands(readme: &str) -> Result<Vec<String>, String> {
    let (_, rest) = readme
        .split_once(BEGIN)
        .ok_or_else(|| format!("no {BEGIN} marker"))?;
    let (block, _) = rest
        .split_once(END)
        .ok_or_else(|| format!("no {END} after {BEGIN}"))?;
    let mut lines = block.lines().map(str::trim).filter(|l| !l.is_empty());
    if lines.next() != Some("```sh") {
        return Err("the quick start must open with a ```sh fence right after its marker".into());
    }
    let mut commands = Vec::new();
    for line in lines.by_ref() {
        if line == "```" {
            break;
        }
        if line.starts_with('#') {
            continue;
        }
        if line.ends_with('\\') {
            return Err(format!("one command per line, no continuations: {line}"));
        }
        commands.push(line.to_owned());
    }
    if lines.next().is_some() {
        return Err("nothing may follow the fence before the end marker".into());
    }
    if commands.is_empty() {
        return Err("the quick start has no commands".into());
    }
    Ok(commands)
}

/// The release binary `make run` builds: what every quick-start command runs.
const RELEASE_BIN: &str = "./target/release/veil";

/// Whether every program `line` names (its first word and any `$(...)`'s) is [`RELEASE_BIN`].
fn calls_only_the_release_binary(line: &str) -> bool {
    let code = line.split_once(" #").map_or(line, |(c, _)| c);
    code.starts_with(&format!("{RELEASE_BIN} "))
        && code
            .split(|c: char| c.is_whitespace() || c == '"' || c == '(')
            .filter(|w| w.ends_with("veil"))
            .all(|w| w == RELEASE_BIN)
}

/// The `N` of the first `spendable N sat` in `text`.
fn spendable(text: &str) -> Option<u64> {
    let (_, rest) = text.split_once("spendable ")?;
    let (n, rest) = rest.split_once(' ')?;
    rest.starts_with("sat").then(|| n.parse().ok()).flatten()
}

/// The wallet a `veil wallet --wallet NAME ...` line names.
fn wallet_name(line: &str) -> Option<&str> {
    let mut words = line.split_whitespace();
    words.find(|w| *w == "--wallet")?;
    words.next()
}

/// Dev keys (seed `seed`) for B = 2, D = 8 cached under the target dir, as the other CLI tests
/// keep them; returns their directory.
fn dev_keys(seed: u64) -> PathBuf {
    // This file's tests run in parallel: one makes the keys, the others wait for them.
    static SETUP: std::sync::Mutex<()> = std::sync::Mutex::new(());
    let _once = SETUP.lock().unwrap_or_else(|e| e.into_inner());
    let tmp = Path::new(env!("CARGO_TARGET_TMPDIR"));
    let shape = veil_circuits::batch::BatchShape::new(2, 8).unwrap();
    veil_prover::load_or_setup_dev_keys(tmp, shape, seed).expect("dev keys");
    tmp.join(format!("dev-seed-{seed}"))
}

/// A temporary directory laid out as the clone the quick start runs in after `make run`:
/// `./target/release/veil` (a link to this build's binary) and `keys` (`make run`'s dev keys,
/// here B = 2, D = 8 and cached); the node makes `data`.
fn clone() -> tempfile::TempDir {
    let dir = tempfile::tempdir().unwrap();
    let release = dir.path().join("target/release");
    std::fs::create_dir_all(&release).unwrap();
    std::os::unix::fs::symlink(env!("CARGO_BIN_EXE_veil"), release.join("veil")).unwrap();
    std::os::unix::fs::symlink(dev_keys(1), dir.path().join("keys")).unwrap();
    dir
}

/// The node's shape in these tests (`make run`'s is B = 4, D = 32), and a batch sealed after
/// 300 ms instead of 5 s.
const SHAPE: [&str; 6] = ["--batch-size", "2", "--depth", "8", "--max-wait-ms", "300"];

/// `make run`'s node (`--data-dir data --keys-dir keys --dev-keys 1 --dev-token`) in `clone`.
struct Node {
    process: NodeProcess,
    url: String,
}

impl Node {
    /// The node with `extra` arguments (B = 2, D = 8 and the batch timer for this test),
    /// listening on a free port when returned.
    fn start(clone: &Path, extra: &[&str]) -> Node {
        let mut cmd = Command::new(clone.join("target/release/veil"));
        cmd.args(["node", "--data-dir", "data", "--keys-dir", "keys"])
            .args(["--dev-keys", "1", "--dev-token"])
            .args(extra)
            .current_dir(clone)
            .env_remove("VEIL_OPERATOR_TOKEN")
            .env("RUST_LOG", "warn")
            .stdout(std::fs::File::create(clone.join("node.out")).unwrap());
        let process = NodeProcess::spawn(cmd, clone.join("node.log"), Duration::from_secs(300));
        Node {
            url: process.url(),
            process,
        }
    }

    fn log(&self) -> String {
        self.process.log()
    }

    fn get(&self, path: &str) -> Value {
        reqwest::blocking::get(format!("{}{path}", self.url))
            .unwrap()
            .json()
            .unwrap()
    }
}

/// The environment of a newcomer's shell in the clone, with `$VEIL_NODE` at `node`.
fn newcomer(cmd: &mut Command, clone: &Path, node: &str) {
    cmd.current_dir(clone)
        .env("VEIL_NODE", node)
        .env("HOME", clone)
        .env_remove("VEIL_WALLET")
        .env_remove("VEIL_OPERATOR_TOKEN")
        .env_remove("RUST_LOG");
}

/// Runs `line` with `sh -c` in the clone, killed after [`COMMAND_TIMEOUT`].
fn run_line(line: &str, clone: &Path, node: &str) -> Output {
    let mut cmd = Command::new("sh");
    cmd.args(["-c", line])
        .stdin(Stdio::null())
        .stdout(Stdio::piped())
        .stderr(Stdio::piped());
    newcomer(&mut cmd, clone, node);
    let mut child = cmd.spawn().unwrap();
    // Drain the pipes while waiting, so a chatty command cannot block on them.
    let mut out = child.stdout.take().unwrap();
    let mut err = child.stderr.take().unwrap();
    let out = std::thread::spawn(move || {
        let mut b = Vec::new();
        out.read_to_end(&mut b).map(|_| b)
    });
    let err = std::thread::spawn(move || {
        let mut b = Vec::new();
        err.read_to_end(&mut b).map(|_| b)
    });
    let start = Instant::now();
    let status = loop {
        if let Some(status) = child.try_wait().unwrap() {
            break status;
        }
        if start.elapsed() > COMMAND_TIMEOUT {
            let _ = child.kill();
            panic!("`{line}` still running after {COMMAND_TIMEOUT:?}");
        }
        std::thread::sleep(Duration::from_millis(50));
    };
    Output {
        status,
        stdout: out.join().unwrap().unwrap(),
        stderr: err.join().unwrap().unwrap(),
    }
}

/// `veil args` in the clone as the newcomer runs it.
fn veil(clone: &Path, node: &str, args: &[&str]) -> Output {
    let mut cmd = Command::new(clone.join("target/release/veil"));
    cmd.args(args);
    newcomer(&mut cmd, clone, node);
    cmd.output().unwrap()
}

fn wallet_state(clone: &Path, name: &str) -> Value {
    let path = clone.join(name).join("wallet.json");
    serde_json::from_str(&std::fs::read_to_string(&path).unwrap_or_else(|e| {
        panic!(
            "{}: {e} (the quick start's wallets are alice and bob)",
            path.display()
        )
    }))
    .unwrap()
}

/// This wallet's only submitted transfer of `kind`.
fn transfer<'a>(state: &'a Value, kind: &str) -> &'a Value {
    let all: Vec<&Value> = state["transfers"]
        .as_array()
        .unwrap()
        .iter()
        .filter(|t| t["kind"] == kind)
        .collect();
    assert_eq!(all.len(), 1, "one {kind} expected: {state}");
    all[0]
}

fn u(v: &Value) -> u64 {
    v.as_u64().unwrap_or_else(|| panic!("not a number: {v}"))
}

#[test]
fn readme_quick_start_runs_verbatim_against_a_real_node() {
    let readme = std::fs::read_to_string(concat!(env!("CARGO_MANIFEST_DIR"), "/../README.md"))
        .expect("README.md");
    let commands =
        quickstart_commands(&readme).unwrap_or_else(|e| panic!("README.md quick start: {e}"));
    assert!(
        commands.len() <= MAX_COMMANDS,
        "the quick start has {} commands, at most {MAX_COMMANDS}",
        commands.len()
    );
    for line in &commands {
        assert!(
            calls_only_the_release_binary(line),
            "a newcomer has {RELEASE_BIN} after `make run`: {line}"
        );
    }

    let dir = clone();
    let clone = dir.path();
    let node = Node::start(clone, &SHAPE);
    let url = node.url.clone();

    let mut transcript = String::new();
    // (wallet, spendable) as each `sync` line prints it.
    let mut synced = Vec::new();
    for line in &commands {
        let out = run_line(line, clone, &url);
        let stdout = text(&out.stdout);
        transcript.push_str(&format!("$ {line}\n{stdout}{}", text(&out.stderr)));
        assert!(
            out.status.success(),
            "README quick start command failed ({}):\n{transcript}\nnode log:\n{}",
            out.status,
            node.log()
        );
        if line.contains(" sync") {
            let name = wallet_name(line).unwrap_or_else(|| panic!("which wallet? {line}"));
            let balance =
                spendable(&stdout).unwrap_or_else(|| panic!("no balance printed:\n{transcript}"));
            // The comment's promise, if it makes one, is what the command printed.
            if let Some(promised) = line.split_once(" #").and_then(|(_, c)| spendable(c)) {
                assert_eq!(balance, promised, "`{line}` printed:\n{stdout}");
            }
            synced.push((name.to_owned(), balance));
        }
        if line.contains(" verify --all") {
            assert!(stdout.starts_with("valid: "), "`{line}` printed:\n{stdout}");
        }
    }
    eprintln!("{transcript}");
    // Alice is credited 100000; she pays bob 30000; bob withdraws 20000 with a 500 fee.
    assert_eq!(
        synced,
        [("alice", 100_000), ("bob", 30_000), ("bob", 9_500)].map(|(n, b)| (n.to_owned(), b)),
        "{transcript}"
    );

    // Alice paid bob; the payment is proven, and bob found exactly that note.
    let alice = wallet_state(clone, "alice");
    let bob_address = text(&veil(clone, &url, &["wallet", "--wallet", "bob", "address"]).stdout)
        .trim()
        .to_owned();
    let payment = transfer(&alice, "send");
    assert_eq!(payment["to"], bob_address.as_str(), "{payment}");
    let paid = u(&payment["amount"]);
    let id = payment["id"].as_str().unwrap();
    assert_eq!(
        node.get(&format!("/v1/transfers/{id}"))["status"],
        "proven",
        "the payment"
    );
    let bob = wallet_state(clone, "bob");
    let received: Vec<u64> = bob["notes"]
        .as_array()
        .unwrap()
        .iter()
        .map(|n| u(&n["note"]["value"]))
        .collect();
    assert!(
        received.contains(&paid),
        "bob's notes {received:?}, paid {paid}"
    );

    // Bob's withdrawal is in a proven batch, and his balance is what he was paid less it.
    let withdrawal = transfer(&bob, "withdraw");
    let id = withdrawal["id"].as_str().unwrap();
    let status = node.get(&format!("/v1/transfers/{id}"));
    assert_eq!(status["status"], "proven", "the withdrawal: {status}");
    let state = node.get("/v1/state");
    assert!(u(&status["batch"]) < u(&state["proven_height"]), "{state}");
    let out = veil(
        clone,
        &url,
        &["wallet", "--wallet", "bob", "sync", "--json"],
    );
    assert!(out.status.success(), "{out:?}");
    let bob_now: Value = serde_json::from_slice(&out.stdout).unwrap();
    assert_eq!(
        u(&bob_now["balance"]["spendable"]),
        paid - u(&withdrawal["amount"]) - u(&withdrawal["fee"]),
        "{bob_now}"
    );

    // Every batch verifies (the deposit's, the payment's, the withdrawal's at least) ...
    let out = veil(clone, &url, &["verify", "--all", "--json"]);
    assert_eq!(out.status.code(), Some(0), "{out:?}");
    let verdict: Value = serde_json::from_slice(&out.stdout).unwrap();
    assert_eq!(verdict["valid"], true, "{verdict}");
    let batches = u(&verdict["batches"]);
    assert!(batches >= 3, "{verdict}");
    assert_eq!(batches, u(&state["batch_height"]), "{verdict}");
    // ... and not under another key: one line per batch, exit 1.
    let other = dev_keys(2).join("vk-B2-D8.bin");
    let out = veil(
        clone,
        &url,
        &["verify", "--all", "--vk", other.to_str().unwrap()],
    );
    assert_eq!(out.status.code(), Some(1), "{out:?}");
    let lines = text(&out.stdout);
    assert_eq!(lines.lines().count() as u64, batches, "{lines}");
    assert!(
        lines
            .lines()
            .all(|l| l.starts_with("batch ") && l.contains("does not verify")),
        "{lines}"
    );
    drop(node);

    // Without a node: one error line, exit 2.
    let out = veil(clone, &url, &["verify", "--all"]);
    assert_eq!(out.status.code(), Some(2), "{out:?}");
    assert_eq!(text(&out.stderr).lines().count(), 1, "{out:?}");
}

/// Asserts `out` is a failure with exactly one `error: ...` line on stderr containing `what`.
fn one_error_line(out: &Output, what: &str) {
    let stderr = text(&out.stderr);
    assert_eq!(out.status.code(), Some(2), "{out:?}");
    assert_eq!(stderr.lines().count(), 1, "one line expected: {stderr}");
    assert!(stderr.starts_with("error: "), "{stderr}");
    assert!(stderr.contains(what), "{what:?} expected: {stderr}");
}

#[test]
fn a_wait_that_times_out_fails_with_one_error_line() {
    // A node that never proves: every --wait for a proof times out.
    let dir = clone();
    let clone = dir.path();
    let node = Node::start(clone, &[&SHAPE[..], &["--no-prove"]].concat());
    let url = node.url.clone();
    for name in ["alice", "bob"] {
        let out = veil(clone, &url, &["wallet", "--wallet", name, "new"]);
        assert!(out.status.success(), "{out:?}");
    }
    let address = |name| {
        let out = veil(clone, &url, &["wallet", "--wallet", name, "address"]);
        text(&out.stdout).trim().to_owned()
    };
    let (alice, bob) = (address("alice"), address("bob"));

    let wait = ["--wait", "--timeout", "2"];
    // Two notes for alice, one for the payment and one for the withdrawal: 50000 ...
    let out = veil(
        clone,
        &url,
        &["deposit", "--to", &alice, "--amount", "50000"],
    );
    assert!(out.status.success(), "{out:?}");
    // ... and 100000, waited for long enough for its batch to be sealed on a loaded machine
    // (the seal is 300 ms away), never proven.
    let deposit = [
        &["deposit", "--to", &alice, "--amount", "100000"][..],
        &["--wait", "--timeout", "10"],
    ]
    .concat();
    let out = veil(clone, &url, &deposit);
    one_error_line(&out, "not proven yet");
    assert!(
        text(&out.stderr).contains("is still batched"),
        "sealed, never proven: {out:?}"
    );

    // The deposits' notes are published once their batches are sealed: alice can spend them.
    let out = veil(clone, &url, &["wallet", "--wallet", "alice", "sync"]);
    assert!(out.status.success(), "{out:?}");
    assert_eq!(spendable(&text(&out.stdout)), Some(150_000), "{out:?}");
    let send = [
        &["wallet", "--wallet", "alice", "send", "--to", &bob][..],
        &["--amount", "30000", "--fee", "100"],
        &wait,
    ]
    .concat();
    one_error_line(&veil(clone, &url, &send), "not proven yet");
    let withdraw = [
        &["wallet", "--wallet", "alice", "withdraw"][..],
        &["--to", "bcrt1qw508d6qejxtdg4y5r3zarvary0c5xw7kygt080"],
        &["--amount", "20000", "--fee", "500"],
        &wait,
    ]
    .concat();
    one_error_line(&veil(clone, &url, &withdraw), "not proven yet");

    // Without a node, a wait fails at once, in one line too. (Not alice's `send`: her notes are
    // reserved by the two pending transfers above, so it fails in the wallet before any request.)
    drop(node);
    one_error_line(&veil(clone, &url, &deposit), &url);
}

#[test]
fn the_quick_start_lines_are_checked_for_the_binary_and_balances() {
    assert!(calls_only_the_release_binary(
        "./target/release/veil deposit --to \"$(./target/release/veil wallet address)\" # veil"
    ));
    for line in [
        "veil wallet new",
        "cargo run --release -- wallet new",
        "./target/release/veil deposit --to \"$(veil wallet address)\"",
        "./target/debug/veil wallet new",
    ] {
        assert!(!calls_only_the_release_binary(line), "{line}");
    }
    assert_eq!(spendable("synced: spendable 9500 sat"), Some(9500));
    assert_eq!(
        spendable("# bob's balance: spendable 30000 sat"),
        Some(30000)
    );
    assert_eq!(spendable("spendable soon"), None);
    assert_eq!(spendable("spendable 12 notes"), None);
    assert_eq!(
        wallet_name("./target/release/veil wallet --wallet bob sync"),
        Some("bob")
    );
    assert_eq!(wallet_name("./target/release/veil verify --all"), None);
}

#[test]
fn the_quick_start_block_is_found_between_its_markers_only() {
    let ok = format!(
        "intro\n{BEGIN}\n```sh\n# a comment\n./veil a   # trailing comment\n\n./veil b\n```\n{END}\nmore"
    );
    assert_eq!(
        quickstart_commands(&ok).unwrap(),
        ["./veil a   # trailing comment", "./veil b"]
    );
    for (readme, why) in [
        ("```sh\n./veil a\n```".to_owned(), "no marker"),
        (format!("{BEGIN}\n```sh\n./veil a\n```\n"), "no end marker"),
        (
            format!("{BEGIN}\n```\n./veil a\n```\n{END}"),
            "not a sh fence",
        ),
        (
            format!("{BEGIN}\n```sh\n./veil a \\\n  --b\n```\n{END}"),
            "continuation",
        ),
        (format!("{BEGIN}\n```sh\n# only\n```\n{END}"), "empty"),
        (
            format!("{BEGIN}\n```sh\n./veil a\n```\n./veil b\n{END}"),
            "after the fence",
        ),
    ] {
        assert!(quickstart_commands(&readme).is_err(), "{why}: {readme}");
    }
}
