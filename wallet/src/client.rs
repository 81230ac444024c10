//! A blocking JSON client of the sequencer's HTTP API (DESIGN §9) with connect and request
//! timeouts. Every failure is a typed [`ClientError`]; a refusal by the node carries its
//! `{"error": {"code", "message"}}`.

use std::time::Duration;

use ark_bn254::Fr;
use serde::de::DeserializeOwned;
use serde::{Deserialize, Serialize};
use veil_circuits::batch::BatchPublicInputs;
use veil_circuits::field;
use veil_circuits::transfer::TransferPublic;
use veil_circuits::tree::MerklePath;
use veil_wire::TransferRequest;

/// Connect timeout.
pub const CONNECT_TIMEOUT: Duration = Duration::from_secs(5);
/// Whole-request timeout.
pub const REQUEST_TIMEOUT: Duration = Duration::from_secs(30);

/// Talking to the node failed.
#[derive(Debug, thiserror::Error)]
pub enum ClientError {
    /// The URL is not an absolute http(s) URL.
    #[error("bad node URL {0:?}: expected http://HOST:PORT")]
    BadUrl(String),
    /// Not a transfer id (hex SHA-256).
    #[error("{0:?} is not a transfer id (64 hex digits)")]
    BadId(String),
    /// Connection refused, timeout, broken response.
    #[error("cannot reach the node at {url}: {reason}")]
    Transport {
        /// Request URL.
        url: String,
        /// The innermost cause, in one phrase.
        reason: String,
        /// The client's error.
        error: reqwest::Error,
    },
    /// The node refused the request with its error JSON.
    #[error("node refused the request (HTTP {status}, {code}): {message}")]
    Api {
        /// HTTP status.
        status: u16,
        /// The API's error code.
        code: String,
        /// The API's message.
        message: String,
    },
    /// A non-success status without the API's error body.
    #[error("node answered HTTP {status} to {url}: {body}")]
    Http {
        /// Request URL.
        url: String,
        /// HTTP status.
        status: u16,
        /// Start of the body.
        body: String,
    },
    /// A success response that is not what the API documents.
    #[error("unexpected response from {url}: {reason}")]
    Decode {
        /// Request URL.
        url: String,
        /// What is wrong.
        reason: String,
    },
}

/// A transport error as one phrase: its innermost cause (reqwest's own message repeats its
/// whole chain), said to be a timeout or a failed connection when it is one.
fn transport(url: &str, error: reqwest::Error) -> ClientError {
    let mut inner: &dyn std::error::Error = &error;
    while let Some(next) = inner.source() {
        inner = next;
    }
    let root = inner.to_string();
    let reason = if error.is_timeout() {
        format!("timed out ({root})")
    } else if error.is_connect() {
        format!("connection failed: {root}")
    } else {
        root
    };
    ClientError::Transport {
        url: url.to_owned(),
        reason,
        error,
    }
}

impl ClientError {
    /// The API error code, when the node sent one.
    pub fn api_code(&self) -> Option<&str> {
        match self {
            ClientError::Api { code, .. } => Some(code),
            _ => None,
        }
    }
}

/// One published note of `GET /v1/notes`.
#[derive(Debug, Clone, PartialEq, Eq, Deserialize)]
pub struct PublishedNote {
    /// Leaf position.
    pub position: u64,
    /// `cm` (hex).
    pub commitment: String,
    /// `rho = H(nf_1, j)` of the output (hex): decryption needs it, the ciphertext omits it.
    pub rho: String,
    /// `epk || ciphertext` (hex).
    pub ciphertext: String,
}

/// A page of `GET /v1/notes`.
#[derive(Debug, Clone, PartialEq, Eq, Deserialize)]
pub struct NotesPage {
    /// Notes from `from`, in position order.
    pub notes: Vec<PublishedNote>,
    /// Where the next page starts.
    pub next: u64,
}

/// `GET /v1/notes/{pos}/path`.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct NotePath {
    /// Leaf position.
    pub position: u64,
    /// The leaf (the note's `cm`).
    pub leaf: Fr,
    /// The note root the path leads to.
    pub root: Fr,
    /// The path, leaf to root.
    pub path: MerklePath,
}

