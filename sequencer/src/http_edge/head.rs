//! The header-read phase of the HTTP edge: reads one request head (request line and headers)
//! from the socket within the header timeout and the head-size limit, and checks it with
//! `httparse` before hyper sees a byte of it. Every problem becomes a [`Refusal`] (the JSON error
//! the edge writes before closing): malformed request lines, invalid header names or values
//! (a NUL byte, say), URIs hyper would refuse, too many or too large headers, a missing,
//! repeated, signed or non-numeric `Content-Length`, any `Transfer-Encoding` (request bodies are
//! framed by `Content-Length` only, so the edge always knows where a request ends), and a body
//! larger than the API accepts.

use std::time::Duration;

use bytes::{Buf, BytesMut};
use tokio::io::AsyncReadExt;
use tokio::net::TcpStream;
use tokio::sync::watch;
use tokio::time::Instant;
use warp::http::{HeaderName, StatusCode, Uri};

use super::refusal::Refusal;

/// Most headers in one request (hyper's own limit is 100).
pub(super) const MAX_HEADERS: usize = 64;

/// Below this many buffered bytes every read is checked at once, so that a client speaking
/// something other than HTTP/1.x (TLS, HTTP/2) is refused without waiting for a blank line.
/// Past it, a partial head is checked again only when a read brings a line end: checks stay
/// linear in the number of header lines, however the bytes trickle in.
const EARLY_CHECK_BYTES: usize = 1024;

/// A checked request head, at the front of the connection's inbound buffer.
#[derive(Debug, Clone, PartialEq, Eq)]
pub(super) struct Head {
    /// Bytes of the head (through its blank line).
    pub len: usize,
    /// Body bytes that follow it.
    pub content_length: u64,
    /// Whether the client lets the connection carry another request afterwards.
    pub keep_alive: bool,
}

/// What waiting for a request head gave.
#[derive(Debug)]
pub(super) enum HeadRead {
    /// A complete, checked head.
    Head(Head),
    /// Nothing to answer: the client closed, stayed silent past the header timeout between
    /// requests, or the node is stopping.
    Closed,
    /// A head the edge refuses (or a partial one that timed out or was cut short).
    Refused(Refusal),
}

/// Limits of one head.
#[derive(Debug, Clone, Copy)]
pub(super) struct HeadLimits {
    pub timeout: Duration,
    pub max_bytes: usize,
    pub max_body: u64,
}

/// Reads the next request head into `inbound` (which may already hold bytes of it, read along
/// with the previous request) and checks it. Blank lines before a request line are skipped.
pub(super) async fn read_head(
    stream: &mut TcpStream,
    inbound: &mut BytesMut,
    limits: HeadLimits,
    shutdown: &mut watch::Receiver<bool>,
) -> HeadRead {
    let deadline = Instant::now() + limits.timeout;
    let mut check = true;
    loop {
        let blank = inbound
            .iter()
            .take_while(|b| matches!(b, b'\r' | b'\n'))
            .count();
        inbound.advance(blank);
        if check && !inbound.is_empty() {
            let within = &inbound[..inbound.len().min(limits.max_bytes)];
            match check_head(within, limits.max_body) {
                Ok(Some(head)) => return HeadRead::Head(head),
                Ok(None) => {}
                Err(refusal) => return HeadRead::Refused(refusal),
            }
        }
        if inbound.len() >= limits.max_bytes {
            return HeadRead::Refused(too_large(&inbound[..limits.max_bytes], limits.max_bytes));
        }
        let before = inbound.len();
        inbound.reserve(4096);
        tokio::select! {
            biased;
            () = super::stopped(shutdown), if inbound.is_empty() => return HeadRead::Closed,
            read = stream.read_buf(inbound) => match read {
                Ok(0) if inbound.is_empty() => return HeadRead::Closed,
                Ok(0) => {
                    return HeadRead::Refused(Refusal::new(
                        StatusCode::BAD_REQUEST,
                        "incomplete_head",
                        "the connection ended inside a request head",
                    ))
                }
                Ok(_) => {
                    check = inbound.len() <= EARLY_CHECK_BYTES
                        || inbound[before..].contains(&b'\n');
                }
                Err(_) => return HeadRead::Closed,
            },
            _ = tokio::time::sleep_until(deadline) => {
                if inbound.is_empty() {
                    return HeadRead::Closed;
                }
                return HeadRead::Refused(Refusal::new(
                    StatusCode::REQUEST_TIMEOUT,
                    "header_timeout",
                    format!(
                        "the request head did not arrive within {} ms",
                        limits.timeout.as_millis()
                    ),
                ));
            }
        }
    }
}

/// The head did not end within `max` bytes: a request line that long is a URI too long (414),
/// otherwise the headers are too large (431).
fn too_large(prefix: &[u8], max: usize) -> Refusal {
    if prefix.contains(&b'\n') {
        Refusal::new(
            StatusCode::REQUEST_HEADER_FIELDS_TOO_LARGE,
            "headers_too_large",
            format!("the request head exceeds {max} bytes"),
        )
    } else {
        Refusal::new(
            StatusCode::URI_TOO_LONG,
            "uri_too_long",
            format!("the request line exceeds {max} bytes"),
        )
    }
}

