//! Shared helpers of the sequencer's integration tests: the small test shape, dev keys generated
//! once per test binary, node configs on port 0, a small JSON HTTP client, and raw-socket
//! HTTP/1.1 helpers for what a well-behaved client cannot send.
#![allow(dead_code)]

use std::path::Path;
use std::sync::OnceLock;
use std::time::{Duration, Instant};

use ark_bn254::Bn254;
use ark_groth16::{ProvingKey, VerifyingKey};
use serde_json::Value;
use tokio::io::{AsyncRead, AsyncReadExt, AsyncWriteExt};
use tokio::net::TcpStream;
use veil_circuits::batch::BatchShape;
use veil_circuits::Transfer;
use veil_sequencer::{Config, TransferRequest};

/// Operator token of the test configs.
pub const TOKEN: &str = "test-operator-token";

/// B = 2, D = 8.
pub fn shape() -> BatchShape {
    BatchShape::new(2, 8).unwrap()
}

/// Dev keys for [`shape`], cached under the target tmp dir and loaded once per binary.
pub fn keys() -> &'static (ProvingKey<Bn254>, VerifyingKey<Bn254>) {
    static KEYS: OnceLock<(ProvingKey<Bn254>, VerifyingKey<Bn254>)> = OnceLock::new();
    KEYS.get_or_init(|| {
        veil_prover::load_or_setup_dev_keys(Path::new(env!("CARGO_TARGET_TMPDIR")), shape(), 1)
            .expect("dev keys")
    })
}

/// A config for `dir` on 127.0.0.1:0.
pub fn config(dir: &Path, max_wait_ms: u64) -> Config {
    Config {
        listen: "127.0.0.1:0".parse().unwrap(),
        data_dir: dir.to_owned(),
        batch_size: 2,
        depth: 8,
        max_wait_ms,
        operator_token: Some(TOKEN.to_owned()),
        ..Config::default()
    }
}

/// The JSON body of a transfer.
pub fn body(t: &Transfer) -> Value {
    serde_json::to_value(TransferRequest::from(t)).unwrap()
}

/// A JSON client of one node.
pub struct Api {
    pub base: String,
    pub client: reqwest::Client,
}

impl Api {
    /// No keep-alive reuse: some tests send requests the server answers without reading the
    /// body (401, 413), after which it closes the connection; a pooled client could race that
    /// close with its next request (`IncompleteMessage`).
    pub fn new(addr: std::net::SocketAddr) -> Self {
        Api {
            base: format!("http://{addr}"),
            client: reqwest::Client::builder()
                .pool_max_idle_per_host(0)
                .build()
                .unwrap(),
        }
    }

    async fn finish(resp: reqwest::Response) -> (u16, Value) {
        let status = resp.status().as_u16();
        let text = resp.text().await.unwrap();
        let v = serde_json::from_str(&text).unwrap_or(Value::String(text));
        (status, v)
    }

    pub async fn get(&self, path: &str) -> (u16, Value) {
        let resp = self
            .client
            .get(format!("{}{path}", self.base))
            .send()
            .await
            .unwrap();
        Self::finish(resp).await
    }

    /// POSTs raw bytes as JSON, with an optional bearer token.
    pub async fn post_raw(&self, path: &str, body: Vec<u8>, token: Option<&str>) -> (u16, Value) {
        let mut req = self
            .client
            .post(format!("{}{path}", self.base))
            .header("content-type", "application/json")
            .body(body);
        if let Some(t) = token {
            req = req.bearer_auth(t);
        }
        Self::finish(req.send().await.unwrap()).await
    }

    pub async fn post(&self, path: &str, body: &Value, token: Option<&str>) -> (u16, Value) {
        self.post_raw(path, serde_json::to_vec(body).unwrap(), token)
            .await
    }

    /// Submits a transfer (`/v1/transfers`) and expects 202; returns its id.
    pub async fn submit(&self, t: &Transfer) -> String {
        let (s, v) = self.post("/v1/transfers", &body(t), None).await;
        assert_eq!(s, 202, "{v}");
        assert_eq!(v["status"], "pending");
        v["id"].as_str().unwrap().to_owned()
    }

    /// Submits an operator deposit and expects 202; returns its id.
    pub async fn deposit(&self, t: &Transfer) -> String {
        let (s, v) = self.post("/v1/deposits", &body(t), Some(TOKEN)).await;
        assert_eq!(s, 202, "{v}");
        v["id"].as_str().unwrap().to_owned()
    }

