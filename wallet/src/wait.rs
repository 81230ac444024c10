//! Waiting for a transfer (a payment, a withdrawal or an operator deposit) to become final at
//! the node: polls `GET /v1/transfers/{id}` until the transfer is in a proven batch, or until
//! its batch is anchored on Bitcoin, with a timeout. A rejection ends the wait with its reason.
//! `veil deposit --wait` and `veil wallet send|withdraw --wait` use it; [`Wallet::wait`] also
//! records each status seen in the wallet's state.

use std::time::{Duration, Instant};

use crate::client::{ClientError, NodeClient, TransferStatus};
use crate::wallet::{Wallet, WalletError};

/// How often the node is asked.
pub const POLL_INTERVAL: Duration = Duration::from_millis(500);

/// What to wait for.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Until {
    /// The transfer's batch is proven (`proven`, or already `anchored`).
    Proven,
    /// The transfer's batch is anchored on Bitcoin with the required confirmations (`anchored`
    /// with the anchor's txid, which pays a withdrawal).
    Anchored,
}

impl Until {
    /// What finality a node offers: [`Until::Anchored`] on a node anchoring on Bitcoin, else
    /// [`Until::Proven`] (a node without Bitcoin never anchors).
    pub fn final_at(client: &NodeClient) -> Result<Until, ClientError> {
        Ok(if client.bridge()?.bitcoin {
            Until::Anchored
        } else {
            Until::Proven
        })
    }

    /// Whether `status` has got there.
    pub fn reached(self, status: &TransferStatus) -> bool {
        match self {
            Until::Proven => matches!(status.status.as_str(), "proven" | "anchored"),
            Until::Anchored => status.status == "anchored" && status.txid.is_some(),
        }
    }

    fn goal(self) -> &'static str {
        match self {
            Until::Proven => "proven",
            Until::Anchored => "anchored",
        }
    }
}

