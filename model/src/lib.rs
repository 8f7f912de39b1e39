//! # verdis-model: the stateright model of the Verdis protocol core
//!
//! (Filled by the protocol-core issue.)

pub mod election;
pub mod liveness;
