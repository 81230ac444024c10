//! The HTTP API (DESIGN §9) on warp: transfer submission and status, state, notes and their
//! paths, nullifiers, batches with their Bitcoin anchors, operator deposits and anchoring
//! passes, health, Prometheus metrics and the OpenAPI document. Every error, warp's own rejections included, is
//! `{"error": {"code": "snake_case", "message": "..."}}`; a `405` names the route's methods in
//! `Allow`. Handlers never wait on proving. What hyper would refuse before routing (malformed
//! heads, timeouts, the connection cap) is refused earlier still, by [`crate::http_edge`].

use std::convert::Infallible;
use std::sync::atomic::Ordering;
use std::sync::Arc;

use bytes::Bytes;
use serde::{Deserialize, Serialize};
use serde_json::json;
use subtle::ConstantTimeEq;
use warp::http::header::{HeaderValue, ALLOW};
use warp::http::{Method, StatusCode};
use warp::reply::Response;
use warp::{Buf, Filter, Rejection, Reply, Stream};

use veil_circuits::field;
use veil_circuits::Transfer;

mod bridge;
pub mod explorer;

use crate::anchoring::anchor_json;
use crate::node::{Node, Status, SubmitError};
use crate::wire::{first_duplicate_key, parse_field, TransferRequest};

/// Largest accepted request body.
pub const MAX_BODY_BYTES: u64 = 64 * 1024;
/// Largest page of `GET /v1/notes`.
pub const MAX_NOTES_LIMIT: usize = 1000;

/// What the handlers share.
pub struct ApiContext {
    /// The node.
    pub node: Arc<Node>,
    /// Operator bearer token; `None` disables operator endpoints.
    pub operator_token: Option<String>,
    /// The Bitcoin anchorer, when anchoring is configured.
    pub anchorer: Option<Arc<crate::anchoring::Anchorer>>,
    /// The proving job queue's metrics, when proving goes through one.
    pub proving_queue: Option<Arc<crate::proving::queue::QueueMetrics>>,
    /// The verifying key `GET /v1/vk` serves (the explorer verifies proofs with it); `None`
    /// on a node without a prover.
    pub verifying_key: Option<Arc<explorer::ServedVk>>,
}

/// A rejection carrying an API error (used by filters that must reject, like authentication).
#[derive(Debug)]
struct ApiReject {
    status: StatusCode,
    code: &'static str,
    message: String,
}

impl warp::reject::Reject for ApiReject {}

/// `{"error": {"code", "message"}}` with `status`.
pub fn error_response(status: StatusCode, code: &str, message: impl Into<String>) -> Response {
    let body = json!({"error": {"code": code, "message": message.into()}});
    warp::reply::with_status(warp::reply::json(&body), status).into_response()
}

fn json_response<T: Serialize>(status: StatusCode, v: &T) -> Response {
    warp::reply::with_status(warp::reply::json(v), status).into_response()
}

fn internal(e: impl std::fmt::Display) -> Response {
    tracing::error!(error = %e, "internal error");
    error_response(
        StatusCode::INTERNAL_SERVER_ERROR,
        "internal",
        "internal error",
    )
}

/// All routes, with errors rendered by [`recover`].
pub fn routes(
    ctx: Arc<ApiContext>,
) -> impl Filter<Extract = (Response,), Error = Infallible> + Clone + Send + Sync + 'static {
    let with_ctx = {
        let ctx = ctx.clone();
        warp::any().map(move || ctx.clone())
    };
    let explorer_routes = explorer::routes(ctx.clone());

    let post_transfer = warp::path!("v1" / "transfers")
        .and(warp::post())
        .and(body_bytes())
        .and(with_ctx.clone())
        .then(|body: Bytes, ctx: Arc<ApiContext>| submit(ctx, body, false));
    let post_deposit = warp::path!("v1" / "deposits")
        .and(warp::post())
        .and(operator_auth(ctx.clone()))
        .and(body_bytes())
        .and(with_ctx.clone())
        .then(|body: Bytes, ctx: Arc<ApiContext>| submit(ctx, body, true));
    let get_transfer = warp::path!("v1" / "transfers" / String)
        .and(warp::get())
        .and(with_ctx.clone())
        .then(get_transfer);
    let get_state = warp::path!("v1" / "state")
        .and(warp::get())
        .and(with_ctx.clone())
        .then(get_state);
    let get_notes = warp::path!("v1" / "notes")
        .and(warp::get())
        .and(warp::query::<NotesQuery>())
        .and(with_ctx.clone())
        .then(get_notes);
    let get_path = warp::path!("v1" / "notes" / u64 / "path")
        .and(warp::get())
        .and(with_ctx.clone())
        .then(get_path);
    let get_nullifier = warp::path!("v1" / "nullifiers" / String)
        .and(warp::get())
        .and(with_ctx.clone())
        .then(get_nullifier);
    let get_batch = warp::path!("v1" / "batches" / u64)
        .and(warp::get())
        .and(with_ctx.clone())
        .then(get_batch);
    let get_bridge = warp::path!("v1" / "bridge")
        .and(warp::get())
        .and(with_ctx.clone())
        .then(bridge::get_bridge);
    let post_watch = warp::path!("v1" / "bridge" / "watch")
        .and(warp::post())
        .and(body_bytes())
        .and(with_ctx.clone())
        .then(bridge::post_watch);
    let get_deposits = warp::path!("v1" / "bridge" / "deposits")
        .and(warp::get())
        .and(warp::query::<bridge::DepositsQuery>())
        .and(with_ctx.clone())
        .then(bridge::get_deposits);
    let post_anchor = warp::path!("v1" / "anchor")
        .and(warp::post())
        .and(operator_auth(ctx.clone()))
        .and(with_ctx.clone())
        .then(post_anchor);
    let healthz = warp::path!("healthz")
        .and(warp::get())
        .map(|| json_response(StatusCode::OK, &json!({"status": "ok"})));
    let metrics = warp::path!("metrics")
        .and(warp::get())
        .and(with_ctx.clone())
        .map(|ctx: Arc<ApiContext>| {
            metrics_response(
                &ctx.node,
                ctx.anchorer.as_deref(),
                ctx.proving_queue.as_deref(),
            )
        });
    let openapi = warp::path!("v1" / "openapi.json").and(warp::get()).map(|| {
        warp::reply::with_header(OPENAPI, "content-type", "application/json").into_response()
    });

    // Boxed: warp's nested filter types would otherwise outgrow the compiler's recursion limit.
    let bridge_routes = get_bridge
        .or(post_watch)
        .unify()
        .or(get_deposits)
        .unify()
        .boxed();
    let core_routes = post_transfer
        .or(post_deposit)
        .unify()
        .or(get_transfer)
        .unify()
        .or(get_state)
        .unify()
        .or(get_notes)
        .unify()
        .or(get_path)
        .unify()
        .or(get_nullifier)
        .unify()
        .or(get_batch)
        .unify()
        .boxed();
    core_routes
        .or(bridge_routes)
        .unify()
        .or(post_anchor)
        .unify()
        .or(healthz)
        .unify()
        .or(metrics)
        .unify()
        .or(openapi)
        .unify()
        .or(explorer_routes)
        .unify()
        .or(wrong_methods().boxed())
        .unify()
        .or(explorer::wrong_methods())
        .unify()
        .recover(recover)
        .unify()
}

