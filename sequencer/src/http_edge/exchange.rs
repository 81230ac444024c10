//! One request/response exchange as hyper sees it: an IO object over the connection's socket
//! that hands hyper exactly one request (the checked head, then `Content-Length` body bytes)
//! and then end-of-stream, so hyper answers it, goes idle, reads EOF and returns the socket to
//! the edge, which checks the next head itself. Keep-alive thus survives, and every request on
//! a connection passes the edge's checks.
//!
//! The body has a deadline: a body that stalls past it, or that the client cuts short, ends the
//! request (hyper's read fails). If hyper has written nothing yet, the edge answers
//! (`408 body_timeout`, `400 incomplete_body`) and discards what hyper writes afterwards;
//! otherwise (an early answer, or `100 Continue` already sent) hyper's own response stands: the
//! API renders a failed body read as `400 incomplete_body` too.
//! Writes never block hyper: what the socket does not take at once is queued here and sent by
//! the edge, under the body timeout, once hyper is done.

use std::future::Future;
use std::io;
use std::pin::Pin;
use std::sync::Arc;
use std::task::{Context, Poll};

use bytes::{Buf, BytesMut};
use tokio::io::{AsyncRead, AsyncWrite, ReadBuf};
use tokio::net::TcpStream;
use tokio::time::Sleep;
use warp::http::StatusCode;

use super::refusal::Refusal;
use super::Shared;

/// Why the edge ended a request body.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub(super) enum BodyFailure {
    /// The client closed its side before `Content-Length` bytes.
    Incomplete,
    /// The body did not arrive within the body timeout.
    Timeout,
}

/// The IO object hyper serves one request on.
pub(super) struct Exchange {
    /// The connection's socket.
    pub stream: TcpStream,
    /// Bytes read from the socket but not handed out: the head, maybe body bytes read with it,
    /// maybe the start of the next request.
    pub inbound: BytesMut,
    /// Bytes of this request (head and body) not yet handed to hyper.
    pub unread: u64,
    /// Response bytes the socket has not taken yet.
    pub outbound: BytesMut,
    /// Whether hyper wrote any of a response.
    pub hyper_wrote: bool,
    /// Set when the edge ended the body.
    pub failure: Option<BodyFailure>,
    /// Whether the edge answered the request itself (hyper's writes are then discarded).
    pub edge_answered: bool,
    body_deadline: Pin<Box<Sleep>>,
    shared: Arc<Shared>,
}

impl Exchange {
    /// An exchange for the request whose head (of `head_len` bytes, followed by
    /// `content_length` body bytes) starts `inbound`.
    pub(super) fn new(
        stream: TcpStream,
        inbound: BytesMut,
        head_len: usize,
        content_length: u64,
        shared: Arc<Shared>,
    ) -> Self {
        let body_deadline = Box::pin(tokio::time::sleep(shared.limits.body_timeout));
        Exchange {
            stream,
            inbound,
            unread: head_len as u64 + content_length,
            outbound: BytesMut::new(),
            hyper_wrote: false,
            failure: None,
            edge_answered: false,
            body_deadline,
            shared,
        }
    }

    /// When the body must have arrived by.
    pub(super) fn body_deadline(&self) -> tokio::time::Instant {
        self.body_deadline.deadline()
    }

    /// Ends the body: answers the client unless hyper already started a response, logs, and
    /// gives hyper's read the error that ends the request.
    fn fail_body(&mut self, failure: BodyFailure) -> Poll<io::Result<()>> {
        self.failure = Some(failure);
        let (refusal, kind) = match failure {
            BodyFailure::Incomplete => {
                self.shared.incomplete_body_warn.event(self.shared.local);
                (
                    Refusal::new(
                        StatusCode::BAD_REQUEST,
                        "incomplete_body",
                        "the connection ended before the request body reached its Content-Length",
                    ),
                    io::ErrorKind::UnexpectedEof,
                )
            }
            BodyFailure::Timeout => {
                self.shared.timeout_warn.event(self.shared.local);
                (
                    Refusal::new(
                        StatusCode::REQUEST_TIMEOUT,
                        "body_timeout",
                        format!(
                            "the request body did not arrive within {} ms",
                            self.shared.limits.body_timeout.as_millis()
                        ),
                    ),
                    io::ErrorKind::TimedOut,
                )
            }
        };
        if !self.hyper_wrote {
            self.outbound.extend_from_slice(&refusal.to_response());
            self.edge_answered = true;
        }
        Poll::Ready(Err(io::Error::new(kind, refusal.message)))
    }

