//! The coordinated switchover: `FAILOVER [TO host port [FORCE]] [TIMEOUT ms] | ABORT`.
//!
//! The master pauses writes and enters `waiting-for-sync`. When the target replica's ack equals
//! `master_repl_offset` (it holds every write) the master enters `failover-in-progress`: it
//! turns itself into a replica of the target, caching its own history, and sends
//! `PSYNC <replid> <offset+1> FAILOVER`. The target sees its own replid in that request,
//! promotes itself (shifting the id to `replid2`) and answers `+CONTINUE <newid>`: no write is
//! lost and no full sync happens. On the timeout the switchover aborts, unless FORCE was given,
//! in which case the master demotes anyway and writes the target never received are lost to
//! the full resync that follows (the hazard behind Redis's Sentinel failover losses).
//!
//! This module holds the states and the command's validation; the transitions live with the
//! rest of the node's handlers.

use super::NodeId;
use serde::{Deserialize, Serialize};

/// `master_failover_state` in INFO.
#[derive(Clone, Copy, Debug, PartialEq, Eq, Hash, Serialize, Deserialize)]
pub enum FailoverState {
    NoFailover,
    /// Writes paused; waiting for the target's ack to reach our offset.
    WaitingForSync {
        target: NodeId,
        force: bool,
    },
    /// Demoted; our `PSYNC ... FAILOVER` is on its way to the target.
    InProgress {
        target: NodeId,
    },
}

impl FailoverState {
    pub fn info_name(self) -> &'static str {
        match self {
            FailoverState::NoFailover => "no-failover",
            FailoverState::WaitingForSync { .. } => "waiting-for-sync",
            FailoverState::InProgress { .. } => "failover-in-progress",
        }
    }

    /// Client writes are paused from the FAILOVER command until it ends.
    pub fn pauses_writes(self) -> bool {
        !matches!(self, FailoverState::NoFailover)
    }
}

/// A parsed `FAILOVER` command (the server turns `TO host port` into a node id).
#[derive(Clone, Copy, Debug, PartialEq, Eq, Hash, Serialize, Deserialize)]
pub struct FailoverRequest {
    pub target: Option<NodeId>,
    /// 0 = no timeout.
    pub timeout_ms: u64,
    pub force: bool,
}

/// Why `FAILOVER` was refused; `Display` is Redis's error text.
#[derive(Clone, Copy, Debug, PartialEq, Eq, Hash, Serialize, Deserialize)]
pub enum FailoverError {
    IsReplica,
    ForceNeedsTimeoutAndTarget,
    AlreadyInProgress,
    TargetNotReplica,
    NoTarget,
    NoFailoverInProgress,
}

impl std::fmt::Display for FailoverError {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.write_str(match self {
            FailoverError::IsReplica => "ERR FAILOVER is not valid when server is a replica.",
            FailoverError::ForceNeedsTimeoutAndTarget => {
                "ERR FAILOVER with force option requires both a timeout and target HOST and IP."
            }
            FailoverError::AlreadyInProgress => "ERR FAILOVER already in progress.",
            FailoverError::TargetNotReplica => {
                "ERR FAILOVER target HOST and PORT is not a replica."
            }
            FailoverError::NoTarget => "ERR FAILOVER requires connected replicas.",
            FailoverError::NoFailoverInProgress => "ERR No failover in progress.",
        })
    }
}

impl FailoverRequest {
    /// The argument checks Redis makes before looking at the replicas.
    pub fn validate(&self) -> Result<(), FailoverError> {
        if self.force && (self.timeout_ms == 0 || self.target.is_none()) {
            return Err(FailoverError::ForceNeedsTimeoutAndTarget);
        }
        Ok(())
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn force_requires_timeout_and_target() {
        let r = FailoverRequest {
            target: None,
            timeout_ms: 100,
            force: true,
        };
        assert_eq!(r.validate(), Err(FailoverError::ForceNeedsTimeoutAndTarget));
        let r = FailoverRequest {
            target: Some(1),
            timeout_ms: 0,
            force: true,
        };
        assert_eq!(r.validate(), Err(FailoverError::ForceNeedsTimeoutAndTarget));
        let r = FailoverRequest {
            target: Some(1),
            timeout_ms: 100,
            force: true,
        };
        assert_eq!(r.validate(), Ok(()));
        assert_eq!(
            FailoverError::ForceNeedsTimeoutAndTarget.to_string(),
            "ERR FAILOVER with force option requires both a timeout and target HOST and IP."
        );
    }

    #[test]
    fn failover_states_render_as_info_shows_them() {
        assert_eq!(FailoverState::NoFailover.info_name(), "no-failover");
        assert_eq!(
            FailoverState::WaitingForSync {
                target: 1,
                force: false
            }
            .info_name(),
            "waiting-for-sync"
        );
        assert_eq!(
            FailoverState::InProgress { target: 1 }.info_name(),
            "failover-in-progress"
        );
        assert!(!FailoverState::NoFailover.pauses_writes());
    }
}
