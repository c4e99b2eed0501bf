//! From `sqlx` errors to the ports' storage errors: connection trouble is `Unavailable`,
//! the rest `Unexpected`. Which database codes mean "unavailable" is the dialect's.

use ports::outbound::StorageError;

use crate::Dialect;

/// Maps a `sqlx` error that no business rule explains.
pub fn storage_error<D: Dialect>(error: sqlx::Error) -> StorageError {
    match &error {
        sqlx::Error::Io(_)
        | sqlx::Error::Tls(_)
        | sqlx::Error::PoolTimedOut
        | sqlx::Error::PoolClosed
        | sqlx::Error::WorkerCrashed => StorageError::unavailable(error),
        sqlx::Error::Database(database)
            if database.code().as_deref().is_some_and(D::unavailable_code) =>
        {
            StorageError::unavailable(error)
        }
        _ => StorageError::unexpected(error),
    }
}

/// A row that does not convert into a domain value.
pub fn corrupt(what: &str, id: i64, problem: impl std::fmt::Debug) -> StorageError {
    StorageError::unexpected(format!("corrupt {what} row {id}: {problem:?}"))
}
