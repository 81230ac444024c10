//! The API's routes under arbitrary requests: a node (B2-D8, no prover, one pending deposit)
//! behind `veil_sequencer::api::routes`, driven in-process with `warp::test`. An input is
//! `METHOD SP TARGET [SP "auth"] LF BODY`: the request line's target carries the path and query
//! decoders (`/v1/notes?from=&limit=`, `/v1/nullifiers/{hex}`, `/v1/transfers/{id}`,
//! `/v1/batches/{n}`, `/v1/notes/{pos}/path`), the body the transfer and deposit decoders;
//! `auth` adds the operator's bearer token. Every response must be a success or the API's error
//! JSON with a 4xx (503 when the node is unavailable), never a 500.

use std::sync::Arc;

use serde_json::Value;
use tempfile::TempDir;
use veil_circuits::batch::BatchShape;
use veil_sequencer::api::{routes, ApiContext};
use veil_sequencer::Node;
use warp::http::{Method, StatusCode, Uri};

use super::decoders::is_snake_case;
use super::seeds;

/// The operator token of the harness's node (inputs whose request line ends in ` auth` send it).
pub const OPERATOR_TOKEN: &str = "fuzz-operator-token";

/// A node and its routes, driven in-process.
pub struct ApiHarness {
    runtime: tokio::runtime::Runtime,
    ctx: Arc<ApiContext>,
    _dir: TempDir,
}

impl Default for ApiHarness {
    fn default() -> Self {
        Self::new()
    }
}

impl ApiHarness {
    /// A fresh node in a temporary directory, holding the seed deposit in its mempool.
    pub fn new() -> Self {
        let dir = tempfile::Builder::new()
            .prefix("veil-fuzz-api-")
            .tempdir()
            .expect("a temporary directory");
        let shape = BatchShape::new(2, 8).expect("B2-D8 is a shape");
        let node = Node::open(dir.path(), shape).expect("a fresh node opens");
        node.submit(seeds::api_deposit(), true)
            .expect("the seed deposit is accepted");
        let ctx = Arc::new(ApiContext {
            node: Arc::new(node),
            operator_token: Some(OPERATOR_TOKEN.to_owned()),
            anchorer: None,
            proving_queue: None,
            verifying_key: None,
        });
        let runtime = tokio::runtime::Builder::new_current_thread()
            .enable_all()
            .build()
            .expect("a tokio runtime");
        ApiHarness {
            runtime,
            ctx,
            _dir: dir,
        }
    }

    /// Sends the request `data` encodes (inputs that are no HTTP request, an unparsable method
    /// or target, are skipped: hyper refuses them before any route) and checks the response;
    /// returns its status and error code, `None` if skipped.
    pub fn check(&self, data: &[u8]) -> Option<(StatusCode, Option<String>)> {
        let (line, body) = match data.iter().position(|&b| b == b'\n') {
            Some(i) => (&data[..i], &data[i + 1..]),
            None => (data, &[][..]),
        };
        let line = std::str::from_utf8(line).ok()?;
        let mut parts = line.split(' ');
        let (method, target) = (parts.next()?, parts.next()?);
        let auth = parts.next() == Some("auth");
        let method = Method::from_bytes(method.as_bytes()).ok()?;
        target.parse::<Uri>().ok()?;
        let mut request = warp::test::request()
            .method(method.as_str())
            .path(target)
            .body(body);
        if auth {
            request = request.header("authorization", format!("Bearer {OPERATOR_TOKEN}"));
        }
        let filter = routes(self.ctx.clone());
        let response = self.runtime.block_on(request.reply(&filter));
        let code = check_response(response.status(), response.body(), line);
        Some((response.status(), code))
    }
}

/// A success, or `{"error": {"code": snake_case, "message": string}}` with a 4xx or a 503
/// (returns the code).
fn check_response(status: StatusCode, body: &[u8], line: &str) -> Option<String> {
    if status.is_success() {
        return None;
    }
    assert!(
        status.is_client_error() || status == StatusCode::SERVICE_UNAVAILABLE,
        "{line:?}: status {status}, body {}",
        String::from_utf8_lossy(body)
    );
    let v: Value = serde_json::from_slice(body)
        .unwrap_or_else(|e| panic!("{line:?}: {status} with a body that is not JSON: {e}"));
    let error = v
        .as_object()
        .filter(|o| o.len() == 1)
        .and_then(|o| o.get("error"))
        .and_then(Value::as_object)
        .filter(|e| e.len() == 2)
        .unwrap_or_else(|| panic!("{line:?}: {status} with body {v}"));
    let code = error["code"].as_str().unwrap_or_default();
    assert!(is_snake_case(code), "{line:?}: error code {code:?}");
    assert!(error["message"].is_string(), "{line:?}: body {v}");
    Some(code.to_owned())
}
