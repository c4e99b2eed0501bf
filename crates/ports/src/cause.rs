//! The cause of a failure, kept across the ports so that a log line can show it whole.
//!
//! A storage, mail or hashing failure that no business rule explains travels up to the
//! use cases and the adapters as a [`Cause`]: the underlying error itself (a driver's
//! error, an I/O error, …), not its text. Each error type of the ports exposes it as its
//! [`source`](std::error::Error::source), so that [`ErrorChain`] can write the whole
//! chain of causes into a log line while the API's answer says nothing of it.
//!
//! ```
//! use ports::ErrorChain;
//! use ports::outbound::StorageError;
//!
//! let io = std::io::Error::other("connection refused");
//! let error = StorageError::unavailable(io);
//!
//! assert_eq!(error.to_string(), "storage unavailable");
//! assert_eq!(
//!     ErrorChain(&error).to_string(),
//!     "storage unavailable: connection refused"
//! );
//! ```

use std::error::Error;
use std::fmt;
use std::sync::Arc;

/// The underlying error of a failure: any error value, or a message where there is none.
///
/// Cheap to clone (shared). Two causes are equal when their chains read the same, so that
/// errors holding one still compare in tests.
#[derive(Clone)]
pub struct Cause(Arc<dyn Error + Send + Sync>);

impl Cause {
    /// Wraps an error value, or a message (`&str`, `String`) where there is no error.
    pub fn new(error: impl Into<Box<dyn Error + Send + Sync>>) -> Self {
        Self(Arc::from(error.into()))
    }

    /// The wrapped error.
    #[must_use]
    pub fn get(&self) -> &(dyn Error + Send + Sync + 'static) {
        &*self.0
    }
}

impl fmt::Debug for Cause {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        fmt::Debug::fmt(&*self.0, f)
    }
}

/// The wrapped error's own text (its causes are its [`source`](Error::source)).
impl fmt::Display for Cause {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        fmt::Display::fmt(&*self.0, f)
    }
}

impl Error for Cause {
    fn source(&self) -> Option<&(dyn Error + 'static)> {
        self.0.source()
    }
}

impl PartialEq for Cause {
    fn eq(&self, other: &Self) -> bool {
        ErrorChain(self).to_string() == ErrorChain(other).to_string()
    }
}

impl Eq for Cause {}

/// Writes an error and all its causes, walking [`source`](Error::source), joined by
/// `": "`; for log lines.
///
/// ```
/// use ports::{Cause, ErrorChain};
/// use ports::inbound::UseCaseError;
/// use ports::outbound::StorageError;
///
/// let error = UseCaseError::from(StorageError::unexpected("corrupt row 7"));
///
/// assert_eq!(
///     ErrorChain(&error).to_string(),
///     "internal error: unexpected storage error: corrupt row 7"
/// );
/// ```
#[derive(Clone, Copy)]
pub struct ErrorChain<'a>(pub &'a (dyn Error + 'static));

impl fmt::Display for ErrorChain<'_> {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        write!(f, "{}", self.0)?;
        let mut next = self.0.source();
        while let Some(cause) = next {
            write!(f, ": {cause}")?;
            next = cause.source();
        }
        Ok(())
    }
}

impl fmt::Debug for ErrorChain<'_> {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        fmt::Display::fmt(self, f)
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[derive(Debug, thiserror::Error)]
    #[error("outer")]
    struct Outer(#[source] std::io::Error);

    #[test]
    fn the_chain_walks_every_source() {
        let cause = Cause::new(Outer(std::io::Error::other("inner")));

        assert_eq!(cause.to_string(), "outer");
        assert_eq!(ErrorChain(&cause).to_string(), "outer: inner");
    }

    #[test]
    fn a_message_is_a_cause_without_sources() {
        let cause = Cause::new("no error value here");

        assert_eq!(ErrorChain(&cause).to_string(), "no error value here");
        assert!(cause.source().is_none());
    }

    #[test]
    fn a_use_case_error_keeps_the_storage_error_itself() {
        use crate::inbound::UseCaseError;
        use crate::outbound::StorageError;

        let error = UseCaseError::from(StorageError::unexpected(Outer(std::io::Error::other(
            "disk full",
        ))));

        let UseCaseError::Internal(cause) = &error else {
            panic!("not internal: {error:?}");
        };
        let storage = cause.get().downcast_ref::<StorageError>();
        assert!(
            matches!(storage, Some(StorageError::Unexpected(_))),
            "{storage:?}"
        );
        assert_eq!(
            ErrorChain(&error).to_string(),
            "internal error: unexpected storage error: outer: disk full"
        );
    }

    #[test]
    fn causes_compare_by_their_chains() {
        assert_eq!(Cause::new("a"), Cause::new(String::from("a")));
        assert_ne!(Cause::new("a"), Cause::new("b"));
    }
}
