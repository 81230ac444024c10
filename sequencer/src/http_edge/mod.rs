//! The node's HTTP edge: its own accept loop in front of hyper and warp, so that every refusal
//! the HTTP layer makes carries the API's JSON error (`{"error": {"code", "message"}}`), and so
//! that slow or numerous clients cannot hold the node's sockets.
//!
//! - **Connection cap.** At most `max_connections` connections are served at once; one more is
//!   answered `503 too_many_connections` and closed at once (no queueing: a waiting client
//!   would hold a socket all the same). Retrying shortly is the client's call.
//! - **Header phase** ([`head`]). The edge reads each request head itself, within the header
//!   timeout and `max_head_bytes`, and checks it with `httparse`: malformed request lines,
//!   invalid header bytes, URIs hyper would refuse, too many or too large headers, a missing,
//!   repeated, signed or non-numeric `Content-Length`, any `Transfer-Encoding` and bodies over
//!   the API's limit are answered with their JSON error and the connection closed. The timeout
//!   runs from the connection's start or the previous response: an idle keep-alive connection
//!   is closed after as long, silently.
//! - **Exchange** ([`exchange`]). A checked request is handed to hyper (`serve_connection` with
//!   warp's service) over an IO object that yields exactly that request, then end-of-stream:
//!   hyper answers and returns the socket, and the next head on the connection goes through the
//!   header phase again. Keep-alive (and pipelining) keep working. The body must arrive within
//!   the body timeout; a stalled or cut-short body is answered `408 body_timeout` or
//!   `400 incomplete_body` by the edge.
//! - **Closing.** After a refusal the edge sends its response, shuts its side down and reads
//!   and discards what the client still sends for a moment (at most [`LINGER`]), so that the
//!   client reads the answer instead of a reset.
//!
//! Cut-short bodies, timeouts and the connection cap are logged at WARN, at most one line per
//! kind every [`WARN_WINDOW`] with a count of the unlogged ones; other refusals at DEBUG.

mod exchange;
mod head;
mod refusal;

use std::convert::Infallible;
use std::net::SocketAddr;
use std::sync::Arc;
use std::time::Duration;

use bytes::{Buf, BytesMut};
use hyper::server::conn::Http;
use tokio::io::{AsyncReadExt, AsyncWriteExt};
use tokio::net::{TcpListener, TcpStream};
use tokio::sync::{watch, Semaphore};
use tokio::task::{JoinError, JoinSet};
use warp::http::StatusCode;
use warp::reply::Response;
use warp::Filter;

use crate::config::HttpConfig;
use exchange::Exchange;
use head::{HeadLimits, HeadRead};
use refusal::{RateLimitedWarn, Refusal};

/// At most one WARN line per kind of event in this window.
pub const WARN_WINDOW: Duration = Duration::from_secs(10);
/// Longest time the edge keeps reading (and discarding) after answering a refused request.
pub const LINGER: Duration = Duration::from_secs(1);
/// Most bytes discarded while lingering.
const LINGER_BYTES: usize = 4 << 20;

/// The edge's limits.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct EdgeLimits {
    /// Time for a request head to arrive in full.
    pub header_timeout: Duration,
    /// Time for a request body to arrive in full, and for a response to be taken.
    pub body_timeout: Duration,
    /// Connections served at once.
    pub max_connections: usize,
    /// Largest request head.
    pub max_head_bytes: usize,
    /// Largest request body (the API's limit).
    pub max_body_bytes: u64,
}

impl EdgeLimits {
    /// The limits of the config's `[http]` table, with the API's body limit.
    pub fn new(http: &HttpConfig, max_body_bytes: u64) -> Self {
        EdgeLimits {
            header_timeout: http.header_timeout(),
            body_timeout: http.body_timeout(),
            max_connections: http.max_connections,
            max_head_bytes: http.max_head_bytes,
            max_body_bytes,
        }
    }
}

/// What the connections of one server share.
struct Shared {
    limits: EdgeLimits,
    local: SocketAddr,
    http: Http,
    incomplete_body_warn: RateLimitedWarn,
    timeout_warn: RateLimitedWarn,
    cap_warn: RateLimitedWarn,
    accept_warn: RateLimitedWarn,
}