/// Why a wait ended without the transfer getting there.
#[derive(Debug, thiserror::Error)]
pub enum WaitError {
    /// The node rejected the transfer.
    #[error("transfer {id} was rejected: {reason}")]
    Rejected {
        /// Transfer id.
        id: String,
        /// The node's reason.
        reason: String,
    },
    /// The timeout passed first.
    #[error("transfer {id} is still {status} after {waited_secs} s (not {goal} yet); `veil wallet status {id}` shows it later")]
    TimedOut {
        /// Transfer id.
        id: String,
        /// The last status seen.
        status: String,
        /// What was waited for.
        goal: &'static str,
        /// Seconds waited.
        waited_secs: u64,
    },
    /// Asking the node failed.
    #[error(transparent)]
    Client(#[from] ClientError),
}

/// Polls `poll` every `interval` until its status reaches `until` (returned), the transfer is
/// rejected, or `timeout` (if any) has passed since the first poll. `on_status` sees every
/// status (for a progress display).
pub fn wait_for<E>(
    id: &str,
    until: Until,
    timeout: Option<Duration>,
    interval: Duration,
    mut poll: impl FnMut() -> Result<TransferStatus, E>,
    on_status: &mut dyn FnMut(&TransferStatus),
) -> Result<TransferStatus, E>
where
    E: From<WaitError>,
{
    let start = Instant::now();
    loop {
        let status = poll()?;
        on_status(&status);
        if until.reached(&status) {
            return Ok(status);
        }
        if status.status == "rejected" {
            return Err(WaitError::Rejected {
                id: id.to_owned(),
                reason: status.reason.unwrap_or_else(|| "no reason given".into()),
            }
            .into());
        }
        if timeout.is_some_and(|t| start.elapsed() + interval > t) {
            return Err(WaitError::TimedOut {
                id: id.to_owned(),
                status: status.status,
                goal: until.goal(),
                waited_secs: start.elapsed().as_secs(),
            }
            .into());
        }
        std::thread::sleep(interval);
    }
}

/// [`wait_for`] on the node's `GET /v1/transfers/{id}` (any transfer, a deposit included).
pub fn wait_at_node(
    client: &NodeClient,
    id: &str,
    until: Until,
    timeout: Option<Duration>,
    on_status: &mut dyn FnMut(&TransferStatus),
) -> Result<TransferStatus, WaitError> {
    wait_for(
        id,
        until,
        timeout,
        POLL_INTERVAL,
        || client.transfer_status(id).map_err(WaitError::from),
        on_status,
    )
}

impl From<WaitError> for WalletError {
    fn from(e: WaitError) -> WalletError {
        match e {
            WaitError::Client(c) => WalletError::Client(c),
            other => WalletError::Wait(other),
        }
    }
}

impl Wallet {
    /// Waits until this wallet's transfer `id` reaches `until` (see [`wait_for`]), recording
    /// every status seen (a rejection frees its notes), and saves the state.
    pub fn wait(
        &mut self,
        id: &str,
        until: Until,
        timeout: Option<Duration>,
        on_status: &mut dyn FnMut(&TransferStatus),
    ) -> Result<TransferStatus, WalletError> {
        let client = self.client().clone();
        let result = wait_for(
            id,
            until,
            timeout,
            POLL_INTERVAL,
            || {
                let status = client.transfer_status(id)?;
                self.record_status(&status);
                Ok::<_, WalletError>(status)
            },
            on_status,
        );
        self.save()?;
        result
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn status(s: &str, txid: Option<&str>) -> TransferStatus {
        TransferStatus {
            id: "t".into(),
            status: s.into(),
            batch: (s != "pending" && s != "rejected").then_some(3),
            reason: (s == "rejected").then(|| "already_spent".into()),
            txid: txid.map(Into::into),
        }
    }

    /// Serves `seq` in order (its last status forever after), counting polls.
    fn run(
        seq: &[TransferStatus],
        until: Until,
        timeout: Option<Duration>,
    ) -> (Result<TransferStatus, WaitError>, usize, Vec<String>) {
        let mut polls = 0;
        let mut seen = Vec::new();
        let r = wait_for(
            "t",
            until,
            timeout,
            Duration::from_millis(1),
            || {
                polls += 1;
                Ok::<_, WaitError>(seq[(polls - 1).min(seq.len() - 1)].clone())
            },
            &mut |s| seen.push(s.status.clone()),
        );
        (r, polls, seen)
    }

    #[test]
    fn proven_or_anchored_ends_a_wait_for_a_proof() {
        let seq = [
            status("pending", None),
            status("batched", None),
            status("proven", None),
        ];
        let (r, polls, seen) = run(&seq, Until::Proven, None);
        assert_eq!(r.unwrap().status, "proven");
        assert_eq!(polls, 3);
        assert_eq!(seen, ["pending", "batched", "proven"]);
        // Anchored is past proven.
        let (r, polls, _) = run(&[status("anchored", Some("ab"))], Until::Proven, None);
        assert_eq!((r.unwrap().status.as_str(), polls), ("anchored", 1));
    }

    #[test]
    fn a_wait_for_the_anchor_goes_past_proven_and_needs_the_txid() {
        let seq = [
            status("proven", None),
            status("anchored", None),
            status("anchored", Some("ff")),
        ];
        let (r, polls, _) = run(&seq, Until::Anchored, None);
        assert_eq!(r.unwrap().txid.as_deref(), Some("ff"));
        assert_eq!(polls, 3);
    }

    #[test]
    fn rejection_and_timeout_end_the_wait_with_what_was_seen() {
        let (r, _, _) = run(
            &[status("pending", None), status("rejected", None)],
            Until::Proven,
            None,
        );
        match r {
            Err(WaitError::Rejected { id, reason }) => {
                assert_eq!((id.as_str(), reason.as_str()), ("t", "already_spent"))
            }
            other => panic!("{other:?}"),
        }
        let (r, polls, _) = run(
            &[status("batched", None)],
            Until::Proven,
            Some(Duration::from_millis(30)),
        );
        let err = r.unwrap_err();
        assert!(polls >= 2, "{polls}");
        assert!(
            matches!(&err, WaitError::TimedOut { status, goal: "proven", .. } if status == "batched"),
            "{err:?}"
        );
        assert!(err.to_string().contains("still batched"), "{err}");
        // A zero timeout asks once.
        let (r, polls, _) = run(
            &[status("pending", None)],
            Until::Proven,
            Some(Duration::ZERO),
        );
        assert!(matches!(r, Err(WaitError::TimedOut { .. })));
        assert_eq!(polls, 1);
    }

    #[test]
    fn a_poll_error_ends_the_wait() {
        let r = wait_for(
            "t",
            Until::Proven,
            None,
            Duration::from_millis(1),
            || Err::<TransferStatus, _>(WaitError::Client(ClientError::BadId("x".into()))),
            &mut |_| panic!("no status"),
        );
        assert!(matches!(r, Err(WaitError::Client(ClientError::BadId(_)))));
    }
}