/// Checks the head at the front of `bytes`: `Ok(None)` while it is incomplete and nothing in it
/// is wrong yet.
pub(super) fn check_head(bytes: &[u8], max_body: u64) -> Result<Option<Head>, Refusal> {
    let bad = |code: &'static str, message: &str| {
        Err(Refusal::new(StatusCode::BAD_REQUEST, code, message))
    };
    let mut headers = [httparse::EMPTY_HEADER; MAX_HEADERS];
    let mut req = httparse::Request::new(&mut headers);
    let len = match req.parse(bytes) {
        Ok(httparse::Status::Complete(len)) => len,
        Ok(httparse::Status::Partial) => return Ok(None),
        Err(e) => return Err(parse_refusal(e)),
    };
    let (Some(path), Some(version)) = (req.path, req.version) else {
        return bad("malformed_request", "the request line is malformed");
    };
    if Uri::try_from(path).is_err() {
        return bad("bad_uri", "the request target is not a valid URI");
    }
    let mut content_length = None;
    let mut transfer_encoding = false;
    let mut close = false;
    let mut keep_alive_token = false;
    for h in req.headers.iter() {
        if HeaderName::from_bytes(h.name.as_bytes()).is_err() {
            return bad("bad_header", "a header name is not a valid token");
        }
        if h.name.eq_ignore_ascii_case("content-length") {
            if content_length.is_some() {
                return bad("bad_content_length", "more than one Content-Length header");
            }
            content_length = Some(parse_content_length(h.value)?);
        } else if h.name.eq_ignore_ascii_case("transfer-encoding") {
            transfer_encoding = true;
        } else if h.name.eq_ignore_ascii_case("connection") {
            for token in h.value.split(|b| *b == b',') {
                let token = token.trim_ascii();
                close |= token.eq_ignore_ascii_case(b"close");
                keep_alive_token |= token.eq_ignore_ascii_case(b"keep-alive");
            }
        }
    }
    if transfer_encoding {
        if content_length.is_some() {
            return bad(
                "bad_transfer_encoding",
                "Content-Length and Transfer-Encoding together are refused",
            );
        }
        return Err(Refusal::new(
            StatusCode::LENGTH_REQUIRED,
            "length_required",
            "a content-length header is required (chunked request bodies are not accepted)",
        ));
    }
    let content_length = content_length.unwrap_or(0);
    if content_length > max_body {
        return Err(Refusal::new(
            StatusCode::PAYLOAD_TOO_LARGE,
            "body_too_large",
            format!("request body exceeds {max_body} bytes"),
        ));
    }
    let keep_alive = !close && (version == 1 || keep_alive_token);
    Ok(Some(Head {
        len,
        content_length,
        keep_alive,
    }))
}

/// One `Content-Length` value: decimal digits only (no sign, no list), optional surrounding
/// whitespace, below 2^64.
fn parse_content_length(value: &[u8]) -> Result<u64, Refusal> {
    let digits = value.trim_ascii();
    let refuse = || {
        Refusal::new(
            StatusCode::BAD_REQUEST,
            "bad_content_length",
            "Content-Length must be one non-negative decimal integer",
        )
    };
    if digits.is_empty() || !digits.iter().all(u8::is_ascii_digit) {
        return Err(refuse());
    }
    std::str::from_utf8(digits)
        .ok()
        .and_then(|d| d.parse().ok())
        .ok_or_else(refuse)
}

fn parse_refusal(e: httparse::Error) -> Refusal {
    use httparse::Error as E;
    let (status, code, message) = match e {
        E::HeaderName => (
            StatusCode::BAD_REQUEST,
            "bad_header",
            "a header name is malformed".to_owned(),
        ),
        E::HeaderValue => (
            StatusCode::BAD_REQUEST,
            "bad_header",
            "a header value holds a forbidden byte (control characters such as NUL are not allowed)"
                .to_owned(),
        ),
        E::TooManyHeaders => (
            StatusCode::REQUEST_HEADER_FIELDS_TOO_LARGE,
            "too_many_headers",
            format!("more than {MAX_HEADERS} headers"),
        ),
        E::Version => (
            StatusCode::BAD_REQUEST,
            "unsupported_http_version",
            "only HTTP/1.0 and HTTP/1.1 requests are served".to_owned(),
        ),
        E::NewLine | E::Status | E::Token => (
            StatusCode::BAD_REQUEST,
            "malformed_request",
            "the request line or a header line is malformed (not HTTP/1.x?)".to_owned(),
        ),
    };
    Refusal::new(status, code, message)
}

#[cfg(test)]
mod tests {
    use super::*;

    fn code(head: &[u8]) -> Result<Head, (u16, &'static str)> {
        match check_head(head, 1000) {
            Ok(Some(h)) => Ok(h),
            Ok(None) => panic!("incomplete: {}", String::from_utf8_lossy(head)),
            Err(r) => Err((r.status.as_u16(), r.code)),
        }
    }

