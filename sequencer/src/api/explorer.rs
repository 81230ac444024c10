//! The batch explorer served at `/`: one hand-written page (`sequencer/assets/`, compiled into the
//! binary) that shows the state, the recent batches with their status, proving time and anchor,
//! a batch's public data, public inputs and proof, a transfer's status, and charts of transfers
//! proven per minute and proving seconds per batch. The page verifies every shown proof in the
//! visitor's browser with Veil's own verifier compiled to WebAssembly (`verifier-wasm/`, built by
//! `sequencer/build.rs`), against the verifying key it fetches from `GET /v1/vk` and whose
//! SHA-256 it shows.
//!
//! Routes: `GET /` (the page), `GET /explorer/{app.js, verifier.js, style.css,
//! veil_verifier.wasm}`, `GET /v1/batches?limit=&before=` (recent batches, newest first) and
//! `GET /v1/vk` (the verifying-key file).

use std::path::Path;
use std::sync::{Arc, OnceLock};

use ark_bn254::Bn254;
use ark_groth16::VerifyingKey;
use serde::Deserialize;
use serde_json::{json, Value};
use veil_circuits::batch::BatchShape;
use veil_circuits::field;
use veil_prover::keys::{self, KeyKind};
use warp::filters::BoxedFilter;
use warp::http::StatusCode;
use warp::reply::Response;
use warp::{Filter, Reply};

use super::{error_response, internal, json_response, wrong_method, ApiContext};
use crate::anchoring::anchor_json;
use crate::ProverSetup;

/// Default page of `GET /v1/batches`.
pub const DEFAULT_BATCHES_LIMIT: u64 = 20;
/// Largest page of `GET /v1/batches`.
pub const MAX_BATCHES_LIMIT: u64 = 100;

const INDEX_HTML: &str = include_str!("../../assets/index.html");
const APP_JS: &str = include_str!("../../assets/app.js");
const VERIFIER_JS: &str = include_str!("../../assets/verifier.js");
const STYLE_CSS: &str = include_str!("../../assets/style.css");
/// The wasm verifier, empty when this node was built without it (see `build.rs`).
const VERIFIER_WASM: &[u8] = include_bytes!(concat!(env!("OUT_DIR"), "/veil_verifier.wasm"));
/// Why [`VERIFIER_WASM`] is empty.
const VERIFIER_WASM_MISSING: &str =
    include_str!(concat!(env!("OUT_DIR"), "/veil_verifier_wasm.txt"));

/// The page may load only its own scripts, styles and data, and compile WebAssembly.
const CSP: &str = "default-src 'none'; script-src 'self' 'wasm-unsafe-eval'; style-src 'self'; \
                   connect-src 'self'; img-src 'self' data:; base-uri 'none'; form-action 'none'; \
                   frame-ancestors 'none'";

/// Whether this node embeds the in-browser verifier.
pub fn has_wasm_verifier() -> bool {
    !VERIFIER_WASM.is_empty()
}

/// The node's verifying-key file as `GET /v1/vk` serves it: the bytes of `vk-B{B}-D{D}.bin`
/// (header and compressed key), whose SHA-256 is the key's identity (`docs/batch-file.md`).
pub struct ServedVk {
    vk: VerifyingKey<Bn254>,
    shape: BatchShape,
    file: OnceLock<Vec<u8>>,
}

impl ServedVk {
    /// The key file of a prover setup. A loaded prover knows its circuit's shape hash; for a
    /// bare proving key, or a queue whose key file is not in `keys_dir`, the hash is computed
    /// (by synthesising the circuit) on the first request.
    pub fn of(setup: &ProverSetup, shape: BatchShape, keys_dir: &Path) -> Self {
        let (vk, file) = match setup {
            ProverSetup::Loaded(p) => {
                let header = keys::header(KeyKind::Verifying, shape, p.shape_hash());
                (
                    p.verifying_key().clone(),
                    Some(keys::key_file_bytes(header, p.verifying_key())),
                )
            }
            ProverSetup::Local(pk) => (pk.vk.clone(), None),
            ProverSetup::Queue { vk, vk_id } => {
                let path = keys_dir.join(keys::key_file_name(KeyKind::Verifying, shape));
                let file = std::fs::read(path)
                    .ok()
                    .filter(|bytes| keys::vk_sha256(bytes) == *vk_id);
                ((**vk).clone(), file)
            }
        };
        let served = ServedVk {
            vk,
            shape,
            file: OnceLock::new(),
        };
        if let Some(file) = file {
            let _ = served.file.set(file);
        }
        served
    }