/// `GET /v1/nullifiers/{nf}`.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Deserialize)]
pub struct NullifierStatus {
    /// In the nullifier set.
    pub spent: bool,
    /// Spent by a transfer in the mempool.
    pub pending: bool,
}

/// `GET /v1/transfers/{id}`: `pending`, `batched` (with `batch`), `proven` (with `batch`) or
/// `rejected` (with `reason`).
#[derive(Debug, Clone, PartialEq, Eq, Deserialize, serde::Serialize)]
pub struct TransferStatus {
    /// Transfer id.
    pub id: String,
    /// Status word.
    pub status: String,
    /// Batch number once batched.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub batch: Option<u64>,
    /// Why it was rejected.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub reason: Option<String>,
    /// Once anchored: the Bitcoin anchor transaction (for a withdrawal, the one that paid it).
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub txid: Option<String>,
}

/// `GET /v1/state` (the fields the wallet reads).
#[derive(Debug, Clone, PartialEq, Eq, Deserialize)]
pub struct NodeState {
    /// Transfers per batch (absent from older nodes).
    #[serde(default)]
    pub batch_size: Option<usize>,
    /// Tree depth (absent from older nodes).
    #[serde(default)]
    pub depth: Option<usize>,
    /// Batches anchored on Bitcoin (absent from older nodes).
    #[serde(default)]
    pub anchored_height: Option<u64>,
    /// State root (hex).
    pub state_root: String,
    /// Note root (hex).
    pub note_root: String,
    /// Notes in the tree.
    pub note_count: u64,
    /// Sealed batches.
    pub batch_height: u64,
    /// Proven batches.
    pub proven_height: u64,
    /// Transfers waiting.
    pub mempool_size: u64,
}

/// `GET /v1/bridge`.
#[derive(Debug, Clone, PartialEq, Eq, Deserialize)]
pub struct BridgeInfo {
    /// Whether the node is on Bitcoin (anchoring configured).
    pub bitcoin: bool,
    /// Its Bitcoin network (`regtest`, `signet`, `testnet`, `bitcoin`).
    pub network: Option<String>,
    /// The bridge's x-only key, hex.
    pub bridge_key: Option<String>,
    /// How deposits are credited (`attested`: by the operator; `peg-in`: from Bitcoin).
    pub deposits: String,
    /// Confirmations before a peg-in is credited.
    #[serde(default)]
    pub deposit_confirmations: Option<u64>,
}

/// `POST /v1/bridge/watch`.
#[derive(Debug, Clone, PartialEq, Eq, Deserialize)]
pub struct WatchReply {
    /// The deposit address the node follows.
    pub deposit_address: String,
    /// Whether it was new to the node.
    pub new: bool,
}

/// A peg-in as `GET /v1/bridge/deposits` reports it.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
pub struct PegIn {
    /// `txid:vout`.
    pub outpoint: String,
    /// Sat.
    pub value: u64,
    /// Confirmations so far.
    pub confirmations: u64,
    /// Confirmations needed.
    pub required: u64,
    /// `seen`, `crediting`, `credited` or `reorged_after_credit`.
    pub status: String,
    /// Its deposit transfer, once built.
    pub transfer_id: Option<String>,
}

#[derive(Deserialize)]
struct PegIns {
    deposits: Vec<PegIn>,
}

/// `GET /v1/batches/{n}` (the fields a verifier needs).
#[derive(Debug, Clone, PartialEq, Eq, Deserialize)]
pub struct BatchInfo {
    /// Batch number.
    pub number: u64,
    /// `sealed` or `proven`.
    pub status: String,
    /// Public data of the real transfers, in slot order.
    pub public_data: Vec<TransferPublic>,
    /// The proof's public inputs as the node states them.
    pub public_inputs: BatchPublicInputs,
    /// Position of the batch's first note in the note tree (slot `s`'s output `j` is at
    /// `note_start + 2s + j`); `None` from nodes that do not send it.
    #[serde(default)]
    pub note_start: Option<u64>,
    /// Compressed Groth16 proof (hex), once proven.
    pub proof: Option<String>,
    /// The Bitcoin anchor, once signed (nodes without anchoring send `null`).
    #[serde(default)]
    pub anchor: Option<AnchorInfo>,
}

