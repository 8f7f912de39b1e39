//! # verdis-conformance: the model against real servers, both ways
//!
//! 1. **Model -> processes.** [`verdis_model::settled`] turns model paths into *settled
//!    traces*: environment steps (write, link cut, kill -9, restart, FAILOVER, WAIT), each with
//!    every quiescent state the model allows after it. [`replay`] drives real processes
//!    (verdis-server or Debian's redis-server 7.0.15, see [`cluster`]) through the same steps,
//!    with a fault [`proxy`] on every replication link, and compares what INFO shows
//!    ([`compare`]). Against redis-server the same traces validate the model itself; known
//!    disagreements are data (conformance/differences.json), each with its reason.
//! 2. **Processes -> model.** [`validate`] reads the protocol traces verdis-server writes
//!    (`verdis-protocol-trace`) and checks every line is a transition the model allows, and that
//!    the nodes' logs agree with each other link by link.
//!
//! The CLI is `verdis-conform` (src/bin); docs/conformance.md explains the trace format, the
//! abstraction mapping and the differences list.

pub mod cluster;
pub mod compare;
pub mod proxy;
pub mod replay;
pub mod validate;
