//! The batch explorer at `/`: its JSON endpoints (`GET /v1/batches`, `GET /v1/vk`) and their
//! refusals, its assets, and the page itself in headless Chromium on a node with two proven
//! batches: the state heights, the batch rows, "proof verified in your browser" for each proven
//! batch, and the batch panel. A small harness page then feeds the same wasm verifier a
//! tampered proof and tampered public data, which it must reject. A screenshot of the page is
//! written to `target/explorer/explorer.png` on every browser run (its path is printed).
//!
//! Without Chromium (`chromium`, `chromium-browser`, `google-chrome`, or `VEIL_CHROMIUM`), the
//! browser part is skipped with a notice, unless `VEIL_REQUIRE_CHROMIUM=1`, which fails it.

mod common;

use std::fs::File;
use std::path::{Path, PathBuf};
use std::process::{Command, Output, Stdio};
use std::sync::atomic::{AtomicUsize, Ordering};
use std::time::{Duration, Instant};

use common::{config, keys, shape, Api};
use serde_json::{json, Value};
use veil_fixtures::Scenario;
use veil_prover::keys as key_files;

const LONG: Duration = Duration::from_secs(300);
/// One Chromium run (a loaded CI machine can take a while to start a browser).
const CHROME_TIMEOUT: Duration = Duration::from_secs(120);

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn explorer_serves_batches_and_verifies_proofs_in_chromium() {
    let (pk, vk) = tokio::task::spawn_blocking(keys).await.unwrap();
    let dir = tempfile::tempdir().unwrap();
    let running = veil_sequencer::start(&config(dir.path(), 100), Some(pk.clone()))
        .await
        .unwrap();
    let api = Api::new(running.addr);

    // Two proven batches: a deposit, then a payment.
    let mut sc = Scenario::new(shape(), 7);
    let alice = sc.new_key();
    let bob = sc.new_key();
    let d = sc.deposit(&alice, 5000);
    let id_d = api.deposit(&d).await;
    api.wait_status(&id_d, &["proven"], LONG).await;
    sc.apply(std::slice::from_ref(&d)).unwrap();
    let t = sc.pay(&alice, &bob, 1200, 0, 25);
    let id_t = api.submit(&t).await;
    let v = api.wait_status(&id_t, &["proven"], LONG).await;
    assert_eq!(v["batch"], 1);

    check_batch_list(&api).await;
    let vk_file = check_vk(&api, vk).await;
    let wasm = check_assets(&api).await;

    match chromium() {
        Some(chrome) => {
            let base = format!("http://{}", running.addr);
            let scratch = tempfile::tempdir().unwrap();
            check_page(&chrome, &base, scratch.path(), wasm.is_some(), &id_t);
            if let Some(wasm) = wasm {
                let (_, batch) = api.get("/v1/batches/1").await;
                check_tampering(&chrome, scratch.path(), &wasm, &vk_file, &batch);
            }
        }
        None => {
            assert!(
                std::env::var("VEIL_REQUIRE_CHROMIUM").as_deref() != Ok("1"),
                "VEIL_REQUIRE_CHROMIUM=1 but no chromium found (apt-get install chromium, or set VEIL_CHROMIUM)"
            );
            eprintln!("NOTICE: chromium not found: the explorer's browser checks are skipped");
        }
    }
    running.stop().await.unwrap();
}