/// The request body, at most [`MAX_BODY_BYTES`] (by `Content-Length`). A body that cannot be
/// read in full (the client left) is `400 incomplete_body`, not warp's unhandled read error.
fn body_bytes() -> impl Filter<Extract = (Bytes,), Error = Rejection> + Clone + Send + Sync {
    warp::body::content_length_limit(MAX_BODY_BYTES)
        .and(warp::body::stream())
        .and_then(collect_body)
}

async fn collect_body<S, B>(stream: S) -> Result<Bytes, Rejection>
where
    S: Stream<Item = Result<B, warp::Error>> + Send,
    B: Buf + Send,
{
    let mut stream = std::pin::pin!(stream);
    let mut body = Vec::new();
    while let Some(chunk) = std::future::poll_fn(|cx| stream.as_mut().poll_next(cx)).await {
        let Ok(mut chunk) = chunk else {
            return Err(warp::reject::custom(ApiReject {
                status: StatusCode::BAD_REQUEST,
                code: "incomplete_body",
                message: "the request body could not be read in full".to_owned(),
            }));
        };
        while chunk.has_remaining() {
            let part = chunk.chunk();
            body.extend_from_slice(part);
            let n = part.len();
            chunk.advance(n);
        }
    }
    Ok(Bytes::from(body))
}

/// `405` with `Allow` for a known route asked with another method; rejects (as not found, so
/// that any other rejection wins) when the method is allowed.
fn wrong_method(
    allow: &'static str,
) -> impl Filter<Extract = (Response,), Error = Rejection> + Clone + Send + Sync + 'static {
    warp::method().and_then(move |method: Method| async move {
        if allow.split(", ").any(|m| m == method.as_str()) {
            return Err(warp::reject::not_found());
        }
        let mut response = error_response(
            StatusCode::METHOD_NOT_ALLOWED,
            "method_not_allowed",
            format!("{method} is not allowed on this route (allowed: {allow})"),
        );
        response
            .headers_mut()
            .insert(ALLOW, HeaderValue::from_static(allow));
        Ok(response)
    })
}

/// Every route's path with [`wrong_method`]: tried after the routes themselves.
fn wrong_methods(
) -> impl Filter<Extract = (Response,), Error = Rejection> + Clone + Send + Sync + 'static {
    let post = || wrong_method("POST");
    let get = || wrong_method("GET");
    warp::path!("v1" / "transfers")
        .and(post())
        .or(warp::path!("v1" / "deposits").and(post()))
        .unify()
        .or(warp::path!("v1" / "anchor").and(post()))
        .unify()
        .or(warp::path!("v1" / "transfers" / String)
            .and(get())
            .map(|_: String, r: Response| r))
        .unify()
        .or(warp::path!("v1" / "state").and(get()))
        .unify()
        .or(warp::path!("v1" / "notes").and(get()))
        .unify()
        .or(warp::path!("v1" / "notes" / u64 / "path")
            .and(get())
            .map(|_: u64, r: Response| r))
        .unify()
        .or(warp::path!("v1" / "nullifiers" / String)
            .and(get())
            .map(|_: String, r: Response| r))
        .unify()
        .or(warp::path!("v1" / "batches" / u64)
            .and(get())
            .map(|_: u64, r: Response| r))
        .unify()
        .or(warp::path!("v1" / "bridge").and(get()))
        .unify()
        .or(warp::path!("v1" / "bridge" / "watch").and(post()))
        .unify()
        .or(warp::path!("v1" / "bridge" / "deposits").and(get()))
        .unify()
        .or(warp::path!("v1" / "openapi.json").and(get()))
        .unify()
        .or(warp::path!("healthz").and(get()))
        .unify()
        .or(warp::path!("metrics").and(get()))
        .unify()
}

/// Checks `Authorization: Bearer <token>` in constant time.
fn operator_auth(
    ctx: Arc<ApiContext>,
) -> impl Filter<Extract = (), Error = Rejection> + Clone + Send + Sync + 'static {
    warp::header::optional::<String>("authorization")
        .and_then(move |header: Option<String>| {
            let ctx = ctx.clone();
            async move {
                let unauthorized = |message: &str| {
                    warp::reject::custom(ApiReject {
                        status: StatusCode::UNAUTHORIZED,
                        code: "unauthorized",
                        message: message.to_owned(),
                    })
                };
                let Some(expected) = ctx.operator_token.as_deref() else {
                    return Err(unauthorized("operator endpoints are disabled"));
                };
                let Some(given) = header.as_deref().and_then(|h| h.strip_prefix("Bearer ")) else {
                    return Err(unauthorized("missing bearer token"));
                };
                if bool::from(given.as_bytes().ct_eq(expected.as_bytes())) {
                    Ok(())
                } else {
                    Err(unauthorized("invalid bearer token"))
                }
            }
        })
        .untuple_one()
}

