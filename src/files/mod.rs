//! Every file the program reads or writes goes through here, under three rules:
//! - **Writes are atomic** ([`atomic`]): a temporary file beside the target, then a rename;
//!   a crash or a full disk leaves the old file or the new one, never a truncated one, and
//!   temporary files left by a killed process are removed at the next write.
//! - **Nothing of the user's is replaced** ([`output`]): an existing output is overwritten
//!   only when it is latentflow's own file (or model folder) of the same kind and the user
//!   said so (`--force`, `--restart`). Every file latentflow writes carries a mark that
//!   says so ([`MARK`]).
//! - **Reads are bounded** ([`input`]): only regular files (no FIFO, device or folder), of a
//!   bounded size, decompressed to a bounded size.

pub mod atomic;
pub mod gif;
pub mod input;
pub mod output;
pub mod png;

/// The mark latentflow leaves in the files it writes: the `Software` text of a PNG, a GIF
/// comment, the `software` field of a JSON document.
pub const MARK: &str = "latentflow";
