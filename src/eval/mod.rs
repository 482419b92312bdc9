//! Metrics of traversal methods.

pub mod diversity;
pub mod factors;
pub mod vp;
