//! The adapter boundary: where rooms live and where broadcasts and the utility methods go,
//! so that a cluster adapter (Redis) can take them past one server.
//!
//! The contract is defined in `volley-core` (`volley_core::adapter`), so that adapters depend
//! on it rather than on this server; it is re-exported here whole. Each namespace has one
//! adapter, made by the [`AdapterFactory`] chosen in the builder and stored as
//! `Arc<dyn Adapter>`: no user-facing type is generic over it. [`LocalAdapter`] is the
//! default and the building block of cluster adapters. Adapters reach the namespace's sockets
//! through [`LocalSockets`], which this server implements for each namespace.

pub use volley_core::adapter::*;
