//! Metrics of traversal methods.

pub mod vp;