/// Serves `filter` on `listener` until `shutdown` turns true, then stops accepting and waits
/// for the open connections: each finishes its current request and closes.
pub async fn serve<F>(
    listener: TcpListener,
    filter: F,
    limits: EdgeLimits,
    mut shutdown: watch::Receiver<bool>,
) where
    F: Filter<Extract = (Response,), Error = Infallible> + Clone + Send + Sync + 'static,
{
    let mut http = Http::new();
    http.http1_only(true)
        .http1_keep_alive(true)
        // hyper must not read while a handler runs: the exchange's end-of-stream would look
        // like the client leaving.
        .http1_half_close(true);
    let local = listener
        .local_addr()
        .unwrap_or_else(|_| SocketAddr::from(([0, 0, 0, 0], 0)));
    let shared = Arc::new(Shared {
        limits,
        local,
        http,
        incomplete_body_warn: RateLimitedWarn::new(
            "request bodies cut short by their clients (400 incomplete_body)",
            WARN_WINDOW,
        ),
        timeout_warn: RateLimitedWarn::new(
            "requests whose head or body did not arrive in time (408)",
            WARN_WINDOW,
        ),
        cap_warn: RateLimitedWarn::new(
            "connections refused at the connection cap (503 too_many_connections)",
            WARN_WINDOW,
        ),
        accept_warn: RateLimitedWarn::new("accepting a connection failed", WARN_WINDOW),
    });
    let permits = Arc::new(Semaphore::new(limits.max_connections));
    let mut connections = JoinSet::new();
    let mut refusals = JoinSet::new();
    let stopping = shutdown.clone();
    loop {
        tokio::select! {
            () = stopped(&mut shutdown) => break,
            Some(done) = connections.join_next(), if !connections.is_empty() => report(done),
            Some(done) = refusals.join_next(), if !refusals.is_empty() => report(done),
            accepted = listener.accept() => {
                let stream = match accepted {
                    Ok((stream, _)) => stream,
                    Err(_) => {
                        // Out of descriptors, say: back off rather than spin.
                        shared.accept_warn.event(local);
                        tokio::time::sleep(Duration::from_millis(50)).await;
                        continue;
                    }
                };
                match permits.clone().try_acquire_owned() {
                    Ok(permit) => {
                        let conn = serve_connection(
                            stream,
                            shared.clone(),
                            filter.clone(),
                            stopping.clone(),
                        );
                        connections.spawn(async move {
                            conn.await;
                            drop(permit);
                        });
                    }
                    Err(_) => {
                        shared.cap_warn.event(local);
                        // Refusing takes a moment per connection; past as many refusals in
                        // flight as connections, the socket is just dropped.
                        if refusals.len() < limits.max_connections {
                            refusals.spawn(refuse_connection(stream, shared.clone()));
                        }
                    }
                }
            }
        }
    }
    drop(listener);
    while let Some(done) = connections.join_next().await {
        report(done);
    }
}

/// Resolves once `shutdown` is true (or its sender is gone).
async fn stopped(shutdown: &mut watch::Receiver<bool>) {
    let _ = shutdown.wait_for(|stop| *stop).await;
}

fn report(done: Result<(), JoinError>) {
    if let Err(e) = done {
        if e.is_panic() {
            tracing::error!(error = %e, "http edge: a connection task panicked");
        }
    }
}