/// `GET /v1/batches`: newest first, statuses, proving times, paging and its refusals.
async fn check_batch_list(api: &Api) {
    let (s, page) = api.get("/v1/batches").await;
    assert_eq!(s, 200, "{page}");
    assert_eq!(page["batch_height"], 2);
    assert_eq!(page["proven_height"], 2);
    assert_eq!(page["next_before"], Value::Null);
    let batches = page["batches"].as_array().unwrap();
    assert_eq!(batches.len(), 2);
    for (b, n) in batches.iter().zip([1, 0]) {
        assert_eq!(b["number"], n);
        assert_eq!(b["status"], "proven");
        assert_eq!(b["transfers"], 1);
        assert_eq!(b["anchor"], Value::Null);
        assert!(b["proving_seconds"].as_f64().unwrap() > 0.0, "{b}");
        assert!(
            b["proven_at_ms"].as_u64().unwrap() > 1_700_000_000_000,
            "{b}"
        );
    }
    assert_eq!(batches[0]["fees"], 25);
    assert_eq!(batches[1]["public_in"], 5000);
    let (_, b1) = api.get("/v1/batches/1").await;
    assert_eq!(
        batches[0]["new_state_root"],
        b1["public_inputs"]["new_state_root"]
    );

    let (s, page) = api.get("/v1/batches?limit=1").await;
    assert_eq!(s, 200);
    assert_eq!(page["batches"].as_array().unwrap().len(), 1);
    assert_eq!(page["batches"][0]["number"], 1);
    assert_eq!(page["next_before"], 1);
    let (s, page) = api.get("/v1/batches?limit=5&before=1").await;
    assert_eq!(s, 200);
    assert_eq!(page["batches"][0]["number"], 0);
    assert_eq!(page["batches"].as_array().unwrap().len(), 1);
    let (s, page) = api.get("/v1/batches?before=0").await;
    assert_eq!((s, page["batches"].as_array().unwrap().len()), (200, 0));

    for (query, code) in [
        ("limit=0", "limit_out_of_range"),
        ("limit=101", "limit_out_of_range"),
        ("limit=abc", "bad_query"),
        ("before=-1", "bad_query"),
        ("color=red", "bad_query"),
    ] {
        let (s, v) = api.get(&format!("/v1/batches?{query}")).await;
        assert_eq!(
            (s, v["error"]["code"].as_str()),
            (400, Some(code)),
            "{query}: {v}"
        );
    }
    let (s, v) = api.post("/v1/batches", &json!({}), None).await;
    assert_eq!(
        (s, v["error"]["code"].as_str()),
        (405, Some("method_not_allowed"))
    );
}

/// `GET /v1/vk` serves the key file whose SHA-256 is the key's identity. Returns its bytes.
async fn check_vk(api: &Api, vk: &ark_groth16::VerifyingKey<ark_bn254::Bn254>) -> Vec<u8> {
    let resp = api
        .client
        .get(format!("{}/v1/vk", api.base))
        .send()
        .await
        .unwrap();
    assert_eq!(resp.status(), 200);
    assert_eq!(
        resp.headers()["content-type"].to_str().unwrap(),
        "application/octet-stream"
    );
    let bytes = resp.bytes().await.unwrap().to_vec();
    let loaded = key_files::load_verifying_key_bytes(Path::new("/v1/vk"), &bytes, shape()).unwrap();
    assert_eq!(&loaded.vk, vk);
    let expected = tokio::task::spawn_blocking(|| key_files::shape_hash(shape()))
        .await
        .unwrap();
    assert_eq!(
        loaded.sha256,
        key_files::vk_sha256_of(vk, shape(), expected),
        "the served file is the canonical vk file"
    );
    let (s, v) = api.post("/v1/vk", &json!({}), None).await;
    assert_eq!(
        (s, v["error"]["code"].as_str()),
        (405, Some("method_not_allowed"))
    );
    bytes
}

/// The page and its assets. Returns the wasm verifier when this build embeds it.
async fn check_assets(api: &Api) -> Option<Vec<u8>> {
    let get = |path: &str| {
        let url = format!("{}{path}", api.base);
        let client = api.client.clone();
        async move { client.get(url).send().await.unwrap() }
    };
    let page = get("/").await;
    assert_eq!(page.status(), 200);
    let csp = page.headers()["content-security-policy"].to_str().unwrap();
    assert!(csp.contains("'wasm-unsafe-eval'"), "{csp}");
    assert!(page.text().await.unwrap().contains("Veil batch explorer"));
    for (asset, kind) in [
        ("app.js", "text/javascript"),
        ("verifier.js", "text/javascript"),
        ("style.css", "text/css"),
    ] {
        let r = get(&format!("/explorer/{asset}")).await;
        assert_eq!(r.status(), 200, "{asset}");
        assert!(r.headers()["content-type"]
            .to_str()
            .unwrap()
            .starts_with(kind));
    }
    let (s, v) = api.get("/explorer/../Cargo.toml").await;
    assert_eq!(s, 404, "{v}");
    let (s, v) = api.get("/explorer/missing.js").await;
    assert_eq!((s, v["error"]["code"].as_str()), (404, Some("not_found")));

    let wasm = get("/explorer/veil_verifier.wasm").await;
    let required = std::env::var("VEIL_REQUIRE_WASM").as_deref() == Ok("1");
    if wasm.status() == 404 {
        let v: Value = wasm.json().await.unwrap();
        assert_eq!(v["error"]["code"], "wasm_unavailable");
        assert!(
            !required,
            "VEIL_REQUIRE_WASM=1 but the node has no wasm verifier: {v}"
        );
        eprintln!("NOTICE: this build has no wasm verifier: {v}");
        return None;
    }
    assert_eq!(wasm.status(), 200);
    assert_eq!(
        wasm.headers()["content-type"].to_str().unwrap(),
        "application/wasm"
    );
    let bytes = wasm.bytes().await.unwrap().to_vec();
    assert_eq!(&bytes[..4], b"\0asm");
    Some(bytes)
}