    /// Writes queued response bytes while the socket takes them.
    fn drain(&mut self, cx: &mut Context<'_>) -> io::Result<()> {
        while !self.outbound.is_empty() {
            match Pin::new(&mut self.stream).poll_write(cx, &self.outbound) {
                Poll::Ready(Ok(0)) => return Err(io::ErrorKind::WriteZero.into()),
                Poll::Ready(Ok(n)) => self.outbound.advance(n),
                Poll::Ready(Err(e)) => return Err(e),
                Poll::Pending => break,
            }
        }
        Ok(())
    }
}

impl AsyncRead for Exchange {
    fn poll_read(
        self: Pin<&mut Self>,
        cx: &mut Context<'_>,
        buf: &mut ReadBuf<'_>,
    ) -> Poll<io::Result<()>> {
        let this = self.get_mut();
        if let Some(failure) = this.failure {
            let kind = match failure {
                BodyFailure::Incomplete => io::ErrorKind::UnexpectedEof,
                BodyFailure::Timeout => io::ErrorKind::TimedOut,
            };
            return Poll::Ready(Err(kind.into()));
        }
        // End of this request: hyper answers it, reads EOF while idle and finishes.
        if this.unread == 0 || buf.remaining() == 0 {
            return Poll::Ready(Ok(()));
        }
        let want = this.unread.min(buf.remaining() as u64) as usize;
        if !this.inbound.is_empty() {
            let n = want.min(this.inbound.len());
            buf.put_slice(&this.inbound[..n]);
            this.inbound.advance(n);
            this.unread -= n as u64;
            return Poll::Ready(Ok(()));
        }
        let mut chunk = [0u8; 8192];
        let mut limited = ReadBuf::new(&mut chunk[..want.min(8192)]);
        match Pin::new(&mut this.stream).poll_read(cx, &mut limited) {
            Poll::Ready(Ok(())) if limited.filled().is_empty() => {
                this.fail_body(BodyFailure::Incomplete)
            }
            Poll::Ready(Ok(())) => {
                buf.put_slice(limited.filled());
                this.unread -= limited.filled().len() as u64;
                Poll::Ready(Ok(()))
            }
            Poll::Ready(Err(e)) => Poll::Ready(Err(e)),
            Poll::Pending => {
                if this.body_deadline.as_mut().poll(cx).is_ready() {
                    this.fail_body(BodyFailure::Timeout)
                } else {
                    Poll::Pending
                }
            }
        }
    }
}

impl AsyncWrite for Exchange {
    fn poll_write(
        self: Pin<&mut Self>,
        cx: &mut Context<'_>,
        data: &[u8],
    ) -> Poll<io::Result<usize>> {
        let this = self.get_mut();
        if this.edge_answered {
            // The edge answered this request; whatever hyper says about it is not sent.
            return Poll::Ready(Ok(data.len()));
        }
        this.hyper_wrote = true;
        this.drain(cx)?;
        if this.outbound.is_empty() {
            match Pin::new(&mut this.stream).poll_write(cx, data) {
                Poll::Ready(Ok(n)) => this.outbound.extend_from_slice(&data[n..]),
                Poll::Ready(Err(e)) => return Poll::Ready(Err(e)),
                Poll::Pending => this.outbound.extend_from_slice(data),
            }
        } else {
            this.outbound.extend_from_slice(data);
        }
        Poll::Ready(Ok(data.len()))
    }

    fn poll_flush(self: Pin<&mut Self>, cx: &mut Context<'_>) -> Poll<io::Result<()>> {
        // Queued bytes are the edge's to send once hyper is done; hyper need not wait.
        Poll::Ready(self.get_mut().drain(cx))
    }

    fn poll_shutdown(self: Pin<&mut Self>, _cx: &mut Context<'_>) -> Poll<io::Result<()>> {
        // The edge owns the socket's end (hyper is driven without shutdown).
        Poll::Ready(Ok(()))
    }
}
