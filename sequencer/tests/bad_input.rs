//! Bad input over HTTP: each malformed, invalid or unauthorised request gets its status and
//! `error.code`, and leaves `GET /v1/state` exactly as it was.

mod common;

use common::{body, config, shape, Api, TOKEN};
use serde_json::{json, Value};
use std::time::Duration;
use veil_circuits::transfer::{OutputSpec, PublicAmounts, Transfer};
use veil_fixtures::Scenario;

const MODULUS: &str = "0x30644e72e131a029b85045b68181585d2833e84879b9709143e1f593f0000001";

enum Req {
    Get(String),
    Post {
        path: &'static str,
        body: Vec<u8>,
        token: Option<&'static str>,
    },
    Other(reqwest::Method, &'static str),
}

fn post(v: &Value) -> Req {
    Req::Post {
        path: "/v1/transfers",
        body: serde_json::to_vec(v).unwrap(),
        token: None,
    }
}

fn raw(text: &str) -> Req {
    Req::Post {
        path: "/v1/transfers",
        body: text.as_bytes().to_vec(),
        token: None,
    }
}

fn deposit(v: &Value, token: Option<&'static str>) -> Req {
    Req::Post {
        path: "/v1/deposits",
        body: serde_json::to_vec(v).unwrap(),
        token,
    }
}

fn with(base: &Value, edit: impl FnOnce(&mut Value)) -> Value {
    let mut v = base.clone();
    edit(&mut v);
    v
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn bad_requests_are_refused_with_their_code_and_change_nothing() {
    let dir = tempfile::tempdir().unwrap();
    // Long max_wait: nothing seals unless two transfers wait.
    let running = veil_sequencer::start(&config(dir.path(), 600_000), None)
        .await
        .unwrap();
    let api = Api::new(running.addr);
    let mut sc = Scenario::new(shape(), 5);
    let alice = sc.new_key();
    let bob = sc.new_key();
    let d1 = sc.deposit(&alice, 1000);
    let d2 = sc.deposit(&alice, 500);
    let id1 = api.deposit(&d1).await;
    api.deposit(&d2).await;
    api.wait_status(&id1, &["batched"], Duration::from_secs(60))
        .await;
    sc.apply(&[d1.clone(), d2.clone()]).unwrap();
    let notes = sc.unspent(&alice);
    assert_eq!(notes.iter().map(|n| n.position).collect::<Vec<_>>(), [0, 2]);
    // t1 spends note 0 and stays pending.
    let t1 = sc.spend(&alice, &notes[..1], &bob, 100, 0, 0);
    api.submit(&t1).await;
    // A valid, unsubmitted transfer of note 2 to mutate.
    let good = sc.spend(&alice, &notes[1..2], &bob, 100, 0, 0);
    let g = body(&good);
    let (_, state) = api.get("/v1/state").await;
    assert_eq!(state["mempool_size"], 1);
    assert_eq!(state["batch_height"], 1);

    let double_spend = sc.spend(&alice, &notes[..1], &bob, 50, 0, 0);
    let unbalanced = Transfer::create(
        &alice,
        [notes[1], Transfer::dummy_input(&alice, sc.rng())],
        [
            OutputSpec {
                to: bob.payment_address(),
                value: 400,
            },
            OutputSpec {
                to: alice.payment_address(),
                value: 200,
            },
        ],
        PublicAmounts::default(),
        sc.rng(),
    );
    let dummy = Transfer::dummy_input(&alice, sc.rng());
    let same_nullifier = Transfer::create(
        &alice,
        [dummy, dummy],
        [
            OutputSpec {
                to: bob.payment_address(),
                value: 0,
            },
            OutputSpec {
                to: bob.payment_address(),
                value: 0,
            },
        ],
        PublicAmounts::default(),
        sc.rng(),
    );
    let withdrawal = sc.spend(&alice, &notes[1..2], &bob, 100, 50, 0);
    let d3 = sc.deposit(&bob, 77);
    let fee_marker = with(&g, |v| v["fee"] = json!(123456789));
    let fee_text = serde_json::to_string(&fee_marker).unwrap();
    assert!(fee_text.contains("\"fee\":123456789"));

    let cases: Vec<(&str, Req, u16, &str)> = vec![
        ("truncated JSON", raw("{\"nullifiers\":"), 400, "bad_json"),
        ("not JSON", raw("hello"), 400, "bad_json"),
        (
            "empty body, no content-length",
            raw(""),
            411,
            "length_required",
        ),
        ("whitespace body", raw(" "), 400, "bad_json"),
        (
            "number too large for JSON",
            raw(&fee_text.replace("123456789", "1e400")),
            400,
            "bad_json",
        ),
        ("array body", raw("[]"), 400, "invalid_body"),
        (
            "wrong type",
            post(&with(&g, |v| v["public_in"] = json!("5"))),
            400,
            "invalid_body",
        ),
        (
            "unknown field",
            post(&with(&g, |v| v["memo"] = json!("hi"))),
            400,
            "invalid_body",
        ),
        (
            "missing field",
            post(&with(&g, |v| {
                v.as_object_mut().unwrap().remove("signature");
            })),
            400,
            "invalid_body",
        ),
        (
            "three nullifiers",
            post(&with(&g, |v| {
                v["nullifiers"].as_array_mut().unwrap().push(json!("0x1"))
            })),
            400,
            "invalid_body",
        ),
        (
            "oversized body",
            raw(&format!("{{\"pad\":\"{}\"}}", "a".repeat(100 * 1024))),
            413,
            "body_too_large",
        ),
        (
            "bad hex",
            post(&with(&g, |v| v["nullifiers"][0] = json!("0xnothex"))),
            400,
            "bad_hex",
        ),
        (
            "non-canonical field element",
            post(&with(&g, |v| v["commitments"][1] = json!(MODULUS))),
            400,
            "non_canonical_field",
        ),
        (
            "value 2^64 as a JSON number",
            raw(&fee_text.replace("123456789", "18446744073709551616")),
            400,
            "value_out_of_range",
        ),
        (
            "negative value",
            post(&with(&g, |v| v["outputs"][0]["value"] = json!(-1))),
            400,
            "value_out_of_range",
        ),
        (
            "fractional value",
            post(&with(&g, |v| v["fee"] = json!(0.5))),
            400,
            "not_an_integer",
        ),
        (
            "integral value written with a fraction",
            raw(&fee_text.replace("123456789", "100.0")),
            400,
            "not_an_integer",
        ),
        (
            "integral value written with an exponent",
            raw(&fee_text.replace("123456789", "1e2")),
            400,
            "not_an_integer",
        ),
        (
            "duplicate key, last value valid",
            raw(&fee_text
                .replace("123456789", "0")
                .replacen('{', "{\"fee\":12345,", 1)),
            400,
            "duplicate_key",
        ),
        (
            "duplicate key in a nested object",
            raw(&serde_json::to_string(&g).unwrap().replacen(
                "\"rho\":",
                "\"rho\":\"0x1\",\"rho\":",
                1,
            )),
            400,
            "duplicate_key",
        ),
        (
            "point not on curve",
            post(&with(&g, |v| v["ak"]["x"] = json!("0x5"))),
            400,
            "bad_point",
        ),
        (
            "short signature",
            post(&with(&g, |v| v["signature"] = json!("abcd"))),
            400,
            "bad_hex",
        ),
        (
            "malformed signature",
            post(&with(&g, |v| v["signature"] = json!("ff".repeat(64)))),
            400,
            "malformed_signature",
        ),
        (
            "short ciphertext",
            post(&with(&g, |v| v["ciphertexts"][1] = json!("00ff"))),
            400,
            "bad_ciphertext",
        ),
        (
            "ciphertext of the old 152-byte format",
            post(&with(&g, |v| v["ciphertexts"][0] = json!("00".repeat(152)))),
            400,
            "bad_ciphertext",
        ),
        (
            "ciphertexts of two lengths",
            post(&with(&g, |v| v["ciphertexts"][0] = json!("00".repeat(121)))),
            400,
            "bad_ciphertext",
        ),
        (
            "duplicate submission",
            post(&body(&t1)),
            409,
            "duplicate_transfer",
        ),
        (
            "double spend vs mempool",
            post(&body(&double_spend)),
            422,
            "already_spent",
        ),
        (
            "bad signature",
            post(&with(&g, |v| {
                v["signature"] = json!(hex::encode(t1.signature.to_bytes()))
            })),
            422,
            "bad_signature",
        ),
        ("unbalanced", post(&body(&unbalanced)), 422, "unbalanced"),
        (
            "wrong commitment",
            post(&with(&g, |v| v["commitments"][0] = json!("0x1234"))),
            422,
            "wrong_commitment",
        ),
        (
            "unknown note",
            post(&with(&g, |v| v["inputs"][0]["position"] = json!(1))),
            422,
            "unknown_note",
        ),
        (
            "not owner",
            post(&with(&g, |v| v["inputs"][0]["note"]["addr"] = json!("0x5"))),
            422,
            "not_owner",
        ),
        (
            "wrong nullifier",
            post(&with(&g, |v| v["nullifiers"][1] = json!("0x5"))),
            422,
            "wrong_nullifier",
        ),
        (
            "wrong output rho",
            post(&with(&g, |v| v["outputs"][0]["rho"] = json!("0x5"))),
            422,
            "wrong_output_rho",
        ),
        (
            "duplicate nullifier",
            post(&body(&same_nullifier)),
            422,
            "duplicate_nullifier",
        ),
        (
            "withdrawal without destination",
            post(&with(&body(&withdrawal), |v| v["dest"] = json!("0x0"))),
            422,
            "withdrawal_destination",
        ),
        (
            "withdrawal script of another dest",
            post(&with(&body(&withdrawal), |v| {
                v["withdrawal_script"] = json!(format!("0014{}", "11".repeat(20)))
            })),
            400,
            "withdrawal_dest_mismatch",
        ),
        (
            "withdrawal script not hex",
            post(&with(&body(&withdrawal), |v| {
                v["withdrawal_script"] = json!("zz")
            })),
            400,
            "invalid_withdrawal_script",
        ),
        (
            "withdrawal script on a transfer withdrawing nothing",
            post(&with(&g, |v| v["withdrawal_script"] = json!("0014"))),
            400,
            "invalid_withdrawal_script",
        ),
        (
            "watch without bitcoin",
            Req::Post {
                path: "/v1/bridge/watch",
                body: br#"{"address": "veilrt1x"}"#.to_vec(),
                token: None,
            },
            404,
            "no_bitcoin",
        ),
        (
            "peg-ins without bitcoin",
            Req::Get("/v1/bridge/deposits?address=veilrt1x".into()),
            404,
            "no_bitcoin",
        ),
        (
            "wrong method on watch",
            Req::Other(reqwest::Method::GET, "/v1/bridge/watch"),
            405,
            "method_not_allowed",
        ),
        (
            "deposit as a transfer",
            post(&body(&d3)),
            403,
            "deposit_not_allowed",
        ),
        (
            "deposit without token",
            deposit(&body(&d3), None),
            401,
            "unauthorized",
        ),
        (
            "deposit with wrong token",
            deposit(&body(&d3), Some("wrong")),
            401,
            "unauthorized",
        ),
        (
            "deposit token prefix",
            deposit(&body(&d3), Some("test-operator-toke")),
            401,
            "unauthorized",
        ),
        (
            "not a deposit",
            deposit(&g, Some(TOKEN)),
            400,
            "not_a_deposit",
        ),
        (
            "deposit without reference",
            deposit(
                &with(&body(&d3), |v| v["deposit_ref"] = json!("0x0")),
                Some(TOKEN),
            ),
            422,
            "deposit_reference",
        ),
        (
            "unknown route",
            Req::Get("/v1/nope".into()),
            404,
            "not_found",
        ),
        // `/` is the batch explorer; other root paths are not.
        (
            "unknown root route",
            Req::Get("/index.php".into()),
            404,
            "not_found",
        ),
        (
            "unknown explorer asset",
            Req::Get("/explorer/keys.json".into()),
            404,
            "not_found",
        ),
        (
            "wrong method on the explorer",
            Req::Other(reqwest::Method::POST, "/"),
            405,
            "method_not_allowed",
        ),
        (
            "wrong method on state",
            Req::Other(reqwest::Method::POST, "/v1/state"),
            405,
            "method_not_allowed",
        ),
        (
            "wrong method on transfers",
            Req::Other(reqwest::Method::DELETE, "/v1/transfers"),
            405,
            "method_not_allowed",
        ),
        (
            "unknown transfer",
            Req::Get("/v1/transfers/deadbeef".into()),
            404,
            "transfer_not_found",
        ),
        (
            "nullifier bad hex",
            Req::Get("/v1/nullifiers/0xzz".into()),
            400,
            "bad_hex",
        ),
        (
            "nullifier non-canonical",
            Req::Get(format!("/v1/nullifiers/{MODULUS}")),
            400,
            "non_canonical_field",
        ),
        (
            "unknown batch",
            Req::Get("/v1/batches/99".into()),
            404,
            "batch_not_found",
        ),
        (
            "bad notes query",
            Req::Get("/v1/notes?from=abc".into()),
            400,
            "bad_query",
        ),
        (
            "notes page above the limit",
            Req::Get("/v1/notes?limit=1001".into()),
            400,
            "limit_out_of_range",
        ),
        (
            "path beyond the tree",
            Req::Get("/v1/notes/200/path".into()),
            404,
            "note_not_found",
        ),
    ];
    assert!(cases.len() >= 25);
    for (label, req, status, code) in cases {
        let (s, v) = match req {
            Req::Get(path) => api.get(&path).await,
            Req::Post { path, body, token } => api.post_raw(path, body, token).await,
            Req::Other(method, path) => {
                let resp = api
                    .client
                    .request(method, format!("{}{path}", api.base))
                    .send()
                    .await
                    .unwrap();
                let s = resp.status().as_u16();
                (s, resp.json::<Value>().await.unwrap())
            }
        };
        assert_eq!(s, status, "{label}: {v}");
        assert_eq!(v["error"]["code"], code, "{label}: {v}");
        assert!(
            v["error"]["message"]
                .as_str()
                .is_some_and(|m| !m.is_empty()),
            "{label}: {v}"
        );
        let (_, now) = api.get("/v1/state").await;
        assert_eq!(now, state, "{label} changed the state");
    }
    // The refusals are counted by code.
    let (_, metrics) = api.get("/metrics").await;
    let text = metrics.as_str().unwrap();
    assert!(
        text.contains("veil_transfers_rejected_total{code=\"bad_json\"} 4"),
        "{text}"
    );
    assert!(
        text.contains("veil_transfers_rejected_total{code=\"already_spent\"} 1"),
        "{text}"
    );
    // The largest page is served.
    let (s, v) = api.get("/v1/notes?limit=1000").await;
    assert_eq!(s, 200, "{v}");
    // The valid transfer is still accepted afterwards (nothing was poisoned).
    let (s, _) = api.post("/v1/transfers", &g, None).await;
    assert_eq!(s, 202);
    running.stop().await.unwrap();
}
