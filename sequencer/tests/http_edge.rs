//! The HTTP edge over real TCP with raw sockets: every refusal of the HTTP layer carries the
//! JSON error shape and leaves `GET /v1/state` as it was; cut-short bodies are 400 and logged at
//! most once per window, never at ERROR; slow clients are cut off by the header and body
//! timeouts (a body cut short after `100 Continue` is the API's 400); the connection cap
//! answers 503; keep-alive connections serve many requests, each
//! head checked; 405 carries `Allow`; a short operator token stops the node from starting.

mod common;

use std::io::Write;
use std::net::SocketAddr;
use std::sync::{Arc, Mutex, OnceLock};
use std::time::{Duration, Instant};

use common::{config, get_request, raw_request, Api, RawConnection, RawResponse};
use tokio::io::{AsyncReadExt, AsyncWriteExt};
use tokio::net::TcpStream;
use veil_sequencer::config::HttpConfig;
use veil_sequencer::RunningNode;

/// Everything logged at WARN and above by this test binary (all its tests share the process).
fn captured_logs() -> &'static Arc<Mutex<Vec<u8>>> {
    static LOGS: OnceLock<Arc<Mutex<Vec<u8>>>> = OnceLock::new();
    LOGS.get_or_init(|| {
        struct Sink(Arc<Mutex<Vec<u8>>>);
        impl Write for Sink {
            fn write(&mut self, buf: &[u8]) -> std::io::Result<usize> {
                self.0.lock().unwrap().extend_from_slice(buf);
                Ok(buf.len())
            }
            fn flush(&mut self) -> std::io::Result<()> {
                Ok(())
            }
        }
        let logs = Arc::new(Mutex::new(Vec::new()));
        let sink = logs.clone();
        tracing_subscriber::fmt()
            .with_max_level(tracing::Level::WARN)
            .with_ansi(false)
            .with_writer(move || Sink(sink.clone()))
            .init();
        logs
    })
}

fn log_lines() -> Vec<String> {
    String::from_utf8_lossy(&captured_logs().lock().unwrap())
        .lines()
        .map(str::to_owned)
        .collect()
}

async fn start(http: HttpConfig) -> (tempfile::TempDir, RunningNode) {
    captured_logs();
    let dir = tempfile::tempdir().unwrap();
    let mut c = config(dir.path(), 600_000);
    c.http = http;
    let running = veil_sequencer::start(&c, None).await.unwrap();
    (dir, running)
}

fn assert_error(label: &str, r: &RawResponse, status: u16, code: &str) {
    assert_eq!(r.status, status, "{label}: {r:?}");
    assert_eq!(r.code(), code, "{label}: {r:?}");
    assert!(
        r.body["error"]["message"]
            .as_str()
            .is_some_and(|m| !m.is_empty()),
        "{label}: {r:?}"
    );
    assert_eq!(
        r.header("content-type"),
        Some("application/json"),
        "{label}: {r:?}"
    );
}