    /// The key file's bytes (may synthesise the circuit once: call off the async runtime).
    pub fn file(&self) -> &[u8] {
        self.file.get_or_init(|| {
            let header = keys::header(KeyKind::Verifying, self.shape, keys::shape_hash(self.shape));
            keys::key_file_bytes(header, &self.vk)
        })
    }
}

/// The explorer's routes (GET only; [`wrong_methods`] answers the others).
pub(super) fn routes(ctx: Arc<ApiContext>) -> BoxedFilter<(Response,)> {
    let with_ctx = warp::any().map(move || ctx.clone());
    let index = warp::path::end()
        .and(warp::get())
        .map(|| asset(INDEX_HTML.as_bytes(), "text/html; charset=utf-8"));
    let assets = warp::path!("explorer" / String)
        .and(warp::get())
        .map(|name: String| match name.as_str() {
            "app.js" => asset(APP_JS.as_bytes(), "text/javascript; charset=utf-8"),
            "verifier.js" => asset(VERIFIER_JS.as_bytes(), "text/javascript; charset=utf-8"),
            "style.css" => asset(STYLE_CSS.as_bytes(), "text/css; charset=utf-8"),
            "veil_verifier.wasm" if has_wasm_verifier() => asset(VERIFIER_WASM, "application/wasm"),
            "veil_verifier.wasm" => error_response(
                StatusCode::NOT_FOUND,
                "wasm_unavailable",
                format!("in-browser verification unavailable: {VERIFIER_WASM_MISSING}"),
            ),
            _ => error_response(
                StatusCode::NOT_FOUND,
                "not_found",
                format!("no explorer asset {name:?}"),
            ),
        });
    let batches = warp::path!("v1" / "batches")
        .and(warp::get())
        .and(warp::query::<BatchesQuery>())
        .and(with_ctx.clone())
        .then(list_batches);
    let vk = warp::path!("v1" / "vk")
        .and(warp::get())
        .and(with_ctx)
        .then(get_vk);
    index
        .or(assets)
        .unify()
        .or(batches)
        .unify()
        .or(vk)
        .unify()
        .boxed()
}

/// `405` for the explorer's paths asked with another method than GET.
pub(super) fn wrong_methods() -> BoxedFilter<(Response,)> {
    let get = || wrong_method("GET");
    warp::path::end()
        .and(get())
        .or(warp::path!("explorer" / String)
            .and(get())
            .map(|_: String, r: Response| r))
        .unify()
        .or(warp::path!("v1" / "batches").and(get()))
        .unify()
        .or(warp::path!("v1" / "vk").and(get()))
        .unify()
        .boxed()
}

fn asset(body: &'static [u8], content_type: &'static str) -> Response {
    let mut r = warp::reply::with_header(body, "content-type", content_type).into_response();
    let headers = r.headers_mut();
    headers.insert("cache-control", "no-cache".parse().expect("valid header"));
    headers.insert(
        "x-content-type-options",
        "nosniff".parse().expect("valid header"),
    );
    if content_type.starts_with("text/html") {
        headers.insert(
            "content-security-policy",
            CSP.parse().expect("valid header"),
        );
        headers.insert(
            "referrer-policy",
            "no-referrer".parse().expect("valid header"),
        );
    }
    r
}

