//! Unit tests of the RPC client against a canned HTTP server (no Bitcoin Core needed).

use super::*;
use std::io::{Read, Write};
use std::net::TcpListener;

#[test]
fn fee_rate_conversion() {
    assert_eq!(
        btc_per_kvb_to_fee_rate(0.00001),
        FeeRate::from_sat_per_vb(1).unwrap()
    );
    assert_eq!(
        btc_per_kvb_to_fee_rate(0.0001),
        FeeRate::from_sat_per_vb(10).unwrap()
    );
    assert_eq!(btc_per_kvb_to_fee_rate(0.00001001).to_sat_per_kwu(), 251);
}

fn closed_port() -> u16 {
    let l = TcpListener::bind("127.0.0.1:0").unwrap();
    l.local_addr().unwrap().port()
}

#[tokio::test]
async fn node_down_after_retries() {
    let mut config = RpcConfig::new(
        format!("http://127.0.0.1:{}", closed_port()),
        RpcAuth::UserPass {
            user: "u".into(),
            password: "p".into(),
        },
    );
    config.retries = 2;
    config.backoff = Duration::from_millis(10);
    let rpc = BitcoinRpc::new(config).unwrap();
    let start = std::time::Instant::now();
    match rpc.get_block_count().await {
        Err(RpcError::NodeDown { attempts, .. }) => assert_eq!(attempts, 3),
        other => panic!("expected NodeDown, got {other:?}"),
    }
    // Backoff of 10 ms then 20 ms.
    assert!(start.elapsed() >= Duration::from_millis(30));
}

#[tokio::test]
async fn missing_cookie_is_a_cookie_error() {
    let dir = tempfile::tempdir().unwrap();
    let rpc = BitcoinRpc::new(RpcConfig::new(
        format!("http://127.0.0.1:{}", closed_port()),
        RpcAuth::CookieFile(dir.path().join(".cookie")),
    ))
    .unwrap();
    assert!(matches!(
        rpc.get_block_count().await,
        Err(RpcError::Cookie { .. })
    ));
    std::fs::write(dir.path().join(".cookie"), "no-colon").unwrap();
    assert!(matches!(
        rpc.get_block_count().await,
        Err(RpcError::Cookie { .. })
    ));
}

/// A one-shot HTTP server answering each connection with a canned response; returns the
/// requests it saw.
fn canned_server(responses: Vec<String>) -> (String, std::thread::JoinHandle<Vec<String>>) {
    let listener = TcpListener::bind("127.0.0.1:0").unwrap();
    let url = format!("http://{}", listener.local_addr().unwrap());
    let handle = std::thread::spawn(move || {
        let mut seen = Vec::new();
        for response in responses {
            let (mut stream, _) = listener.accept().unwrap();
            let mut buf = Vec::new();
            let mut chunk = [0u8; 4096];
            // Read headers and the Content-Length body.
            loop {
                let n = stream.read(&mut chunk).unwrap();
                buf.extend_from_slice(&chunk[..n]);
                let text = String::from_utf8_lossy(&buf);
                if let Some(end) = text.find("\r\n\r\n") {
                    let len = text[..end]
                        .lines()
                        .find_map(|l| {
                            l.to_ascii_lowercase()
                                .strip_prefix("content-length:")
                                .map(|v| v.trim().parse::<usize>().unwrap())
                        })
                        .unwrap_or(0);
                    if buf.len() >= end + 4 + len {
                        break;
                    }
                }
                if n == 0 {
                    break;
                }
            }
            seen.push(String::from_utf8_lossy(&buf).into_owned());
            stream.write_all(response.as_bytes()).unwrap();
        }
        seen
    });
    (url, handle)
}

fn http(status: &str, body: &str) -> String {
    format!(
        "HTTP/1.1 {status}\r\nContent-Type: application/json\r\nContent-Length: {}\r\nConnection: close\r\n\r\n{body}",
        body.len()
    )
}

#[tokio::test]
async fn cookie_is_reread_on_every_request() {
    let ok = r#"{"result":5,"error":null,"id":1}"#;
    let (url, server) = canned_server(vec![http("200 OK", ok), http("200 OK", ok)]);
    let dir = tempfile::tempdir().unwrap();
    let cookie = dir.path().join(".cookie");
    std::fs::write(&cookie, "__cookie__:one").unwrap();
    let rpc = BitcoinRpc::new(RpcConfig::new(url, RpcAuth::CookieFile(cookie.clone()))).unwrap();
    assert_eq!(rpc.get_block_count().await.unwrap(), 5);
    // The node restarted and wrote a new cookie.
    std::fs::write(&cookie, "__cookie__:two\n").unwrap();
    assert_eq!(rpc.get_block_count().await.unwrap(), 5);
    let seen = server.join().unwrap();
    assert!(
        seen[0].contains("X19jb29raWVfXzpvbmU="),
        "basic auth __cookie__:one"
    );
    assert!(
        seen[1].contains("X19jb29raWVfXzp0d28="),
        "basic auth __cookie__:two"
    );
}

