//! Metrics of traversal methods.

pub mod diversity;
pub mod vp;