fn submit_status(e: &SubmitError) -> StatusCode {
    match e {
        SubmitError::Duplicate(_) | SubmitError::DuplicateDeposit { .. } => StatusCode::CONFLICT,
        SubmitError::DepositNotAllowed => StatusCode::FORBIDDEN,
        SubmitError::NotADeposit
        | SubmitError::BadCiphertext { .. }
        | SubmitError::MixedCiphertextLengths(..) => StatusCode::BAD_REQUEST,
        SubmitError::Invalid(_) => StatusCode::UNPROCESSABLE_ENTITY,
        SubmitError::Store(_) => StatusCode::INTERNAL_SERVER_ERROR,
        SubmitError::Unavailable => StatusCode::SERVICE_UNAVAILABLE,
    }
}

async fn submit(ctx: Arc<ApiContext>, body: Bytes, operator: bool) -> Response {
    let refuse = |status: StatusCode, code: &'static str, message: String| {
        ctx.node.metrics.record_rejection(code);
        error_response(status, code, message)
    };
    if operator {
        if let Some(refused) = bridge::attested_deposits_refused(&ctx) {
            return refused;
        }
    }
    // Two steps so that syntax errors (`bad_json`) and well-formed JSON of the wrong shape
    // (`invalid_body`: wrong types, unknown or missing fields, wrong lengths) are told apart.
    let value: serde_json::Value = match serde_json::from_slice(&body) {
        Ok(v) => v,
        Err(e) => return refuse(StatusCode::BAD_REQUEST, "bad_json", e.to_string()),
    };
    // serde_json keeps the last of repeated keys; other parsers keep the first. Refuse both.
    if let Some(d) = first_duplicate_key(&body) {
        return refuse(StatusCode::BAD_REQUEST, "duplicate_key", d.to_string());
    }
    let req: TransferRequest = match serde_json::from_value(value) {
        Ok(r) => r,
        Err(e) => return refuse(StatusCode::BAD_REQUEST, "invalid_body", e.to_string()),
    };
    let transfer = match Transfer::try_from(&req) {
        Ok(t) => t,
        Err(e) => return refuse(StatusCode::BAD_REQUEST, e.code(), e.to_string()),
    };
    if let Err((status, code, message)) =
        bridge::admit_withdrawal(&ctx, &transfer, req.withdrawal_script.as_deref())
    {
        return refuse(status, code, message);
    }
    match ctx.node.clone().submit_async(transfer, operator).await {
        Ok((id, _)) => json_response(
            StatusCode::ACCEPTED,
            &json!({"id": id, "status": "pending"}),
        ),
        // A deposit is idempotent: the operator re-posting the very same transfer (a retry after
        // a lost response) gets its status, not an error.
        Err(SubmitError::Duplicate(id)) if operator => match ctx.node.status(&id) {
            Ok(Some(status)) => json_response(StatusCode::OK, &status_json(&id, &status)),
            _ => {
                let e = SubmitError::Duplicate(id);
                refuse(submit_status(&e), e.code(), e.to_string())
            }
        },
        Err(e) => {
            if let SubmitError::Store(inner) = &e {
                tracing::error!(error = %inner, "storing a transfer failed");
            }
            refuse(submit_status(&e), e.code(), e.to_string())
        }
    }
}

/// Status JSON of a transfer: `{"id", "status", "batch"?, "reason"?}`.
pub fn status_json(id: &str, s: &Status) -> serde_json::Value {
    match s {
        Status::Pending => json!({"id": id, "status": "pending"}),
        Status::Batched(n) => json!({"id": id, "status": "batched", "batch": n}),
        Status::Proven(n) => json!({"id": id, "status": "proven", "batch": n}),
        Status::Anchored(n, txid) => {
            json!({"id": id, "status": "anchored", "batch": n, "txid": txid})
        }
        Status::Rejected(r) => json!({"id": id, "status": "rejected", "reason": r}),
    }
}

async fn get_transfer(id: String, ctx: Arc<ApiContext>) -> Response {
    let node = ctx.node.clone();
    let id2 = id.clone();
    match tokio::task::spawn_blocking(move || node.status(&id2)).await {
        Ok(Ok(Some(s))) => json_response(StatusCode::OK, &status_json(&id, &s)),
        Ok(Ok(None)) => error_response(
            StatusCode::NOT_FOUND,
            "transfer_not_found",
            format!("no transfer {id}"),
        ),
        Ok(Err(e)) => internal(e),
        Err(e) => internal(e),
    }
}

async fn get_state(ctx: Arc<ApiContext>) -> Response {
    let v = ctx.node.state_view();
    json_response(
        StatusCode::OK,
        &json!({
            "state_root": field::to_hex(&v.state_root),
            "note_root": field::to_hex(&v.summary.note_root),
            "note_count": v.summary.note_count,
            "nullifier_root": field::to_hex(&v.summary.nullifier_root),
            "nullifier_count": v.summary.nullifier_count,
            "batch_height": v.batch_height,
            "proven_height": v.proven_height,
            "anchored_height": ctx.node.metrics.anchored_height.load(Ordering::Relaxed),
            "mempool_size": v.mempool_size,
            "batch_size": ctx.node.shape().batch_size,
            "depth": ctx.node.shape().depth,
        }),
    )
}

/// Query of `GET /v1/notes`.
#[derive(Debug, Deserialize)]
#[serde(deny_unknown_fields)]
struct NotesQuery {
    from: Option<u64>,
    limit: Option<u64>,
}