/// Serves the requests of one connection, one exchange at a time.
async fn serve_connection<F>(
    mut stream: TcpStream,
    shared: Arc<Shared>,
    filter: F,
    mut shutdown: watch::Receiver<bool>,
) where
    F: Filter<Extract = (Response,), Error = Infallible> + Clone + Send + Sync + 'static,
{
    let _ = stream.set_nodelay(true);
    let mut inbound = BytesMut::with_capacity(4096);
    let head_limits = HeadLimits {
        timeout: shared.limits.header_timeout,
        max_bytes: shared.limits.max_head_bytes,
        max_body: shared.limits.max_body_bytes,
    };
    loop {
        let head =
            match head::read_head(&mut stream, &mut inbound, head_limits, &mut shutdown).await {
                HeadRead::Head(head) => head,
                HeadRead::Closed => return,
                HeadRead::Refused(refusal) => {
                    if refusal.status == StatusCode::REQUEST_TIMEOUT {
                        shared.timeout_warn.event(shared.local);
                    } else {
                        tracing::debug!(code = refusal.code, "http edge: request head refused");
                    }
                    if send(
                        &mut stream,
                        &refusal.to_response(),
                        shared.limits.header_timeout,
                    )
                    .await
                    {
                        linger_close(stream).await;
                    }
                    return;
                }
            };
        let exchange = Exchange::new(
            stream,
            inbound,
            head.len,
            head.content_length,
            shared.clone(),
        );
        let body_deadline = exchange.body_deadline();
        let mut conn = shared
            .http
            .serve_connection(exchange, warp::service(filter.clone()));
        let served = std::future::poll_fn(|cx| conn.poll_without_shutdown(cx)).await;
        let exchange = conn.into_parts().io;
        if let Err(e) = &served {
            tracing::debug!(error = %e, "http edge: exchange ended with an error");
        }
        stream = exchange.stream;
        inbound = exchange.inbound;
        if !send(&mut stream, &exchange.outbound, shared.limits.body_timeout).await {
            return;
        }
        if exchange.failure.is_some() {
            linger_close(stream).await;
            return;
        }
        if served.is_err() || !exchange.hyper_wrote || !head.keep_alive || *shutdown.borrow() {
            let _ = stream.shutdown().await;
            return;
        }
        // A handler may answer without reading the body (401, say): skip what is left of it
        // to reach the next request.
        if exchange.unread > 0
            && !discard(&mut stream, &mut inbound, exchange.unread, body_deadline).await
        {
            return;
        }
    }
}

/// Writes `bytes` within `timeout`; false if the client did not take them.
async fn send(stream: &mut TcpStream, bytes: &[u8], timeout: Duration) -> bool {
    if bytes.is_empty() {
        return true;
    }
    matches!(
        tokio::time::timeout(timeout, stream.write_all(bytes)).await,
        Ok(Ok(()))
    )
}

/// Skips `n` request bytes (first from `inbound`) before `deadline`.
async fn discard(
    stream: &mut TcpStream,
    inbound: &mut BytesMut,
    n: u64,
    deadline: tokio::time::Instant,
) -> bool {
    let from_inbound = n.min(inbound.len() as u64) as usize;
    inbound.advance(from_inbound);
    let mut left = n - from_inbound as u64;
    let mut sink = [0u8; 8192];
    let skip = async {
        while left > 0 {
            let want = left.min(sink.len() as u64) as usize;
            match stream.read(&mut sink[..want]).await {
                Ok(0) | Err(_) => return false,
                Ok(got) => left -= got as u64,
            }
        }
        true
    };
    tokio::time::timeout_at(deadline, skip)
        .await
        .unwrap_or(false)
}

/// Ends a connection after a refusal: FIN after the response, then reads and discards for a
/// moment so that unread request bytes do not turn the close into a reset that could destroy
/// the response before the client reads it.
async fn linger_close(mut stream: TcpStream) {
    let _ = stream.shutdown().await;
    let mut sink = [0u8; 8192];
    let mut left = LINGER_BYTES;
    let _ = tokio::time::timeout(LINGER, async {
        while left > 0 {
            match stream.read(&mut sink).await {
                Ok(0) | Err(_) => break,
                Ok(n) => left = left.saturating_sub(n),
            }
        }
    })
    .await;
}

/// Answers a connection over the cap.
async fn refuse_connection(mut stream: TcpStream, shared: Arc<Shared>) {
    let refusal = Refusal::new(
        StatusCode::SERVICE_UNAVAILABLE,
        "too_many_connections",
        format!(
            "the node serves at most {} connections at once; retry shortly",
            shared.limits.max_connections
        ),
    );
    if send(&mut stream, &refusal.to_response(), LINGER).await {
        linger_close(stream).await;
    }
}