/// The `anchor` of `GET /v1/batches/{n}` (DESIGN §11), as the node reports it.
#[derive(Debug, Clone, PartialEq, Eq, Deserialize, serde::Serialize)]
pub struct AnchorInfo {
    /// The anchor transaction: the confirmed version's txid, else the newest version's.
    pub txid: String,
    /// The first batch the anchor covers (absent from nodes before range anchors).
    #[serde(default)]
    pub first_batch: Option<u64>,
    /// The last batch it covers.
    #[serde(default)]
    pub last_batch: Option<u64>,
    /// The commit transaction whose envelope output the anchor spends.
    #[serde(default)]
    pub commit_txid: Option<String>,
    /// `signed`, `unconfirmed`, `confirmed` or `anchored`.
    pub status: String,
    /// Confirmations when the node last looked.
    pub confirmations: u64,
    /// Block holding it, when confirmed.
    #[serde(default)]
    pub block_hash: Option<String>,
    /// That block's height.
    #[serde(default)]
    pub block_height: Option<u64>,
    /// Fee in satoshis (of the whole package: commit, reveals, anchor).
    #[serde(default)]
    pub fee_sat: u64,
    /// Virtual size in vbytes (of the whole package).
    #[serde(default)]
    pub vsize: Option<u64>,
    /// Every signed version (fee bumps), oldest first.
    #[serde(default)]
    pub versions: Vec<String>,
}

#[derive(Deserialize)]
struct ErrorBody {
    error: ErrorDetail,
}

#[derive(Deserialize)]
struct ErrorDetail {
    code: String,
    message: String,
}

#[derive(Deserialize)]
struct Accepted {
    id: String,
    status: String,
}

#[derive(Deserialize)]
struct PathJson {
    position: u64,
    leaf: String,
    root: String,
    /// `D / 2` levels of three siblings.
    siblings: Vec<Vec<String>>,
}

/// A client of one node.
#[derive(Debug, Clone)]
pub struct NodeClient {
    base: String,
    http: reqwest::blocking::Client,
}

impl NodeClient {
    /// A client of the node at `url` (`http://host:port`, a trailing `/` allowed).
    pub fn new(url: &str) -> Result<Self, ClientError> {
        let base = url.trim().trim_end_matches('/').to_owned();
        let parsed = reqwest::Url::parse(&base).map_err(|_| ClientError::BadUrl(url.into()))?;
        if !matches!(parsed.scheme(), "http" | "https") || parsed.host_str().is_none() {
            return Err(ClientError::BadUrl(url.into()));
        }
        let http = reqwest::blocking::Client::builder()
            .connect_timeout(CONNECT_TIMEOUT)
            .timeout(REQUEST_TIMEOUT)
            .build()
            .map_err(|e| transport(&base, e))?;
        Ok(NodeClient { base, http })
    }

    /// The node's base URL.
    pub fn url(&self) -> &str {
        &self.base
    }

    fn finish<T: DeserializeOwned>(
        url: &str,
        resp: Result<reqwest::blocking::Response, reqwest::Error>,
    ) -> Result<T, ClientError> {
        let resp = resp.map_err(|e| transport(url, e))?;
        let status = resp.status();
        let body = resp.bytes().map_err(|e| transport(url, e))?;
        if !status.is_success() {
            return Err(match serde_json::from_slice::<ErrorBody>(&body) {
                Ok(e) => ClientError::Api {
                    status: status.as_u16(),
                    code: e.error.code,
                    message: e.error.message,
                },
                Err(_) => ClientError::Http {
                    url: url.to_owned(),
                    status: status.as_u16(),
                    body: String::from_utf8_lossy(&body).chars().take(200).collect(),
                },
            });
        }
        serde_json::from_slice(&body).map_err(|e| ClientError::Decode {
            url: url.to_owned(),
            reason: e.to_string(),
        })
    }

    fn get<T: DeserializeOwned>(&self, path: &str) -> Result<T, ClientError> {
        let url = format!("{}{path}", self.base);
        Self::finish(&url, self.http.get(&url).send())
    }

