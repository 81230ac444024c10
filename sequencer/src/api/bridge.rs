//! The bridge's endpoints (`docs/bridge.md`): `GET /v1/bridge` (the bridge key and its
//! figures), `POST /v1/bridge/watch` (a wallet asks the node to follow its deposit address),
//! `GET /v1/bridge/deposits?address=` (that address's peg-ins and their confirmations), and the
//! bridge's admission rules for `POST /v1/transfers` (a withdrawal names its script, Bitcoin
//! must relay its output, its fee pays the output) and `POST /v1/deposits` (attested deposits
//! only on nodes without Bitcoin, unless configured).

use std::sync::Arc;

use bitcoin::hashes::Hash;
use bitcoin::{FeeRate, ScriptBuf, Txid};
use serde::Deserialize;
use serde_json::json;
use veil_bitcoin::bridge::deposit_script_pubkey;
use veil_bitcoin::bridge::flows::check_withdrawal;
use veil_bitcoin::refs::withdrawal_dest;
use veil_circuits::field;
use veil_circuits::keys::PaymentAddress;
use veil_circuits::Transfer;
use warp::http::StatusCode;
use warp::reply::Response;

use super::{error_response, internal, json_response, ApiContext};
use crate::store::bridge::WatchedAddress;

/// Most deposit addresses one node follows (each costs a lookup per scanned output).
pub const MAX_WATCHED: usize = 100_000;