async fn get_notes(q: NotesQuery, ctx: Arc<ApiContext>) -> Response {
    let from = q.from.unwrap_or(0);
    let limit = match q.limit {
        None => 100,
        Some(l) if l <= MAX_NOTES_LIMIT as u64 => l as usize,
        Some(l) => {
            return error_response(
                StatusCode::BAD_REQUEST,
                "limit_out_of_range",
                format!("limit {l} is above the largest page, {MAX_NOTES_LIMIT}"),
            )
        }
    };
    let node = ctx.node.clone();
    match tokio::task::spawn_blocking(move || node.notes(from, limit)).await {
        Ok(Ok(notes)) => {
            let next = notes.last().map_or(from, |(p, _)| p + 1);
            let items: Vec<_> = notes
                .iter()
                .map(|(pos, e)| {
                    json!({
                        "position": pos,
                        "commitment": format!("0x{}", hex::encode(e.commitment)),
                        "rho": format!("0x{}", hex::encode(e.rho)),
                        "ciphertext": hex::encode(&e.ciphertext),
                    })
                })
                .collect();
            json_response(StatusCode::OK, &json!({"notes": items, "next": next}))
        }
        Ok(Err(e)) => internal(e),
        Err(e) => internal(e),
    }
}

async fn get_path(pos: u64, ctx: Arc<ApiContext>) -> Response {
    match ctx.node.note_path(pos) {
        Some((leaf, path, root)) => json_response(
            StatusCode::OK,
            &json!({
                "position": pos,
                "leaf": field::to_hex(&leaf),
                "root": field::to_hex(&root),
                "siblings": path
                    .siblings
                    .iter()
                    .map(|level| level.iter().map(field::to_hex).collect::<Vec<_>>())
                    .collect::<Vec<_>>(),
            }),
        ),
        None => error_response(
            StatusCode::NOT_FOUND,
            "note_not_found",
            format!("no note at position {pos}"),
        ),
    }
}

async fn get_nullifier(nf: String, ctx: Arc<ApiContext>) -> Response {
    let nf = match parse_field(&nf, "nullifier") {
        Ok(nf) => nf,
        Err(e) => return error_response(StatusCode::BAD_REQUEST, e.code(), e.to_string()),
    };
    let (spent, pending) = ctx.node.nullifier_status(nf);
    json_response(StatusCode::OK, &json!({"spent": spent, "pending": pending}))
}

async fn get_batch(n: u64, ctx: Arc<ApiContext>) -> Response {
    let node = ctx.node.clone();
    let read = move || -> Result<_, crate::NodeError> {
        let Some(b) = node.batch(n)? else {
            return Ok(None);
        };
        // Each withdrawal's script, whose hash is its `dest` (the anchor pays it).
        let mut scripts = Vec::new();
        for p in b.record.public.iter().filter(|p| p.public_out > 0) {
            let script = node
                .store()
                .withdrawal_script(&field::to_bytes_be(&p.dest))?;
            scripts.push(script.map(hex::encode));
        }
        Ok(Some((b, scripts)))
    };
    match tokio::task::spawn_blocking(read).await {
        Ok(Ok(Some((b, withdrawal_scripts)))) => {
            let r = &b.record;
            json_response(
                StatusCode::OK,
                &json!({
                    "number": r.number,
                    "status": if b.proof.is_some() { "proven" } else { "sealed" },
                    "transfers": r.transfer_ids,
                    "public_data": r.public,
                    "public_inputs": r.public_inputs,
                    "old_state": r.old_state,
                    "new_state": r.new_state,
                    "note_start": r.note_start,
                    "withdrawal_scripts": withdrawal_scripts,
                    "proof": b.proof.map(hex::encode),
                    "anchor": b.anchor.as_ref().map(anchor_json),
                }),
            )
        }
        Ok(Ok(None)) => error_response(
            StatusCode::NOT_FOUND,
            "batch_not_found",
            format!("no batch {n}"),
        ),
        Ok(Err(e)) => internal(e),
        Err(e) => internal(e),
    }
}

/// `POST /v1/anchor`: asks the anchorer for a pass now and reports the anchoring status.
async fn post_anchor(ctx: Arc<ApiContext>) -> Response {
    let Some(anchorer) = ctx.anchorer.clone() else {
        return error_response(
            StatusCode::CONFLICT,
            "anchoring_disabled",
            "anchoring is not configured on this node (see the [anchor] config table)",
        );
    };
    anchorer.trigger();
    match tokio::task::spawn_blocking(move || anchorer.status_json()).await {
        Ok(Ok(v)) => json_response(StatusCode::ACCEPTED, &v),
        Ok(Err(e)) => internal(e),
        Err(e) => internal(e),
    }
}

