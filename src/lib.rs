//! latentflow: explore the latent spaces of generative models with learned potential flows.
//!
//! The library holds everything the desktop app and the command line share: procedural
//! datasets ([`data`]), layers with exact forward-mode tangents ([`nn`]), generators
//! ([`models`]), training jobs ([`train`]) and checkpoints ([`store`]).

pub mod alloc;
pub mod app;
pub mod bench;
pub mod cli;
pub mod data;
pub mod edit;
pub mod error;
pub mod eval;
pub mod files;
pub mod landscape;
pub mod limits;
pub mod methods;
pub mod models;
pub mod nn;
pub mod session;
pub mod stats;
pub mod store;
pub mod train;
pub mod worker;

pub use error::{Error, Result};
