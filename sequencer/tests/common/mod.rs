//! Shared helpers of the sequencer's integration tests: the small test shape, dev keys generated
//! once per test binary, node configs on port 0, and a small JSON HTTP client.
#![allow(dead_code)]

use std::path::Path;
use std::sync::OnceLock;
use std::time::{Duration, Instant};

use ark_bn254::Bn254;
use ark_groth16::{ProvingKey, VerifyingKey};
use serde_json::Value;
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