fn metrics_response(
    node: &Node,
    anchorer: Option<&crate::anchoring::Anchorer>,
    proving_queue: Option<&crate::proving::queue::QueueMetrics>,
) -> Response {
    use crate::prometheus::{write_family, write_metric};
    let v = node.state_view();
    let m = &node.metrics;
    let mut s = String::new();
    let mut metric = |name: &str, kind: &str, help: &str, value: String| {
        write_metric(&mut s, name, kind, help, value)
    };
    metric(
        "veil_transfers_accepted_total",
        "counter",
        "Transfers accepted into the mempool.",
        m.accepted.load(Ordering::Relaxed).to_string(),
    );
    metric(
        "veil_mempool_size",
        "gauge",
        "Transfers waiting to be batched.",
        v.mempool_size.to_string(),
    );
    metric(
        "veil_batch_height",
        "gauge",
        "Sealed batches.",
        v.batch_height.to_string(),
    );
    metric(
        "veil_proven_height",
        "gauge",
        "Proven batches.",
        v.proven_height.to_string(),
    );
    metric(
        "veil_anchored_height",
        "gauge",
        "Batches anchored on Bitcoin with the required confirmations (from batch 0, no gaps).",
        m.anchored_height.load(Ordering::Relaxed).to_string(),
    );
    metric(
        "veil_anchor_signed_height",
        "gauge",
        "Batches with a signed, stored anchor transaction.",
        m.anchor_signed_height.load(Ordering::Relaxed).to_string(),
    );
    metric(
        "veil_anchor_broadcasts_total",
        "counter",
        "Transactions broadcast by the anchorer (commits, reveals and anchors: first broadcasts, re-broadcasts, fee bumps).",
        m.anchor_broadcasts.load(Ordering::Relaxed).to_string(),
    );
    metric(
        "veil_anchor_fee_bumps_total",
        "counter",
        "RBF fee bumps of stuck anchors.",
        m.anchor_fee_bumps.load(Ordering::Relaxed).to_string(),
    );
    metric(
        "veil_anchor_reorgs_total",
        "counter",
        "Anchors seen leaving the best chain.",
        m.anchor_reorgs.load(Ordering::Relaxed).to_string(),
    );
    metric(
        "veil_anchor_deep_reorgs_total",
        "counter",
        "Reorgs that took out an anchor buried past the reorg watch (re-broadcast in order).",
        anchorer.map_or(0, |a| a.deep_reorgs()).to_string(),
    );
    metric(
        "veil_anchor_errors_total",
        "counter",
        "Failed anchoring passes (Bitcoin Core unreachable, refusals).",
        m.anchor_errors.load(Ordering::Relaxed).to_string(),
    );
    metric(
        "veil_bridge_deposits_credited_total",
        "counter",
        "Peg-in outputs credited by this process.",
        m.bridge_credited.load(Ordering::Relaxed).to_string(),
    );
    metric(
        "veil_bridge_deposits_reorged_after_credit_total",
        "counter",
        "Credited peg-ins seen leaving the best chain (the reserve is short by them).",
        m.bridge_reorged_after_credit
            .load(Ordering::Relaxed)
            .to_string(),
    );
    if let Some(f) = anchorer.and_then(|a| a.bridge_figures().ok()) {
        metric(
            "veil_bridge_reserves_sat",
            "gauge",
            "The bridge's reserve: the newest anchor's change output.",
            f.reserves_sat.unwrap_or(0).to_string(),
        );
        metric(
            "veil_bridge_supply_sat",
            "gauge",
            "Shielded supply of the anchored batches: deposits - withdrawals - L2 fees.",
            f.supply_sat().to_string(),
        );
        metric(
            "veil_bridge_surplus_sat",
            "gauge",
            "Reserves - supply: the operator's float (negative is a shortfall).",
            f.surplus_sat().unwrap_or(0).to_string(),
        );
    }
    metric(
        "veil_proving_seconds_total",
        "counter",
        "Seconds spent proving batches.",
        format!("{:.6}", m.proving_seconds()),
    );
    write_family(
        &mut s,
        "veil_transfers_rejected_total",
        "counter",
        "Submissions refused, by error code.",
        m.rejections()
            .into_iter()
            .map(|(code, n)| (format!("code=\"{code}\""), n)),
    );
    if let Some(q) = proving_queue {
        q.render(&mut s);
    }
    warp::reply::with_header(s, "content-type", "text/plain; version=0.0.4").into_response()
}

/// Renders every rejection as the API's error JSON.
async fn recover(err: Rejection) -> Result<Response, Infallible> {
    use warp::reject::{
        InvalidHeader, InvalidQuery, LengthRequired, MethodNotAllowed, MissingHeader,
        PayloadTooLarge, UnsupportedMediaType,
    };
    let (status, code, message) = if err.is_not_found() {
        (
            StatusCode::NOT_FOUND,
            "not_found",
            "no such route".to_owned(),
        )
    } else if let Some(e) = err.find::<ApiReject>() {
        (e.status, e.code, e.message.clone())
    } else if err.find::<PayloadTooLarge>().is_some() {
        (
            StatusCode::PAYLOAD_TOO_LARGE,
            "body_too_large",
            format!("request body exceeds {MAX_BODY_BYTES} bytes"),
        )
    } else if err.find::<LengthRequired>().is_some() {
        (
            StatusCode::LENGTH_REQUIRED,
            "length_required",
            "a content-length header is required".to_owned(),
        )
    } else if err.find::<MethodNotAllowed>().is_some() {
        (
            StatusCode::METHOD_NOT_ALLOWED,
            "method_not_allowed",
            "method not allowed on this route".to_owned(),
        )
    } else if let Some(e) = err.find::<InvalidQuery>() {
        (StatusCode::BAD_REQUEST, "bad_query", e.to_string())
    } else if let Some(e) = err.find::<InvalidHeader>() {
        (StatusCode::BAD_REQUEST, "bad_header", e.to_string())
    } else if let Some(e) = err.find::<MissingHeader>() {
        (StatusCode::BAD_REQUEST, "bad_header", e.to_string())
    } else if let Some(e) = err.find::<UnsupportedMediaType>() {
        (
            StatusCode::UNSUPPORTED_MEDIA_TYPE,
            "unsupported_media_type",
            e.to_string(),
        )
    } else {
        tracing::error!(rejection = ?err, "unhandled rejection");
        (
            StatusCode::INTERNAL_SERVER_ERROR,
            "internal",
            "internal error".to_owned(),
        )
    };
    Ok(error_response(status, code, message))
}

