//! What the HTTP edge says when it refuses: a [`Refusal`] rendered as a complete HTTP/1.1 response
//! with the API's error body (`{"error": {"code", "message"}}`) and `connection: close`, and the
//! rate-limited WARN lines for the refusals an operator should hear about without any client
//! being able to fill the log.

use std::net::SocketAddr;
use std::sync::Mutex;
use std::time::{Duration, Instant};

use warp::http::StatusCode;

/// A request (or connection) the edge answers itself, then closes.
#[derive(Debug, Clone, PartialEq, Eq)]
pub(super) struct Refusal {
    /// HTTP status (always 4xx, or 503 for the connection cap).
    pub status: StatusCode,
    /// `error.code`.
    pub code: &'static str,
    /// `error.message`: never echoes header values (they may be credentials).
    pub message: String,
}

impl Refusal {
    pub(super) fn new(status: StatusCode, code: &'static str, message: impl Into<String>) -> Self {
        Refusal {
            status,
            code,
            message: message.into(),
        }
    }

    /// The whole response: status line, headers (`connection: close`) and JSON body.
    pub(super) fn to_response(&self) -> Vec<u8> {
        let body =
            serde_json::json!({"error": {"code": self.code, "message": self.message}}).to_string();
        format!(
            "HTTP/1.1 {} {}\r\ncontent-type: application/json\r\ncontent-length: {}\r\n\
             connection: close\r\n\r\n{body}",
            self.status.as_u16(),
            self.status.canonical_reason().unwrap_or(""),
            body.len(),
        )
        .into_bytes()
    }
}

/// At most one WARN line per `window` for one kind of event, carrying how many were left
/// unlogged since the previous line.
pub(super) struct RateLimitedWarn {
    what: &'static str,
    window: Duration,
    state: Mutex<WarnState>,
}

struct WarnState {
    last: Option<Instant>,
    suppressed: u64,
}

impl RateLimitedWarn {
    pub(super) fn new(what: &'static str, window: Duration) -> Self {
        RateLimitedWarn {
            what,
            window,
            state: Mutex::new(WarnState {
                last: None,
                suppressed: 0,
            }),
        }
    }

    /// Records one event on the server listening at `local`; logs it unless one was logged
    /// less than `window` ago.
    pub(super) fn event(&self, local: SocketAddr) {
        let now = Instant::now();
        let suppressed = {
            let mut s = self.state.lock().unwrap_or_else(|e| e.into_inner());
            if s.last.is_some_and(|t| now.duration_since(t) < self.window) {
                s.suppressed += 1;
                return;
            }
            s.last = Some(now);
            std::mem::take(&mut s.suppressed)
        };
        tracing::warn!(
            %local,
            suppressed,
            window_s = self.window.as_secs(),
            "http edge: {} (at most one line per window; `suppressed` counts the unlogged ones)",
            self.what
        );
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn refusal_is_a_complete_json_response() {
        let r = Refusal::new(StatusCode::URI_TOO_LONG, "uri_too_long", "too \"long\"");
        let text = String::from_utf8(r.to_response()).unwrap();
        let (head, body) = text.split_once("\r\n\r\n").unwrap();
        assert!(head.starts_with("HTTP/1.1 414 URI Too Long\r\n"), "{head}");
        assert!(head.contains("\r\nconnection: close"));
        assert!(head.contains(&format!("\r\ncontent-length: {}", body.len())));
        let v: serde_json::Value = serde_json::from_str(body).unwrap();
        assert_eq!(v["error"]["code"], "uri_too_long");
        assert_eq!(v["error"]["message"], "too \"long\"");
    }
}