    #[test]
    fn partial_heads_wait_and_complete_ones_end_at_their_blank_line() {
        let full = b"GET / HTTP/1.1\r\nA: b\r\n\r\nnext";
        for cut in 1..24 {
            assert_eq!(check_head(&full[..cut], 0), Ok(None), "{cut}");
        }
        assert_eq!(check_head(full, 0).unwrap().unwrap().len, 24);
        assert_eq!(code(b"GET / HTTP/1.1\n\nrest").unwrap().len, 16);
        // Non-HTTP bytes are refused before any line end arrives.
        assert_eq!(
            check_head(b"\x16\x03\x01", 0).unwrap_err().code,
            "malformed_request"
        );
    }

    #[test]
    fn good_heads_pass_with_their_framing() {
        let h =
            code(b"POST /v1/transfers HTTP/1.1\r\nHost: x\r\nContent-Length: 12\r\n\r\n").unwrap();
        assert_eq!((h.content_length, h.keep_alive), (12, true));
        let h = code(b"GET /v1/state HTTP/1.1\r\nConnection: close\r\n\r\n").unwrap();
        assert_eq!((h.content_length, h.keep_alive), (0, false));
        let h = code(b"GET / HTTP/1.0\r\n\r\n").unwrap();
        assert!(!h.keep_alive);
        let h = code(b"GET / HTTP/1.0\r\nConnection: Keep-Alive\r\n\r\n").unwrap();
        assert!(h.keep_alive);
        let h = code(b"GET / HTTP/1.1\r\ncontent-length:  7 \r\n\r\n").unwrap();
        assert_eq!(h.content_length, 7);
    }

    #[test]
    fn each_bad_head_has_its_refusal() {
        let cases: &[(&[u8], u16, &str)] = &[
            (
                b"GET / HTTP/1.1\r\nAuthorization: Bearer a\0b\r\n\r\n",
                400,
                "bad_header",
            ),
            (b"GET / HTTP/1.1\r\nBad Name: x\r\n\r\n", 400, "bad_header"),
            (
                b"GET / HTTP/1.1\r\nContent-Length: -1\r\n\r\n",
                400,
                "bad_content_length",
            ),
            (
                b"GET / HTTP/1.1\r\nContent-Length: +1\r\n\r\n",
                400,
                "bad_content_length",
            ),
            (
                b"GET / HTTP/1.1\r\nContent-Length: 1, 1\r\n\r\n",
                400,
                "bad_content_length",
            ),
            (
                b"GET / HTTP/1.1\r\nContent-Length: \r\n\r\n",
                400,
                "bad_content_length",
            ),
            (
                b"GET / HTTP/1.1\r\nContent-Length: 99999999999999999999\r\n\r\n",
                400,
                "bad_content_length",
            ),
            (
                b"GET / HTTP/1.1\r\nContent-Length: 1\r\nContent-Length: 2\r\n\r\n",
                400,
                "bad_content_length",
            ),
            (
                b"GET / HTTP/1.1\r\nContent-Length: 1\r\ncontent-length: 1\r\n\r\n",
                400,
                "bad_content_length",
            ),
            (
                b"POST / HTTP/1.1\r\nTransfer-Encoding: chunked\r\nContent-Length: 3\r\n\r\n",
                400,
                "bad_transfer_encoding",
            ),
            (
                b"POST / HTTP/1.1\r\nTransfer-Encoding: chunked\r\n\r\n",
                411,
                "length_required",
            ),
            (
                b"POST / HTTP/1.1\r\nContent-Length: 1001\r\n\r\n",
                413,
                "body_too_large",
            ),
            (
                b"\x16\x03\x01\x02\x00\x01\x00\x01\xfc\x03\x03",
                400,
                "malformed_request",
            ),
            (b"hello\r\n\r\n", 400, "malformed_request"),
            (b"PRI * HTTP/2.0\r\n\r\n", 400, "unsupported_http_version"),
            (b"GET / HTTP/1.1\r\nA\r\n\r\n", 400, "bad_header"),
            (b"GET /v1/<x> HTTP/1.1\r\n\r\n", 400, "bad_uri"),
            (b"GET /v1/\xc3\xa9 HTTP/1.1\r\n\r\n", 400, "bad_uri"),
        ];
        for (head, status, c) in cases {
            assert_eq!(
                code(head).unwrap_err(),
                (*status, *c),
                "{}",
                String::from_utf8_lossy(head)
            );
        }
        let mut many = b"GET / HTTP/1.1\r\n".to_vec();
        for i in 0..=MAX_HEADERS {
            many.extend_from_slice(format!("X-{i}: y\r\n").as_bytes());
        }
        many.extend_from_slice(b"\r\n");
        assert_eq!(code(&many).unwrap_err(), (431, "too_many_headers"));
    }

    #[test]
    fn too_large_tells_uri_from_headers() {
        assert_eq!(too_large(b"GET /aaaa", 9).code, "uri_too_long");
        assert_eq!(too_large(b"GET /\r\nX: aaa", 13).code, "headers_too_large");
    }
}