fn with_url_of(len: usize) -> Vec<u8> {
    format!(
        "GET /v1/state?pad={} HTTP/1.1\r\nHost: veil\r\n\r\n",
        "a".repeat(len)
    )
    .into_bytes()
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn malformed_requests_get_json_errors_and_change_nothing() {
    let (_dir, running) = start(HttpConfig::default()).await;
    let addr = running.addr;
    let api = Api::new(addr);
    let (s, state) = api.get("/v1/state").await;
    assert_eq!(s, 200);

    let many_headers = {
        let mut r = b"GET /v1/state HTTP/1.1\r\n".to_vec();
        for i in 0..65 {
            r.extend_from_slice(format!("X-H{i}: v\r\n").as_bytes());
        }
        r.extend_from_slice(b"\r\n");
        r
    };
    let big_header = format!(
        "GET /v1/state HTTP/1.1\r\nX-Big: {}\r\n\r\n",
        "b".repeat(20_000)
    );
    let post = |headers: &str, body: &str| {
        format!("POST /v1/transfers HTTP/1.1\r\nHost: veil\r\n{headers}\r\n{body}").into_bytes()
    };
    // (label, request, half-close after it, status, code)
    let cases: Vec<(&str, Vec<u8>, bool, u16, &str)> = vec![
        (
            "NUL byte in Authorization",
            b"POST /v1/deposits HTTP/1.1\r\nAuthorization: Bearer ab\0cd\r\nContent-Length: 2\r\n\r\n{}"
                .to_vec(),
            false,
            400,
            "bad_header",
        ),
        (
            "control byte in a header value",
            b"GET /v1/state HTTP/1.1\r\nX-Note: a\x01b\r\n\r\n".to_vec(),
            false,
            400,
            "bad_header",
        ),
        (
            "space in a header name",
            b"GET /v1/state HTTP/1.1\r\nBad Name: x\r\n\r\n".to_vec(),
            false,
            400,
            "bad_header",
        ),
        ("100 KB URL", with_url_of(100_000), false, 414, "uri_too_long"),
        ("1 MB URL", with_url_of(1_000_000), false, 414, "uri_too_long"),
        (
            "20 KB header",
            big_header.into_bytes(),
            false,
            431,
            "headers_too_large",
        ),
        ("65 headers", many_headers, false, 431, "too_many_headers"),
        (
            "Content-Length: -1",
            post("Content-Length: -1\r\n", "{}"),
            false,
            400,
            "bad_content_length",
        ),
        (
            "two different Content-Length headers",
            post("Content-Length: 2\r\nContent-Length: 3\r\n", "{}"),
            false,
            400,
            "bad_content_length",
        ),
        (
            "two equal Content-Length headers",
            post("Content-Length: 2\r\nContent-Length: 2\r\n", "{}"),
            false,
            400,
            "bad_content_length",
        ),
        (
            "Content-Length not a number",
            post("Content-Length: two\r\n", "{}"),
            false,
            400,
            "bad_content_length",
        ),
        (
            "Content-Length with a sign",
            post("Content-Length: +2\r\n", "{}"),
            false,
            400,
            "bad_content_length",
        ),
        (
            "Content-Length and Transfer-Encoding",
            post(
                "Content-Length: 2\r\nTransfer-Encoding: chunked\r\n",
                "2\r\n{}\r\n0\r\n\r\n",
            ),
            false,
            400,
            "bad_transfer_encoding",
        ),
        (
            "chunked body",
            post("Transfer-Encoding: chunked\r\n", "2\r\n{}\r\n0\r\n\r\n"),
            false,
            411,
            "length_required",
        ),
        (
            "Content-Length over the body limit",
            post("Content-Length: 70000\r\n", ""),
            false,
            413,
            "body_too_large",
        ),
        (
            "TLS ClientHello",
            b"\x16\x03\x01\x02\x00\x01\x00\x01\xfc\x03\x03\x8a\x11".to_vec(),
            false,
            400,
            "malformed_request",
        ),
        (
            "text that is not HTTP",
            b"hello there\r\n\r\n".to_vec(),
            false,
            400,
            "malformed_request",
        ),
        (
            "HTTP/2 preface",
            b"PRI * HTTP/2.0\r\n\r\nSM\r\n\r\n".to_vec(),
            false,
            400,
            "unsupported_http_version",
        ),
        (
            "URI hyper refuses",
            b"GET /v1/<state> HTTP/1.1\r\n\r\n".to_vec(),
            false,
            400,
            "bad_uri",
        ),
        (
            "head cut short",
            b"GET /v1/state HTTP/1.1\r\nHost: ve".to_vec(),
            true,
            400,
            "incomplete_head",
        ),
        (
            "body shorter than its Content-Length",
            post("Content-Length: 100\r\nContent-Type: application/json\r\n", "{\"a\":"),
            true,
            400,
            "incomplete_body",
        ),
    ];
    assert_eq!(cases.len(), 21);
    for (label, request, half_close, status, code) in cases {
        let r = raw_request(addr, request, half_close)
            .await
            .unwrap_or_else(|| panic!("{label}: no response"));
        assert_error(label, &r, status, code);
        let (_, now) = api.get("/v1/state").await;
        assert_eq!(now, state, "{label} changed the state");
    }
    running.stop().await.unwrap();
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn cut_short_bodies_are_400_and_logged_at_most_once_per_window() {
    let (_dir, running) = start(HttpConfig::default()).await;
    let addr = running.addr;
    let request =
        b"POST /v1/transfers HTTP/1.1\r\nContent-Length: 500\r\n\r\n{\"nullifiers\":".to_vec();
    for i in 0..20 {
        let r = raw_request(addr, request.clone(), true)
            .await
            .unwrap_or_else(|| panic!("request {i}: no response"));
        assert_error("cut-short body", &r, 400, "incomplete_body");
    }
    let local = format!("local={addr}");
    let lines = log_lines();
    let warned: Vec<_> = lines
        .iter()
        .filter(|l| l.contains(&local) && l.contains("incomplete_body"))
        .collect();
    // 20 events inside one 10 s window (two if the loop straddled a window boundary).
    assert!(
        (1..=2).contains(&warned.len()),
        "expected one rate-limited line, got {warned:#?}"
    );
    assert!(warned.iter().all(|l| l.contains(" WARN ")), "{warned:#?}");
    let errors: Vec<_> = lines.iter().filter(|l| l.contains("ERROR")).collect();
    assert!(errors.is_empty(), "ERROR lines: {errors:#?}");
    running.stop().await.unwrap();
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_body_cut_short_after_100_continue_is_400_json() {
    let (_dir, running) = start(HttpConfig::default()).await;
    let mut c = RawConnection::open(running.addr).await;
    c.send(b"POST /v1/transfers HTTP/1.1\r\nExpect: 100-continue\r\nContent-Length: 100\r\n\r\n")
        .await;
    // hyper has answered `100 Continue`, so the API (not the edge) renders the failed read.
    assert_eq!(c.response().await.unwrap().status, 100);
    c.send(b"{\"nullifiers\":").await;
    c.stream.shutdown().await.unwrap();
    let r = c.response().await.expect("a final response");
    assert_error("cut short after 100 Continue", &r, 400, "incomplete_body");
    assert!(c.response().await.is_none());
    running.stop().await.unwrap();
}

/// Opens a connection, writes `prefix`, then one byte every 100 ms until the server closes;
/// returns how long the connection lived and what the server sent.
async fn trickle(addr: SocketAddr, prefix: &'static [u8]) -> (Duration, Vec<u8>) {
    let start = Instant::now();
    let (mut rd, mut wr) = TcpStream::connect(addr).await.unwrap().into_split();
    let writer = tokio::spawn(async move {
        if wr.write_all(prefix).await.is_err() {
            return;
        }
        loop {
            tokio::time::sleep(Duration::from_millis(100)).await;
            if wr.write_all(b"a").await.is_err() {
                return;
            }
        }
    });
    let mut got = Vec::new();
    let _ = tokio::time::timeout(Duration::from_secs(60), rd.read_to_end(&mut got)).await;
    let lived = start.elapsed();
    writer.abort();
    (lived, got)
}

fn error_code_in(bytes: &[u8]) -> (u16, String) {
    let text = String::from_utf8_lossy(bytes);
    let status = text
        .strip_prefix("HTTP/1.1 ")
        .and_then(|t| t.get(..3))
        .and_then(|s| s.parse().ok())
        .unwrap_or(0);
    let body = text.split_once("\r\n\r\n").map_or("", |(_, b)| b);
    let v: serde_json::Value = serde_json::from_str(body).unwrap_or_default();
    (status, v["error"]["code"].as_str().unwrap_or("").to_owned())
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn slow_clients_are_cut_off_by_the_timeouts() {
    let (_dir, running) = start(HttpConfig {
        header_timeout_ms: 1000,
        body_timeout_ms: 1000,
        ..HttpConfig::default()
    })
    .await;
    let addr = running.addr;
    // Each connection must be gone well before it could have trickled a whole request: 1 s of
    // timeout, 1 s of lingering at most, and slack for a loaded machine.
    let bound = Duration::from_secs(8);
    let mut clients = Vec::new();
    for _ in 0..10 {
        clients.push((
            "head",
            tokio::spawn(trickle(addr, b"GET /v1/state HTTP/1.1\r\nX-Slow: ")),
        ));
        clients.push((
            "body",
            tokio::spawn(trickle(
                addr,
                b"POST /v1/transfers HTTP/1.1\r\nContent-Length: 10000\r\n\r\n{",
            )),
        ));
    }
    for (kind, client) in clients {
        let (lived, got) = client.await.unwrap();
        assert!(lived < bound, "{kind} trickler lived {lived:?}");
        let want = if kind == "head" {
            "header_timeout"
        } else {
            "body_timeout"
        };
        assert_eq!(
            error_code_in(&got),
            (408, want.to_owned()),
            "{kind}: {}",
            String::from_utf8_lossy(&got)
        );
    }
    // A connection that never sends a byte is closed silently.
    let start = Instant::now();
    let mut silent = TcpStream::connect(addr).await.unwrap();
    let mut got = Vec::new();
    tokio::time::timeout(Duration::from_secs(60), silent.read_to_end(&mut got))
        .await
        .unwrap()
        .unwrap();
    assert!(start.elapsed() < bound);
    assert!(got.is_empty());
    // The node still serves.
    let (s, _) = Api::new(addr).get("/v1/state").await;
    assert_eq!(s, 200);
    running.stop().await.unwrap();
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn connections_past_the_cap_get_503_json() {
    let (_dir, running) = start(HttpConfig {
        max_connections: 3,
        header_timeout_ms: 60_000,
        ..HttpConfig::default()
    })
    .await;
    let addr = running.addr;
    // Three connections, each served once (so each holds its place), kept open.
    let mut held = Vec::new();
    for _ in 0..3 {
        let mut c = RawConnection::open(addr).await;
        let r = c.request(&get_request("/healthz")).await;
        assert_eq!(r.status, 200);
        held.push(c);
    }
    let over = raw_request(addr, get_request("/healthz"), false)
        .await
        .expect("a 503");
    assert_error("fourth connection", &over, 503, "too_many_connections");
    // The held connections still work.
    let r = held[0].request(&get_request("/v1/state")).await;
    assert_eq!(r.status, 200);
    // Once one closes, its place is free again (the node notices the close asynchronously).
    drop(held.pop());
    let deadline = Instant::now() + Duration::from_secs(30);
    loop {
        let r = raw_request(addr, get_request("/healthz"), false)
            .await
            .expect("a response");
        if r.status == 200 {
            break;
        }
        assert_error("while a place frees up", &r, 503, "too_many_connections");
        assert!(Instant::now() < deadline, "no place freed up");
        tokio::time::sleep(Duration::from_millis(20)).await;
    }
    drop(held);
    running.stop().await.unwrap();
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn keep_alive_serves_many_requests_and_checks_every_head() {
    let (_dir, running) = start(HttpConfig::default()).await;
    let addr = running.addr;
    let mut c = RawConnection::open(addr).await;
    let (_, state) = Api::new(addr).get("/v1/state").await;
    for _ in 0..5 {
        let r = c.request(&get_request("/v1/state")).await;
        assert_eq!(r.status, 200);
        assert_eq!(r.body, state);
        assert_eq!(r.header("connection"), None);
    }
    // Requests with bodies, answered by the handler, on the same connection.
    let bad_body = b"POST /v1/transfers HTTP/1.1\r\nContent-Length: 2\r\n\r\n[]";
    let r = c.request(bad_body).await;
    assert_error("array body", &r, 400, "invalid_body");
    // A body the handler does not read (401 before it) is skipped to reach the next request.
    let deposit = b"POST /v1/deposits HTTP/1.1\r\nContent-Length: 4\r\n\r\n{\"a\"";
    let r = c.request(deposit).await;
    assert_error("deposit without token", &r, 401, "unauthorized");
    let r = c.request(&get_request("/healthz")).await;
    assert_eq!(r.status, 200);
    // Also when the body comes only after the answer.
    let r = c
        .request(b"POST /v1/deposits HTTP/1.1\r\nContent-Length: 4\r\n\r\n")
        .await;
    assert_error(
        "deposit without token, body not sent yet",
        &r,
        401,
        "unauthorized",
    );
    assert_eq!(r.header("connection"), None);
    let mut late_body = b"{\"a\"".to_vec();
    late_body.extend_from_slice(&get_request("/healthz"));
    let r = c.request(&late_body).await;
    assert_eq!(r.status, 200);
    // Two pipelined requests in one write, and one head split over two writes.
    let mut two = get_request("/healthz");
    two.extend_from_slice(&get_request("/v1/notes?limit=1001"));
    c.send(&two).await;
    assert_eq!(c.response().await.unwrap().status, 200);
    assert_error(
        "limit above the page size",
        &c.response().await.unwrap(),
        400,
        "limit_out_of_range",
    );
    c.send(b"GET /v1/notes?limit=1000 HT").await;
    let r = c.request(b"TP/1.1\r\n\r\n").await;
    assert_eq!(r.status, 200);
    // The head after those goes through the same checks: refused, then the connection ends.
    let r = c
        .request(b"GET /v1/state HTTP/1.1\r\nAuthorization: a\0b\r\n\r\n")
        .await;
    assert_error(
        "bad header on a kept-alive connection",
        &r,
        400,
        "bad_header",
    );
    assert!(
        c.response().await.is_none(),
        "connection closed after a refusal"
    );
    // `Connection: close` is honoured.
    let mut c = RawConnection::open(addr).await;
    let r = c
        .request(b"GET /healthz HTTP/1.1\r\nConnection: close\r\n\r\n")
        .await;
    assert_eq!(r.status, 200);
    assert!(c.response().await.is_none());
    let (_, now) = Api::new(addr).get("/v1/state").await;
    assert_eq!(now, state);
    running.stop().await.unwrap();
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn method_not_allowed_names_the_allowed_methods() {
    let (_dir, running) = start(HttpConfig::default()).await;
    let mut c = RawConnection::open(running.addr).await;
    for (method, path, allow) in [
        ("POST", "/v1/state", "GET"),
        ("DELETE", "/v1/transfers", "POST"),
        ("GET", "/v1/deposits", "POST"),
        ("GET", "/v1/anchor", "POST"),
        ("PUT", "/v1/batches/1", "GET"),
        ("POST", "/v1/notes/3/path", "GET"),
        ("PATCH", "/v1/transfers/abc", "GET"),
        ("POST", "/healthz", "GET"),
    ] {
        let r = c
            .request(format!("{method} {path} HTTP/1.1\r\nContent-Length: 0\r\n\r\n").as_bytes())
            .await;
        let label = format!("{method} {path}");
        assert_error(&label, &r, 405, "method_not_allowed");
        assert_eq!(r.header("allow"), Some(allow), "{label}");
    }
    // Other refusals of a known route are not turned into 405s.
    let r = c.request(&get_request("/v1/notes?from=x")).await;
    assert_error("bad query", &r, 400, "bad_query");
    let r = c.request(&get_request("/v1/nope")).await;
    assert_error("unknown route", &r, 404, "not_found");
    running.stop().await.unwrap();
}

#[tokio::test]
async fn a_short_operator_token_stops_the_node_from_starting() {
    for token in ["", "fifteen-bytes-x"] {
        let dir = tempfile::tempdir().unwrap();
        let mut c = config(dir.path(), 1000);
        c.operator_token = Some(token.to_owned());
        let err = match veil_sequencer::start(&c, None).await {
            Ok(_) => panic!("started with a {}-byte token", token.len()),
            Err(e) => e.to_string(),
        };
        assert!(err.contains("operator_token"), "{err}");
    }
}
