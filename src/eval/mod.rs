//! Metrics of traversal methods.

pub mod compare;
pub mod control;
pub mod diversity;
pub mod equivariance;
pub mod factors;
pub mod quality;
pub mod vp;