/// An API refusal: status, code, message.
pub(super) type Refusal = (StatusCode, &'static str, String);

/// The bridge's admission rules for a transfer: a withdrawal on a node with Bitcoin must give
/// the script whose hash is its `dest`, a standard one, paying at least its dust limit, with a
/// fee that pays the output at the bridge's withdrawal rate. The checked script is remembered
/// (by `dest`) for the anchor that pays it.
pub(super) fn admit_withdrawal(
    ctx: &ApiContext,
    transfer: &Transfer,
    script_hex: Option<&str>,
) -> Result<(), Refusal> {
    let p = &transfer.public;
    let script = match script_hex {
        None if p.public_out > 0 && ctx.anchorer.is_some() => {
            return Err((
                StatusCode::BAD_REQUEST,
                "withdrawal_script_missing",
                "a withdrawal must give its withdrawal_script: the anchor pays it".into(),
            ))
        }
        None => return Ok(()),
        Some(h) => ScriptBuf::from_bytes(hex::decode(h.trim_start_matches("0x")).map_err(|e| {
            (
                StatusCode::BAD_REQUEST,
                "invalid_withdrawal_script",
                format!("withdrawal_script is not hex: {e}"),
            )
        })?),
    };
    if p.public_out == 0 {
        return Err((
            StatusCode::BAD_REQUEST,
            "invalid_withdrawal_script",
            "withdrawal_script given for a transfer that withdraws nothing".into(),
        ));
    }
    if withdrawal_dest(&script) != p.dest {
        return Err((
            StatusCode::BAD_REQUEST,
            "withdrawal_dest_mismatch",
            "dest is not the hash of withdrawal_script".into(),
        ));
    }
    // Without Bitcoin nothing pays the output: only its form is checked.
    let rate = ctx
        .anchorer
        .as_deref()
        .map_or(FeeRate::ZERO, |a| a.settings().withdrawal_fee_rate);
    check_withdrawal(&script, p.public_out, p.fee, rate)
        .map_err(|e| (StatusCode::BAD_REQUEST, e.code(), e.to_string()))?;
    ctx.node
        .store()
        .put_withdrawal_script(&field::to_bytes_be(&p.dest), script.as_bytes())
        .map_err(|e| {
            tracing::error!(error = %e, "storing a withdrawal script failed");
            (
                StatusCode::SERVICE_UNAVAILABLE,
                "unavailable",
                "the node cannot store the withdrawal now; retry".into(),
            )
        })
}

/// `POST /v1/deposits` on a node with Bitcoin: deposits come from the peg-in watcher, so the
/// operator's attested deposits are refused unless `attested_deposits` is set.
pub(super) fn attested_deposits_refused(ctx: &ApiContext) -> Option<Response> {
    let a = ctx.anchorer.as_deref()?;
    if a.settings().attested_deposits {
        return None;
    }
    Some(error_response(
        StatusCode::FORBIDDEN,
        "attested_deposits_disabled",
        "this node credits deposits from Bitcoin (peg-in addresses: GET /v1/bridge); attested \
         deposits are off",
    ))
}

/// `GET /v1/bridge`: what a wallet needs to derive its peg-in address, how deposits are
/// credited, and the bridge's figures.
pub(super) async fn get_bridge(ctx: Arc<ApiContext>) -> Response {
    let Some(a) = ctx.anchorer.clone() else {
        return json_response(
            StatusCode::OK,
            &json!({"bitcoin": false, "deposits": "attested"}),
        );
    };
    let (key, network) = a.bridge_key();
    let s = a.settings();
    let mut v = json!({
        "bitcoin": true,
        "network": network.to_string(),
        "bridge_key": hex::encode(key.serialize()),
        "deposit_tag": veil_bitcoin::bridge::DEPOSIT_TAG,
        "deposits": if s.attested_deposits { "peg-in+attested" } else { "peg-in" },
        "deposit_confirmations": s.deposit_confirmations,
        "withdrawal_fee_rate_sat_vb": s.withdrawal_fee_rate.to_sat_per_vb_ceil(),
    });
    match tokio::task::spawn_blocking(move || a.bridge_figures()).await {
        Ok(Ok(f)) => {
            if let (Some(o), serde_json::Value::Object(fig)) = (v.as_object_mut(), f.json()) {
                o.extend(fig);
            }
            json_response(StatusCode::OK, &v)
        }
        Ok(Err(e)) => internal(e),
        Err(e) => internal(e),
    }
}

/// Body of `POST /v1/bridge/watch`.
#[derive(Debug, Deserialize)]
#[serde(deny_unknown_fields)]
pub(super) struct WatchRequest {
    address: String,
}

fn no_bitcoin() -> Response {
    error_response(
        StatusCode::NOT_FOUND,
        "no_bitcoin",
        "this node runs without Bitcoin: there are no peg-in addresses",
    )
}

/// A Veil payment address of either network (`veil1...` or `veilrt1...`).
fn parse_address(s: &str) -> Result<PaymentAddress, String> {
    use veil_circuits::keys::Network;
    PaymentAddress::decode(s.trim(), Network::Regtest)
        .or_else(|_| PaymentAddress::decode(s.trim(), Network::Mainnet))
        .map_err(|e| format!("address: {e}"))
}

fn bad_address(message: String) -> Response {
    error_response(StatusCode::BAD_REQUEST, "invalid_address", message)
}

/// `POST /v1/bridge/watch {"address"}`: follow the address's peg-in output from now on;
/// answers the deposit address (the wallet checks it against its own derivation).
pub(super) async fn post_watch(body: bytes::Bytes, ctx: Arc<ApiContext>) -> Response {
    let Some(a) = ctx.anchorer.clone() else {
        return no_bitcoin();
    };
    let req: WatchRequest = match serde_json::from_slice(&body) {
        Ok(r) => r,
        Err(e) => return error_response(StatusCode::BAD_REQUEST, "invalid_body", e.to_string()),
    };
    let to = match parse_address(&req.address) {
        Ok(t) => t,
        Err(m) => return bad_address(m),
    };
    let (key, network) = a.bridge_key();
    let secp = bitcoin::secp256k1::Secp256k1::verification_only();
    let script = match deposit_script_pubkey(&secp, &key, &to) {
        Ok(s) => s,
        Err(e) => return bad_address(e.to_string()),
    };
    let address = match bitcoin::Address::from_script(&script, network) {
        Ok(a) => a,
        Err(e) => return internal(e),
    };
    let node = ctx.node.clone();
    let owner = WatchedAddress {
        addr: field::to_bytes_be(&to.addr),
        pk_enc: to.pk_enc,
    };
    let stored = tokio::task::spawn_blocking(move || {
        let store = node.store();
        if store.watched()?.len() >= MAX_WATCHED {
            return Ok(None);
        }
        store.watch(script.as_bytes(), &owner).map(Some)
    })
    .await;
    match stored {
        Ok(Ok(Some(new))) => {
            if new {
                tracing::info!(deposit_address = %address, "watching a new peg-in address");
            }
            json_response(
                StatusCode::OK,
                &json!({"deposit_address": address.to_string(), "new": new}),
            )
        }
        Ok(Ok(None)) => error_response(
            StatusCode::SERVICE_UNAVAILABLE,
            "watch_list_full",
            format!("this node already follows {MAX_WATCHED} deposit addresses"),
        ),
        Ok(Err(e)) => internal(e),
        Err(e) => internal(e),
    }
}

/// Query of `GET /v1/bridge/deposits`.
#[derive(Debug, Deserialize)]
#[serde(deny_unknown_fields)]
pub(super) struct DepositsQuery {
    address: String,
}

/// `GET /v1/bridge/deposits?address=`: the address's peg-ins, with their confirmations.
pub(super) async fn get_deposits(q: DepositsQuery, ctx: Arc<ApiContext>) -> Response {
    let Some(a) = ctx.anchorer.clone() else {
        return no_bitcoin();
    };
    let to = match parse_address(&q.address) {
        Ok(t) => t,
        Err(m) => return bad_address(m),
    };
    let addr = field::to_bytes_be(&to.addr);
    let node = ctx.node.clone();
    let deposits = match tokio::task::spawn_blocking(move || node.store().deposits()).await {
        Ok(Ok(d)) => d,
        Ok(Err(e)) => return internal(e),
        Err(e) => return internal(e),
    };
    let tip = a.bitcoin_height();
    let required = a.settings().deposit_confirmations;
    let items: Vec<_> = deposits
        .into_iter()
        .filter(|d| d.owner.addr == addr && d.owner.pk_enc == to.pk_enc)
        .map(|d| {
            let confirmations = match (d.block_height, tip) {
                (Some(h), Some(t)) => (t + 1).saturating_sub(h),
                _ => 0,
            };
            json!({
                "outpoint": format!("{}:{}", Txid::from_byte_array(d.txid), d.vout),
                "value": d.value,
                "confirmations": confirmations,
                "required": required,
                "status": d.status.as_str(),
                "transfer_id": d.transfer_id,
            })
        })
        .collect();
    json_response(StatusCode::OK, &json!({"deposits": items}))
}
