//! The parts of `conformance-server` that tests reuse in-process: the cluster handlers of
//! `../shared/conformance/CLUSTER.md`, and the optional modes of SUITES.md section 6.

pub mod cluster;
pub mod modes;