/// Query of `GET /v1/batches`.
#[derive(Debug, Deserialize)]
#[serde(deny_unknown_fields)]
pub(super) struct BatchesQuery {
    limit: Option<u64>,
    before: Option<u64>,
}

/// `GET /v1/batches`: the heights, and up to `limit` batches below `before` (default: every
/// sealed batch), newest first, each with its status, size, proving time and anchor.
async fn list_batches(q: BatchesQuery, ctx: Arc<ApiContext>) -> Response {
    let limit = q.limit.unwrap_or(DEFAULT_BATCHES_LIMIT);
    if limit == 0 || limit > MAX_BATCHES_LIMIT {
        return error_response(
            StatusCode::BAD_REQUEST,
            "limit_out_of_range",
            format!("limit must be in 1..={MAX_BATCHES_LIMIT}, got {limit}"),
        );
    }
    let node = ctx.node.clone();
    let view = node.state_view();
    let before = q.before.unwrap_or(view.batch_height).min(view.batch_height);
    let first = before.saturating_sub(limit);
    let anchored_height = node
        .metrics
        .anchored_height
        .load(std::sync::atomic::Ordering::Relaxed);
    let read = move || -> Result<Vec<Value>, crate::NodeError> {
        let mut out = Vec::new();
        for n in (first..before).rev() {
            let Some(b) = node.batch(n)? else { continue };
            let r = &b.record;
            let anchor = b.anchor.as_ref().map(anchor_json);
            let anchored = anchor.as_ref().is_some_and(|a| a["status"] == "anchored");
            let status = match (anchored, b.proof.is_some()) {
                (true, _) => "anchored",
                (false, true) => "proven",
                (false, false) => "sealed",
            };
            let timing = b.proof_timing;
            out.push(json!({
                "number": n,
                "status": status,
                "transfers": r.transfer_ids.len(),
                "public_in": r.public.iter().map(|p| p.public_in).sum::<u64>(),
                "public_out": r.public.iter().map(|p| p.public_out).sum::<u64>(),
                "fees": r.public.iter().map(|p| p.fee).sum::<u64>(),
                "new_state_root": field::to_hex(&r.public_inputs.new_state_root),
                "proven_at_ms": timing.map(|t| t.proven_at_ms),
                "proving_seconds": timing.map(|t| t.proving_ms as f64 / 1000.0),
                "anchor": anchor.map(|a| json!({
                    "txid": a["txid"],
                    "status": a["status"],
                    "confirmations": a["confirmations"],
                    "fee_sat": a["fee_sat"],
                })),
            }));
        }
        Ok(out)
    };
    match tokio::task::spawn_blocking(read).await {
        Ok(Ok(batches)) => json_response(
            StatusCode::OK,
            &json!({
                "batch_height": view.batch_height,
                "proven_height": view.proven_height,
                "anchored_height": anchored_height,
                "batch_size": ctx.node.shape().batch_size,
                "depth": ctx.node.shape().depth,
                "next_before": if first > 0 { Some(first) } else { None },
                "batches": batches,
            }),
        ),
        Ok(Err(e)) => internal(e),
        Err(e) => internal(e),
    }
}

/// `GET /v1/vk`: the verifying-key file the node's proofs verify against.
async fn get_vk(ctx: Arc<ApiContext>) -> Response {
    let Some(vk) = ctx.verifying_key.clone() else {
        return error_response(
            StatusCode::NOT_FOUND,
            "vk_unavailable",
            "this node has no verifying key (it runs without a prover)",
        );
    };
    match tokio::task::spawn_blocking(move || vk.file().to_vec()).await {
        Ok(bytes) => {
            let mut r = warp::reply::with_header(bytes, "content-type", "application/octet-stream")
                .into_response();
            r.headers_mut().insert(
                "content-disposition",
                format!(
                    "attachment; filename=\"{}\"",
                    keys::key_file_name(KeyKind::Verifying, ctx.node.shape())
                )
                .parse()
                .expect("valid header"),
            );
            r
        }
        Err(e) => internal(e),
    }
}