/// The page in Chromium: heights, rows, one verdict per proven batch, the batch panel and the
/// transfer lookup; a screenshot at `target/explorer/explorer.png`.
fn check_page(chrome: &Path, base: &str, scratch: &Path, has_wasm: bool, transfer_id: &str) {
    let dom = dump_dom(chrome, scratch, &format!("{base}/"));
    assert!(
        dom.contains(r#"data-explorer-state="done""#),
        "the page did not finish loading:\n{dom}"
    );
    assert!(
        dom.contains(r#"<div class="value" id="state-batch-height">2</div>"#),
        "{dom}"
    );
    assert!(
        dom.contains(r#"<div class="value" id="state-proven-height">2</div>"#),
        "{dom}"
    );
    assert!(
        dom.contains(r#"<div class="value" id="state-anchored-height">0</div>"#),
        "{dom}"
    );
    for n in [0, 1] {
        let row = format!(r#"<tr class="batch-row" data-batch="{n}" data-status="proven">"#);
        let at = dom
            .find(&row)
            .unwrap_or_else(|| panic!("no row for batch {n}:\n{dom}"));
        let row = &dom[at..at + dom[at..].find("</tr>").unwrap()];
        if has_wasm {
            assert!(
                row.contains(
                    r#"<td class="verify" data-verified="true">✓ proof verified in your browser</td>"#
                ) || row.contains(r#"data-verified="true" title="#),
                "batch {n} is not verified in the browser: {row}"
            );
            assert!(row.contains("proof verified in your browser"), "{row}");
        } else {
            assert!(row.contains(r#"data-verified="unavailable""#), "{row}");
        }
    }
    assert_eq!(dom.matches(r#"class="batch-row""#).count(), 2);
    assert!(!dom.contains(r#"data-verified="false""#), "{dom}");
    if has_wasm {
        assert!(
            dom.contains(r#"id="verifier-status" data-state="ready""#),
            "{dom}"
        );
        assert!(
            dom.contains("2 of 2 shown proofs verified in your browser"),
            "{dom}"
        );
        let sha = dom
            .split(r#"id="vk-sha256-value""#)
            .nth(1)
            .and_then(|s| s.split('>').nth(1))
            .and_then(|s| s.split('<').next())
            .expect("the vk hash is shown");
        assert_eq!(sha.len(), 64, "{sha}");
    } else {
        assert!(dom.contains("In-browser verification unavailable"), "{dom}");
    }
    // Both charts are drawn as inline SVG with a bar per proven batch.
    assert!(
        dom.contains(r#"<div id="chart-tpm" class="chart-box"><svg"#),
        "{dom}"
    );
    assert!(
        dom.contains(r#"<div id="chart-proving" class="chart-box"><svg"#),
        "{dom}"
    );
    assert!(dom.matches(r#"class="bar alt""#).count() >= 2, "{dom}");

    let panel = dump_dom(chrome, scratch, &format!("{base}/#batch=1"));
    let verdict = if has_wasm { "true" } else { "unavailable" };
    assert!(
        panel.contains(&format!(r#"id="batch-verdict" data-verified="{verdict}""#)),
        "{panel}"
    );
    assert!(panel.contains(r#"<table id="batch-transfers">"#), "{panel}");
    let lookup = dump_dom(chrome, scratch, &format!("{base}/#transfer={transfer_id}"));
    assert!(lookup.contains(r#"id="transfer-status""#), "{lookup}");
    assert!(lookup.contains("proven"), "{lookup}");
    let missing = dump_dom(chrome, scratch, &format!("{base}/#batch=99"));
    assert!(missing.contains(r#"id="batch-error""#), "{missing}");
    assert!(missing.contains("no batch 99"), "{missing}");
    let unknown = "00".repeat(32);
    let missing = dump_dom(chrome, scratch, &format!("{base}/#transfer={unknown}"));
    assert!(missing.contains(r#"id="transfer-error""#), "{missing}");
    assert!(
        missing.contains(&format!("transfer_not_found: no transfer {unknown}")),
        "{missing}"
    );
    assert!(!missing.contains(r#"id="transfer-status""#), "{missing}");

    let shots = workspace_target().join("explorer");
    std::fs::create_dir_all(&shots).unwrap();
    let png = shots.join("explorer.png");
    let _ = std::fs::remove_file(&png);
    let mut cmd = chrome_command(chrome, scratch);
    cmd.arg("--virtual-time-budget=15000")
        .arg(format!("--screenshot={}", png.display()))
        .arg("--window-size=1280,1800")
        .arg(format!("{base}/"));
    let out = run(cmd, scratch, "the screenshot");
    assert!(
        png.exists(),
        "no screenshot: {}",
        String::from_utf8_lossy(&out.stderr)
    );
    eprintln!("explorer screenshot: {}", png.display());
}

/// The wasm verifier rejects a flipped proof byte and altered public data, and accepts the
/// original, in Chromium, through `verifier.js` (a harness page from a file:// URL).
fn check_tampering(chrome: &Path, scratch: &Path, wasm: &[u8], vk: &[u8], batch: &Value) {
    let mut flipped = batch.clone();
    let mut proof = hex::decode(batch["proof"].as_str().unwrap()).unwrap();
    proof[70] ^= 0x01;
    flipped["proof"] = json!(hex::encode(proof));
    let mut fee = batch.clone();
    fee["public_data"][0]["fee"] = json!(batch["public_data"][0]["fee"].as_u64().unwrap() + 1);
    let mut vk_bad = vk.to_vec();
    let last = vk_bad.len() - 1;
    vk_bad[last] ^= 0x01;
    let cases = json!([
        {"name": "original", "batch": batch.to_string(), "vk": hex::encode(vk)},
        {"name": "flipped_proof", "batch": flipped.to_string(), "vk": hex::encode(vk)},
        {"name": "altered_fee", "batch": fee.to_string(), "vk": hex::encode(vk)},
        {"name": "altered_vk", "batch": batch.to_string(), "vk": hex::encode(&vk_bad)},
        {"name": "truncated_vk", "batch": batch.to_string(), "vk": hex::encode(&vk[..last])},
    ]);
    let verifier_js = include_str!("../assets/verifier.js");
    let html = format!(
        r#"<!doctype html><html><body><pre id="results">running</pre>
<script>{verifier_js}</script>
<script>
const hex = (h) => new Uint8Array(h.match(/../g).map((b) => parseInt(b, 16)));
const cases = {cases};
VeilVerifier.load(hex("{wasm}")).then((v) => {{
  const out = {{}};
  for (const c of cases) {{
    const r = v.verify(hex(c.vk), c.batch);
    out[c.name] = {{code: r.code, verified: r.report.verified, error: r.report.error || null}};
  }}
  document.getElementById("results").textContent = JSON.stringify(out);
}}).catch((e) => {{ document.getElementById("results").textContent = "failed: " + e; }});
</script></body></html>"#,
        wasm = hex::encode(wasm),
    );
    let page = scratch.join("tamper.html");
    std::fs::write(&page, html).unwrap();
    let dom = dump_dom(chrome, scratch, &format!("file://{}", page.display()));
    let text = dom
        .split(r#"<pre id="results">"#)
        .nth(1)
        .and_then(|s| s.split("</pre>").next())
        .expect("results")
        .replace("&quot;", "\"");
    let results: Value =
        serde_json::from_str(&text).unwrap_or_else(|e| panic!("{e}: harness said {text}"));
    assert_eq!(results["original"]["code"], 1, "{results}");
    assert_eq!(results["original"]["verified"], true);
    for case in ["flipped_proof", "altered_fee"] {
        assert_eq!(results[case]["code"], 0, "{case}: {results}");
        assert_eq!(results[case]["verified"], false);
    }
    // Another key (the last point's x changed): it either no longer decodes (an error) or is a
    // valid but different key the proof does not verify against; never a pass.
    assert_ne!(results["altered_vk"]["code"], 1, "{results}");
    assert_eq!(results["altered_vk"]["verified"], false);
    // A key file cut short cannot check anything: an error, not a verdict.
    assert_eq!(results["truncated_vk"]["code"], -1, "{results}");
    assert!(results["truncated_vk"]["error"].is_string(), "{results}");
}

/// Headless Chromium's serialised DOM of `url` after its scripts ran.
fn dump_dom(chrome: &Path, scratch: &Path, url: &str) -> String {
    let start = Instant::now();
    let mut cmd = chrome_command(chrome, scratch);
    cmd.arg("--virtual-time-budget=15000")
        .arg("--dump-dom")
        .arg(url);
    let out = run(cmd, scratch, url);
    let dom = String::from_utf8_lossy(&out.stdout).into_owned();
    assert!(
        out.status.success() && !dom.is_empty(),
        "chromium failed on {url} ({:?}): {}",
        out.status,
        String::from_utf8_lossy(&out.stderr)
    );
    eprintln!("chromium: {url} in {:.1} s", start.elapsed().as_secs_f64());
    dom
}

fn chrome_command(chrome: &Path, scratch: &Path) -> Command {
    let mut cmd = Command::new(chrome);
    cmd.args([
        "--headless",
        "--no-sandbox",
        "--disable-gpu",
        "--disable-quic",
        "--no-first-run",
        "--disable-background-networking",
        "--disable-component-update",
        "--disable-sync",
        "--disable-dev-shm-usage",
        "--hide-scrollbars",
    ])
    .arg(format!(
        "--user-data-dir={}",
        scratch.join("profile").display()
    ))
    .stdin(Stdio::null());
    cmd
}

/// Runs Chromium to completion, killed (and the test failed) past [`CHROME_TIMEOUT`]. Its
/// output goes through files in `scratch`, not pipes: a helper process Chromium leaves behind
/// could hold a pipe open and stall the reader.
fn run(mut cmd: Command, scratch: &Path, what: &str) -> Output {
    static RUNS: AtomicUsize = AtomicUsize::new(0);
    let n = RUNS.fetch_add(1, Ordering::Relaxed);
    let (out_path, err_path) = (
        scratch.join(format!("chromium-{n}.out")),
        scratch.join(format!("chromium-{n}.err")),
    );
    let mut child = cmd
        .stdout(File::create(&out_path).unwrap())
        .stderr(File::create(&err_path).unwrap())
        .spawn()
        .unwrap_or_else(|e| panic!("chromium does not start: {e}"));
    let deadline = Instant::now() + CHROME_TIMEOUT;
    let status = loop {
        if let Some(status) = child.try_wait().expect("chromium's status") {
            break status;
        }
        if Instant::now() > deadline {
            let _ = child.kill();
            let _ = child.wait();
            panic!("chromium did not finish {what} within {CHROME_TIMEOUT:?}");
        }
        std::thread::sleep(Duration::from_millis(100));
    };
    Output {
        status,
        stdout: std::fs::read(&out_path).unwrap(),
        stderr: std::fs::read(&err_path).unwrap(),
    }
}

/// `VEIL_CHROMIUM`, else the first of the usual Chromium binaries on `PATH`.
fn chromium() -> Option<PathBuf> {
    if let Some(p) = std::env::var_os("VEIL_CHROMIUM") {
        return Some(PathBuf::from(p));
    }
    let path = std::env::var_os("PATH")?;
    [
        "chromium",
        "chromium-browser",
        "google-chrome",
        "google-chrome-stable",
    ]
    .iter()
    .flat_map(|name| std::env::split_paths(&path).map(move |dir| dir.join(name)))
    .find(|p| p.is_file())
}

/// The workspace's `target/` (the screenshot goes there).
fn workspace_target() -> PathBuf {
    // CARGO_TARGET_TMPDIR is `<target>/tmp`.
    Path::new(env!("CARGO_TARGET_TMPDIR"))
        .parent()
        .expect("target/tmp has a parent")
        .to_owned()
}
