//! The crate's error type: every fallible public call returns [`Result`].

/// A failure of a tensor operation. Each message names the op, what it got and
/// what it expected, so that a user can fix the call without reading our code.
#[derive(Debug, Clone, PartialEq, thiserror::Error)]
pub enum Error {
    /// Shapes that do not fit the operation.
    #[error("{op}: shape mismatch: {msg}")]
    Shape {
        /// The operation that failed, e.g. `"matmul"`.
        op: &'static str,
        /// What was wrong and what was expected, with the shapes.
        msg: String,
    },
    /// A tensor of a dtype the operation does not take.
    #[error("{op}: got dtype {got}, expected {expected}")]
    DType {
        /// The operation that failed.
        op: &'static str,
        /// The dtype that was passed.
        got: crate::DType,
        /// The dtype (or dtypes) the op accepts.
        expected: String,
    },
    /// Tensors on different devices were mixed in one operation.
    #[error(
        "{op}: tensors are on different devices ({a} and {b}); move one explicitly with to_device"
    )]
    Device {
        /// The operation that failed.
        op: &'static str,
        /// The first device.
        a: String,
        /// The second device.
        b: String,
    },
    /// An argument out of its valid range (an axis, a probability, an index...).
    #[error("{op}: invalid argument: {msg}")]
    Argument {
        /// The operation that failed.
        op: &'static str,
        /// What was wrong and what was expected.
        msg: String,
    },
    /// Misuse of automatic differentiation.
    #[error("autograd: {0}")]
    Autograd(String),
    /// A file could not be read or written.
    #[error("{path}: {msg}")]
    Io {
        /// The file.
        path: String,
        /// What went wrong.
        msg: String,
    },
    /// Weights (a checkpoint, a state dict) that do not fit the model or are corrupt.
    #[error("weights: {0}")]
    Weights(String),
    /// A failure inside a backend (out of memory, a driver error...).
    #[error("backend {backend}: {msg}")]
    Backend {
        /// The backend's name.
        backend: String,
        /// What went wrong.
        msg: String,
    },
}

/// Result alias of this crate.
pub type Result<T> = std::result::Result<T, Error>;

impl Error {
    /// A shape error for `op`.
    pub fn shape(op: &'static str, msg: impl Into<String>) -> Self {
        Error::Shape {
            op,
            msg: msg.into(),
        }
    }
    /// An invalid-argument error for `op`.
    pub fn arg(op: &'static str, msg: impl Into<String>) -> Self {
        Error::Argument {
            op,
            msg: msg.into(),
        }
    }
}