    /// Polls a transfer until its status is one of `want`; returns its JSON.
    pub async fn wait_status(&self, id: &str, want: &[&str], timeout: Duration) -> Value {
        let start = Instant::now();
        loop {
            let (s, v) = self.get(&format!("/v1/transfers/{id}")).await;
            assert_eq!(s, 200, "{v}");
            if want.iter().any(|w| v["status"] == *w) {
                return v;
            }
            assert!(
                start.elapsed() < timeout,
                "transfer {id} still {v} after {timeout:?}"
            );
            tokio::time::sleep(Duration::from_millis(50)).await;
        }
    }
}

/// A response read off a raw socket.
#[derive(Debug, Clone)]
pub struct RawResponse {
    pub status: u16,
    /// Header names lower-cased.
    pub headers: Vec<(String, String)>,
    /// The body as JSON, or as a JSON string when it is not JSON.
    pub body: Value,
}

impl RawResponse {
    pub fn header(&self, name: &str) -> Option<&str> {
        self.headers
            .iter()
            .find(|(n, _)| n == name)
            .map(|(_, v)| v.as_str())
    }

    /// `error.code`, or "" when the body is not the API's error shape.
    pub fn code(&self) -> &str {
        self.body["error"]["code"].as_str().unwrap_or("")
    }
}

/// Reads one `Content-Length`-framed response from `stream`; `pending` holds bytes read past
/// the previous response. `None` if the stream ends (or fails) first.
pub async fn read_response<R: AsyncRead + Unpin>(
    stream: &mut R,
    pending: &mut Vec<u8>,
) -> Option<RawResponse> {
    loop {
        let mut headers = [httparse::EMPTY_HEADER; 32];
        let mut resp = httparse::Response::new(&mut headers);
        if let httparse::Status::Complete(head_len) = resp.parse(pending).expect("an HTTP response")
        {
            let headers: Vec<(String, String)> = resp
                .headers
                .iter()
                .map(|h| {
                    (
                        h.name.to_ascii_lowercase(),
                        String::from_utf8_lossy(h.value).into_owned(),
                    )
                })
                .collect();
            let status = resp.code.unwrap();
            let len: usize = headers
                .iter()
                .find(|(n, _)| n == "content-length")
                .map_or(0, |(_, v)| v.parse().unwrap());
            if pending.len() >= head_len + len {
                let body: Vec<u8> = pending.drain(..head_len + len).skip(head_len).collect();
                let text = String::from_utf8_lossy(&body).into_owned();
                let body = serde_json::from_str(&text).unwrap_or(Value::String(text));
                return Some(RawResponse {
                    status,
                    headers,
                    body,
                });
            }
        }
        match stream.read_buf(pending).await {
            Ok(0) | Err(_) => return None,
            Ok(_) => {}
        }
    }
}

/// Sends `request` on a new connection (half-closing it afterwards if `half_close`) and reads
/// one response; the write runs beside the read, so a server answering early is seen.
pub async fn raw_request(
    addr: std::net::SocketAddr,
    request: Vec<u8>,
    half_close: bool,
) -> Option<RawResponse> {
    let stream = TcpStream::connect(addr).await.unwrap();
    let (mut rd, mut wr) = stream.into_split();
    let writer = tokio::spawn(async move {
        let _ = wr.write_all(&request).await;
        if half_close {
            let _ = wr.shutdown().await;
        }
        // Keep the write half (and so the connection) open until the read is done.
        wr
    });
    let mut pending = Vec::new();
    let response = tokio::time::timeout(
        Duration::from_secs(60),
        read_response(&mut rd, &mut pending),
    )
    .await
    .expect("a response within 60 s");
    drop(writer.await);
    response
}

/// One keep-alive connection driven by hand.
pub struct RawConnection {
    pub stream: TcpStream,
    pub pending: Vec<u8>,
}

impl RawConnection {
    pub async fn open(addr: std::net::SocketAddr) -> Self {
        RawConnection {
            stream: TcpStream::connect(addr).await.unwrap(),
            pending: Vec::new(),
        }
    }

    /// Writes `bytes` (one request, several, or a part of one).
    pub async fn send(&mut self, bytes: &[u8]) {
        self.stream.write_all(bytes).await.unwrap();
    }

    /// The next response; `None` once the server closed the connection.
    pub async fn response(&mut self) -> Option<RawResponse> {
        tokio::time::timeout(
            Duration::from_secs(60),
            read_response(&mut self.stream, &mut self.pending),
        )
        .await
        .expect("a response within 60 s")
    }

    /// Sends one request and reads its response, which must come.
    pub async fn request(&mut self, bytes: &[u8]) -> RawResponse {
        self.send(bytes).await;
        self.response()
            .await
            .expect("the connection stays open for a response")
    }
}

/// `GET path` on a keep-alive connection.
pub fn get_request(path: &str) -> Vec<u8> {
    format!("GET {path} HTTP/1.1\r\nHost: veil\r\n\r\n").into_bytes()
}