/// The OpenAPI 3 document served at `GET /v1/openapi.json`.
pub const OPENAPI: &str = r##"{
  "openapi": "3.0.3",
  "info": {"title": "Veil sequencer API", "version": "1",
    "description": "Every error is {\"error\": {\"code\", \"message\"}}, the HTTP layer's own refusals included. Request heads are read within the header timeout ([http] header_timeout_ms, default 10000; 408 header_timeout) and at most max_head_bytes long (default 16384; 414 uri_too_long, 431 headers_too_large, 431 too_many_headers past 64 headers); a malformed head is 400 (malformed_request, bad_header, bad_uri, unsupported_http_version). Bodies are framed by one Content-Length (400 bad_content_length, 400 bad_transfer_encoding, 411 length_required for chunked), at most 65536 bytes (413 body_too_large), and must arrive within the body timeout (body_timeout_ms, default 30000; 408 body_timeout; a body cut short is 400 incomplete_body). JSON bodies must not repeat an object key (400 duplicate_key). Past max_connections open connections (default 256) a new one is answered 503 too_many_connections and closed. A 405 lists the route's methods in Allow. Keep-alive connections are served; an idle one is closed after the header timeout."},
  "components": {
    "securitySchemes": {"operator": {"type": "http", "scheme": "bearer"}},
    "schemas": {
      "Error": {"type": "object", "required": ["error"], "properties": {"error": {"type": "object",
        "required": ["code", "message"], "properties": {"code": {"type": "string"}, "message": {"type": "string"}}}}},
      "Field": {"type": "string", "pattern": "^(0x)?[0-9a-fA-F]{1,64}$", "description": "canonical BN254 scalar, hex"},
      "NotePath": {"type": "object", "description": "4-ary Merkle path (docs/design-changes.md): per level, leaf to root, the three other children in child order; the position's base-4 digits place the node",
        "required": ["position", "leaf", "root", "siblings"],
        "properties": {"position": {"$ref": "#/components/schemas/U64"}, "leaf": {"$ref": "#/components/schemas/Field"},
          "root": {"$ref": "#/components/schemas/Field"},
          "siblings": {"type": "array", "description": "D / 2 levels", "items": {"type": "array", "minItems": 3, "maxItems": 3,
            "items": {"$ref": "#/components/schemas/Field"}}}}},
      "U64": {"type": "integer", "minimum": 0, "maximum": 18446744073709551615},
      "Note": {"type": "object", "additionalProperties": false, "required": ["addr", "value", "rho", "r"],
        "properties": {"addr": {"$ref": "#/components/schemas/Field"}, "value": {"$ref": "#/components/schemas/U64"},
          "rho": {"$ref": "#/components/schemas/Field"}, "r": {"$ref": "#/components/schemas/Field"}}},
      "TransferRequest": {"type": "object", "additionalProperties": false,
        "required": ["nullifiers", "commitments", "public_in", "public_out", "fee", "dest", "deposit_ref", "ak", "nk",
          "inputs", "outputs", "signature", "ciphertexts"],
        "properties": {
          "nullifiers": {"type": "array", "minItems": 2, "maxItems": 2, "items": {"$ref": "#/components/schemas/Field"}},
          "commitments": {"type": "array", "minItems": 2, "maxItems": 2, "items": {"$ref": "#/components/schemas/Field"}},
          "public_in": {"$ref": "#/components/schemas/U64"},
          "public_out": {"$ref": "#/components/schemas/U64"},
          "fee": {"$ref": "#/components/schemas/U64"},
          "dest": {"$ref": "#/components/schemas/Field"},
          "deposit_ref": {"$ref": "#/components/schemas/Field"},
          "ak": {"type": "object", "additionalProperties": false, "required": ["x", "y"],
            "properties": {"x": {"$ref": "#/components/schemas/Field"}, "y": {"$ref": "#/components/schemas/Field"}}},
          "nk": {"$ref": "#/components/schemas/Field"},
          "inputs": {"type": "array", "minItems": 2, "maxItems": 2, "items": {"type": "object", "additionalProperties": false,
            "required": ["note", "position"], "properties": {"note": {"$ref": "#/components/schemas/Note"},
              "position": {"$ref": "#/components/schemas/U64"}}}},
          "outputs": {"type": "array", "minItems": 2, "maxItems": 2, "items": {"$ref": "#/components/schemas/Note"}},
          "signature": {"type": "string", "pattern": "^[0-9a-fA-F]{128}$"},
          "ciphertexts": {"type": "array", "minItems": 2, "maxItems": 2,
            "description": "epk || ciphertext per output, hex: both 89 bytes (no memo) or both 121 (memos); else 400 bad_ciphertext",
            "items": {"type": "string", "pattern": "^(0x)?([0-9a-fA-F]{178}|[0-9a-fA-F]{242})$"}},
          "withdrawal_script": {"type": "string", "pattern": "^(0x)?([0-9a-fA-F]{2})*$",
            "description": "A withdrawal's scriptPubKey (hex), whose hash is dest; required for withdrawals on nodes with Bitcoin. 400 withdrawal_script_missing, invalid_withdrawal_script, withdrawal_dest_mismatch, withdrawal_script (non-standard), withdrawal_dust, withdrawal_fee (fee below the output's Bitcoin fee at the bridge's withdrawal rate)"}}},
      "PublishedNote": {"type": "object", "required": ["position", "commitment", "rho", "ciphertext"],
        "properties": {"position": {"$ref": "#/components/schemas/U64"},
          "commitment": {"$ref": "#/components/schemas/Field"},
          "rho": {"allOf": [{"$ref": "#/components/schemas/Field"}], "description": "H(nf_1, j) of the transfer output: the decryptor's rho (not in the ciphertext)"},
          "ciphertext": {"type": "string", "description": "epk || ChaCha20-Poly1305(lead || value || rseed || [memo]) || tag, hex: 89 or 121 bytes"}}},
      "NotesPage": {"type": "object", "required": ["notes", "next"],
        "properties": {"notes": {"type": "array", "items": {"$ref": "#/components/schemas/PublishedNote"}},
          "next": {"$ref": "#/components/schemas/U64"}}},
      "Accepted": {"type": "object", "properties": {"id": {"type": "string"}, "status": {"type": "string", "enum": ["pending"]}}},
      "Anchor": {"type": "object", "description": "Bitcoin anchor of a batch (DESIGN 11)",
        "required": ["txid", "status", "confirmations", "versions"],
        "properties": {"txid": {"type": "string", "description": "the confirmed version, else the newest"},
          "status": {"type": "string", "enum": ["signed", "unconfirmed", "confirmed", "anchored", "reorged"]},
          "confirmations": {"$ref": "#/components/schemas/U64"},
          "block_hash": {"type": "string", "nullable": true}, "block_height": {"type": "integer", "nullable": true},
          "fee_sat": {"$ref": "#/components/schemas/U64"}, "vsize": {"type": "integer", "nullable": true},
          "versions": {"type": "array", "items": {"type": "string"}, "description": "every signed version (RBF bumps), oldest first"}}},
      "BatchSummary": {"type": "object", "description": "a batch in GET /v1/batches",
        "required": ["number", "status", "transfers", "public_in", "public_out", "fees", "new_state_root", "proven_at_ms", "proving_seconds", "anchor"],
        "properties": {"number": {"$ref": "#/components/schemas/U64"},
          "status": {"type": "string", "enum": ["sealed", "proven", "anchored"], "description": "anchored: its anchor has the required confirmations"},
          "transfers": {"type": "integer"}, "public_in": {"$ref": "#/components/schemas/U64"},
          "public_out": {"$ref": "#/components/schemas/U64"}, "fees": {"$ref": "#/components/schemas/U64"},
          "new_state_root": {"$ref": "#/components/schemas/Field"},
          "proven_at_ms": {"type": "integer", "nullable": true, "description": "Unix ms when the node stored the proof (null: not proven, or proven by a node version that did not record it)"},
          "proving_seconds": {"type": "number", "nullable": true, "description": "proving time (in-process, or a worker job from claim to result), recorded with the proof"},
          "anchor": {"type": "object", "nullable": true, "properties": {"txid": {"type": "string"},
            "status": {"type": "string"}, "confirmations": {"$ref": "#/components/schemas/U64"}, "fee_sat": {"type": "integer", "nullable": true}}}}}
    },
    "responses": {"Error": {"description": "error", "content": {"application/json": {"schema": {"$ref": "#/components/schemas/Error"}}}},
      "MethodNotAllowed": {"description": "method_not_allowed",
        "headers": {"Allow": {"description": "the route's methods", "schema": {"type": "string"}}},
        "content": {"application/json": {"schema": {"$ref": "#/components/schemas/Error"}}}}}
  },
  "paths": {
    "/v1/transfers": {"post": {"summary": "Submit a transfer", "requestBody": {"required": true,
      "content": {"application/json": {"schema": {"$ref": "#/components/schemas/TransferRequest"}}}},
      "responses": {"202": {"description": "accepted and durably stored",
        "content": {"application/json": {"schema": {"$ref": "#/components/schemas/Accepted"}}}},
        "400": {"$ref": "#/components/responses/Error"}, "403": {"$ref": "#/components/responses/Error"},
        "409": {"$ref": "#/components/responses/Error"}, "413": {"$ref": "#/components/responses/Error"},
        "422": {"$ref": "#/components/responses/Error"}}}},
    "/v1/transfers/{id}": {"get": {"summary": "Transfer status: pending, batched(n), proven(n), anchored(n, txid) or rejected(reason)",
      "parameters": [{"name": "id", "in": "path", "required": true, "schema": {"type": "string"}}],
      "responses": {"200": {"description": "status"}, "404": {"$ref": "#/components/responses/Error"}}}},
    "/v1/deposits": {"post": {"summary": "Operator-attested deposit (public_in > 0): nodes without Bitcoin, or with attested_deposits; 403 attested_deposits_disabled otherwise", "security": [{"operator": []}],
      "requestBody": {"required": true, "content": {"application/json": {"schema": {"$ref": "#/components/schemas/TransferRequest"}}}},
      "responses": {"202": {"description": "accepted"}, "400": {"$ref": "#/components/responses/Error"},
        "401": {"$ref": "#/components/responses/Error"}, "403": {"$ref": "#/components/responses/Error"}, "422": {"$ref": "#/components/responses/Error"}}}},
    "/v1/state": {"get": {"summary": "State root, tree roots and counts, heights (batch, proven, anchored), mempool size, shape (batch_size, depth)",
      "responses": {"200": {"description": "state"}}}},
    "/v1/notes": {"get": {"summary": "Published notes for wallet scanning",
      "parameters": [{"name": "from", "in": "query", "schema": {"$ref": "#/components/schemas/U64"}},
        {"name": "limit", "in": "query", "description": "page size, default 100, at most 1000 (above: 400 limit_out_of_range)",
          "schema": {"type": "integer", "minimum": 0, "maximum": 1000, "default": 100}}],
      "responses": {"200": {"description": "notes",
        "content": {"application/json": {"schema": {"$ref": "#/components/schemas/NotesPage"}}}},
        "400": {"$ref": "#/components/responses/Error"}}}},
    "/v1/notes/{pos}/path": {"get": {"summary": "Merkle path of a note position at the current root",
      "parameters": [{"name": "pos", "in": "path", "required": true, "schema": {"$ref": "#/components/schemas/U64"}}],
      "responses": {"200": {"description": "path", "content": {"application/json": {"schema": {"$ref": "#/components/schemas/NotePath"}}}},
        "404": {"$ref": "#/components/responses/Error"}}}},
    "/v1/nullifiers/{nf}": {"get": {"summary": "Whether a nullifier is spent or pending",
      "parameters": [{"name": "nf", "in": "path", "required": true, "schema": {"$ref": "#/components/schemas/Field"}}],
      "responses": {"200": {"description": "{spent, pending}"}, "400": {"$ref": "#/components/responses/Error"}}}},
    "/v1/batches/{n}": {"get": {"summary": "A sealed batch: public data, public inputs, proof (hex or null), withdrawal_scripts (per withdrawal in slot order: its scriptPubKey hex, whose hash is dest, or null if not known), anchor (Anchor or null)",
      "parameters": [{"name": "n", "in": "path", "required": true, "schema": {"$ref": "#/components/schemas/U64"}}],
      "responses": {"200": {"description": "batch"}, "404": {"$ref": "#/components/responses/Error"}}}},
    "/v1/bridge": {"get": {"summary": "The bridge (docs/bridge.md): {bitcoin, network, bridge_key (x-only hex), deposit_tag, deposits (attested | peg-in | peg-in+attested), deposit_confirmations, withdrawal_fee_rate_sat_vb, reserves_sat, supply_sat, surplus_sat, deposits_sat, withdrawals_sat, l2_fees_sat, swept_sat, paid_sat, peg_ins (by status)}; bitcoin false without anchoring",
      "responses": {"200": {"description": "bridge"}}}},
    "/v1/bridge/watch": {"post": {"summary": "Follow a Veil address's peg-in output: body {address}; answers {deposit_address, new}",
      "responses": {"200": {"description": "watched"}, "400": {"$ref": "#/components/responses/Error"},
        "404": {"$ref": "#/components/responses/Error"}, "503": {"$ref": "#/components/responses/Error"}}}},
    "/v1/bridge/deposits": {"get": {"summary": "A Veil address's peg-ins: ?address=; {deposits: [{outpoint, value, confirmations, required, status, transfer_id}]}",
      "parameters": [{"name": "address", "in": "query", "required": true, "schema": {"type": "string"}}],
      "responses": {"200": {"description": "deposits"}, "400": {"$ref": "#/components/responses/Error"},
        "404": {"$ref": "#/components/responses/Error"}}}},
    "/v1/anchor": {"post": {"summary": "Operator: run an anchoring pass now; reports heights, the last error, the reorgs seen (count, deep count, last: batches, depth, fork height) and every anchor",
      "security": [{"operator": []}],
      "responses": {"202": {"description": "pass requested; current anchoring status"},
        "401": {"$ref": "#/components/responses/Error"}, "409": {"$ref": "#/components/responses/Error"}}}},
    "/v1/batches": {"get": {"summary": "Recent batches for the explorer, newest first: {batch_height, proven_height, anchored_height, batch_size, depth, next_before (the next page's before, or null), batches: [BatchSummary]}",
      "parameters": [{"name": "limit", "in": "query", "description": "page size, default 20, 1 to 100 (else 400 limit_out_of_range)",
          "schema": {"type": "integer", "minimum": 1, "maximum": 100, "default": 20}},
        {"name": "before", "in": "query", "description": "only batches numbered below this (default: every sealed batch)",
          "schema": {"$ref": "#/components/schemas/U64"}}],
      "responses": {"200": {"description": "batches"}, "400": {"$ref": "#/components/responses/Error"}}}},
    "/v1/vk": {"get": {"summary": "The verifying-key file (vk-B{B}-D{D}.bin: header and compressed Groth16 key, docs/batch-file.md) the node's proofs verify against; its SHA-256 is the key's identity. 404 vk_unavailable on a node without a prover",
      "responses": {"200": {"description": "key file", "content": {"application/octet-stream": {}}}, "404": {"$ref": "#/components/responses/Error"}}}},
    "/": {"get": {"summary": "The batch explorer (HTML; its scripts, style and wasm verifier at /explorer/{app.js, verifier.js, style.css, veil_verifier.wasm}, 404 wasm_unavailable when the node was built without the wasm32 target)",
      "responses": {"200": {"description": "page", "content": {"text/html": {}}}}}},
    "/v1/openapi.json": {"get": {"summary": "This document", "responses": {"200": {"description": "OpenAPI 3"}}}},
    "/healthz": {"get": {"summary": "Liveness", "responses": {"200": {"description": "ok"}}}},
    "/metrics": {"get": {"summary": "Prometheus metrics", "responses": {"200": {"description": "text exposition format"}}}}
  }
}"##;

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn openapi_is_json_listing_every_route() {
        let doc: serde_json::Value = serde_json::from_str(OPENAPI).unwrap();
        let paths = doc["paths"].as_object().unwrap();
        for p in [
            "/v1/transfers",
            "/v1/transfers/{id}",
            "/v1/deposits",
            "/v1/state",
            "/v1/notes",
            "/v1/notes/{pos}/path",
            "/v1/nullifiers/{nf}",
            "/v1/batches/{n}",
            "/v1/anchor",
            "/v1/bridge",
            "/v1/bridge/watch",
            "/v1/bridge/deposits",
            "/v1/openapi.json",
            "/healthz",
            "/metrics",
            "/v1/batches",
            "/v1/vk",
            "/",
        ] {
            assert!(paths.contains_key(p), "{p} missing");
        }
        assert_eq!(paths.len(), 18);
        // Wallets scan notes with the rho of each (not in the ciphertext).
        let note = &doc["components"]["schemas"]["PublishedNote"];
        assert!(note["required"].as_array().unwrap().contains(&json!("rho")));
        assert_eq!(
            paths["/v1/notes"]["get"]["responses"]["200"]["content"]["application/json"]["schema"]
                ["$ref"],
            "#/components/schemas/NotesPage"
        );
    }

    #[test]
    fn status_json_shapes() {
        assert_eq!(
            status_json("a", &Status::Batched(3)),
            json!({"id": "a", "status": "batched", "batch": 3})
        );
        assert_eq!(
            status_json("a", &Status::Rejected("x".into()))["reason"],
            "x"
        );
        assert_eq!(status_json("a", &Status::Pending)["status"], "pending");
        assert_eq!(
            status_json("a", &Status::Anchored(2, "ff".into())),
            json!({"id": "a", "status": "anchored", "batch": 2, "txid": "ff"})
        );
    }
}
