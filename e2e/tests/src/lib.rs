//! End-to-end tests of Volley against the official npm clients; the tests live in `tests/`.
//!
//! This library is empty: Cargo needs a target, and the test binaries share nothing that
//! `volley-test-support` does not already provide.
