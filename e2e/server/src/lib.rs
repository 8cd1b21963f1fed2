//! The parts of `conformance-server` that tests reuse in-process: the cluster handlers of
//! `../shared/conformance/CLUSTER.md`.

pub mod cluster;