    fn post<T: DeserializeOwned>(
        &self,
        path: &str,
        body: &impl serde::Serialize,
        token: Option<&str>,
    ) -> Result<T, ClientError> {
        let url = format!("{}{path}", self.base);
        let mut req = self.http.post(&url).json(body);
        if let Some(t) = token {
            req = req.bearer_auth(t);
        }
        Self::finish(&url, req.send())
    }

    /// `GET /v1/state`.
    pub fn state(&self) -> Result<NodeState, ClientError> {
        self.get("/v1/state")
    }

    /// `GET /v1/notes?from=&limit=`.
    pub fn notes(&self, from: u64, limit: usize) -> Result<NotesPage, ClientError> {
        self.get(&format!("/v1/notes?from={from}&limit={limit}"))
    }

    /// `GET /v1/notes/{pos}/path`, decoded.
    pub fn note_path(&self, position: u64) -> Result<NotePath, ClientError> {
        let path = format!("/v1/notes/{position}/path");
        let j: PathJson = self.get(&path)?;
        let decode = |s: &str| {
            field::from_hex(s).map_err(|e| ClientError::Decode {
                url: format!("{}{path}", self.base),
                reason: format!("{s}: {e}"),
            })
        };
        Ok(NotePath {
            position: j.position,
            leaf: decode(&j.leaf)?,
            root: decode(&j.root)?,
            path: MerklePath {
                siblings: j
                    .siblings
                    .iter()
                    .map(|level| match level.as_slice() {
                        [a, b, c] => Ok([decode(a)?, decode(b)?, decode(c)?]),
                        _ => Err(ClientError::Decode {
                            url: format!("{}{path}", self.base),
                            reason: format!("a path level has {} siblings, not 3", level.len()),
                        }),
                    })
                    .collect::<Result<_, _>>()?,
            },
        })
    }

    /// `GET /v1/nullifiers/{nf}`.
    pub fn nullifier(&self, nf: &Fr) -> Result<NullifierStatus, ClientError> {
        self.get(&format!("/v1/nullifiers/{}", field::to_hex(nf)))
    }

    /// `GET /v1/transfers/{id}`.
    pub fn transfer_status(&self, id: &str) -> Result<TransferStatus, ClientError> {
        if id.len() != 64 || !id.chars().all(|c| c.is_ascii_hexdigit()) {
            return Err(ClientError::BadId(id.to_owned()));
        }
        self.get(&format!("/v1/transfers/{id}"))
    }

    /// `POST /v1/transfers`; returns the transfer id.
    pub fn submit(&self, req: &TransferRequest) -> Result<String, ClientError> {
        Ok(self.post::<Accepted>("/v1/transfers", req, None)?.id)
    }

    /// `POST /v1/deposits` with the operator's bearer token; returns the transfer id and its
    /// status (`pending` when new; its current status when the same deposit was posted before).
    pub fn deposit(
        &self,
        req: &TransferRequest,
        token: &str,
    ) -> Result<(String, String), ClientError> {
        let a = self.post::<Accepted>("/v1/deposits", req, Some(token))?;
        Ok((a.id, a.status))
    }

    /// `GET /v1/bridge`.
    pub fn bridge(&self) -> Result<BridgeInfo, ClientError> {
        self.get("/v1/bridge")
    }

    /// `POST /v1/bridge/watch`: asks the node to follow `address`'s peg-in output.
    pub fn watch(&self, address: &str) -> Result<WatchReply, ClientError> {
        self.post(
            "/v1/bridge/watch",
            &serde_json::json!({"address": address}),
            None,
        )
    }

    /// `GET /v1/bridge/deposits?address=`.
    pub fn peg_ins(&self, address: &str) -> Result<Vec<PegIn>, ClientError> {
        Ok(self
            .get::<PegIns>(&format!("/v1/bridge/deposits?address={address}"))?
            .deposits)
    }

    /// `GET /v1/batches/{n}`.
    pub fn batch(&self, n: u64) -> Result<BatchInfo, ClientError> {
        self.get(&format!("/v1/batches/{n}"))
    }
}
