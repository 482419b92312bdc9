//! The library's error type. Every fallible function in the library returns [`Result`];
//! the binary wraps these in `anyhow` and prints them as one line.

use std::path::PathBuf;

/// Everything that can go wrong in the library.
#[derive(Debug, thiserror::Error)]
pub enum Error {
    /// A tensor operation failed (shape mismatch, device error, ...).
    #[error("tensor error: {0}")]
    Candle(#[from] candle_core::Error),

    /// Reading or writing a file failed.
    #[error("{}: {source}", path.display())]
    Io {
        path: PathBuf,
        #[source]
        source: std::io::Error,
    },

    /// An image file could not be decoded or encoded.
    #[error("{}: {msg}", path.display())]
    Image { path: PathBuf, msg: String },

    /// A dataset name or specification that is not known.
    #[error("unknown dataset '{0}' (expected sprites, scenes, folder:DIR or mnist:FILE)")]
    UnknownDataset(String),

    /// A dataset could not be opened or read (empty folder, bad IDX file, ...).
    #[error("{}: {msg}", path.display())]
    Dataset { path: PathBuf, msg: String },

    /// A checkpoint (weights + manifest) is missing, corrupt or inconsistent.
    #[error("{}: {msg}", path.display())]
    Checkpoint { path: PathBuf, msg: String },

    /// A configuration value or argument is invalid.
    #[error("{0}")]
    Config(String),

    /// An input or argument is beyond the resource policy ([`crate::limits`]); the message
    /// names it, its value and the limit.
    #[error("{0}")]
    Limit(String),

    /// A long-running job was cancelled by the user.
    #[error("cancelled")]
    Cancelled,
}

impl Error {
    /// Wraps an I/O error with the path it concerns.
    pub fn io(path: impl Into<PathBuf>, source: std::io::Error) -> Self {
        Error::Io {
            path: path.into(),
            source,
        }
    }

    /// A checkpoint error naming the file.
    pub fn checkpoint(path: impl Into<PathBuf>, msg: impl Into<String>) -> Self {
        Error::Checkpoint {
            path: path.into(),
            msg: msg.into(),
        }
    }

    /// A dataset error naming the file or folder.
    pub fn dataset(path: impl Into<PathBuf>, msg: impl Into<String>) -> Self {
        Error::Dataset {
            path: path.into(),
            msg: msg.into(),
        }
    }

    /// A configuration error.
    pub fn config(msg: impl Into<String>) -> Self {
        Error::Config(msg.into())
    }
}

/// The library's result type.
pub type Result<T, E = Error> = std::result::Result<T, E>;