#[tokio::test]
async fn wrong_chain_warmup_retry_rejection_and_auth() {
    let info = r#"{"result":{"chain":"main","blocks":1,"headers":1,"bestblockhash":"0000000000000000000000000000000000000000000000000000000000000000","initialblockdownload":false},"error":null,"id":1}"#;
    let warmup =
        r#"{"result":null,"error":{"code":-28,"message":"Loading block index..."},"id":2}"#;
    let rejected =
        r#"{"result":null,"error":{"code":-26,"message":"min relay fee not met"},"id":4}"#;
    let (url, server) = canned_server(vec![
        http("200 OK", info),
        http("500 Internal Server Error", warmup),
        http("200 OK", r#"{"result":7,"error":null,"id":3}"#),
        http("500 Internal Server Error", rejected),
        http("401 Unauthorized", ""),
    ]);
    let mut config = RpcConfig::new(
        url,
        RpcAuth::UserPass {
            user: "rpc".into(),
            password: "secret".into(),
        },
    );
    config.backoff = Duration::from_millis(5);
    let rpc = BitcoinRpc::new(config).unwrap();
    match rpc.check_chain(Network::Regtest).await {
        Err(RpcError::WrongChain { expected, found }) => {
            assert_eq!(expected, "regtest");
            assert_eq!(found, "main");
        }
        other => panic!("expected WrongChain, got {other:?}"),
    }
    assert_eq!(rpc.get_block_count().await.unwrap(), 7);
    let tx = Transaction {
        version: bitcoin::transaction::Version::TWO,
        lock_time: bitcoin::absolute::LockTime::ZERO,
        input: vec![],
        output: vec![],
    };
    match rpc.send_raw_transaction(&tx).await {
        Err(RpcError::Rejected { reason, .. }) => assert_eq!(reason, "min relay fee not met"),
        other => panic!("expected Rejected, got {other:?}"),
    }
    assert!(matches!(
        rpc.get_block_count().await,
        Err(RpcError::Unauthorized { .. })
    ));
    let seen = server.join().unwrap();
    assert!(seen[0].contains("\"method\":\"getblockchaininfo\""));
    // Basic auth for rpc:secret.
    assert!(seen[0].contains("cnBjOnNlY3JldA=="));
    assert!(seen[2].contains("\"method\":\"getblockcount\""));
}

#[tokio::test]
async fn block_headers_off_the_best_chain_and_unknown_blocks() {
    let stale = "11".repeat(32);
    let parent = "22".repeat(32);
    let header = |confirmations: i64| {
        format!(
            r#"{{"result":{{"hash":"{stale}","confirmations":{confirmations},"height":103,"version":536870912,"previousblockhash":"{parent}","nTx":2}},"error":null,"id":1}}"#
        )
    };
    let unknown = r#"{"result":null,"error":{"code":-5,"message":"Block not found"},"id":3}"#;
    let (url, server) = canned_server(vec![
        http("200 OK", &header(-1)),
        http("200 OK", &header(4)),
        http("500 Internal Server Error", unknown),
    ]);
    let rpc = BitcoinRpc::new(RpcConfig::new(
        url,
        RpcAuth::UserPass {
            user: "rpc".into(),
            password: "secret".into(),
        },
    ))
    .unwrap();
    let hash: BlockHash = stale.parse().unwrap();
    let h = rpc.get_block_header(&hash).await.unwrap().unwrap();
    assert_eq!(h.hash, hash);
    assert_eq!(h.height, 103);
    assert_eq!(h.previous, Some(parent.parse().unwrap()));
    assert!(!h.in_best_chain(), "confirmations -1: left the best chain");
    let h = rpc.get_block_header(&hash).await.unwrap().unwrap();
    assert!(h.in_best_chain());
    assert!(rpc.get_block_header(&hash).await.unwrap().is_none());
    let seen = server.join().unwrap();
    assert!(seen[0].contains("\"method\":\"getblockheader\""));
    assert!(seen[0].contains(&stale));
}
