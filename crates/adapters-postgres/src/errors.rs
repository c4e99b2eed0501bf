//! From `sqlx` errors to the ports' storage errors: connection trouble is `Unavailable`,
//! the rest `Unexpected`; unique violations are told apart by constraint name.

use ports::outbound::StorageError;

/// Maps a `sqlx` error that no business rule explains.
pub(crate) fn storage_error(error: sqlx::Error) -> StorageError {
    match &error {
        sqlx::Error::Io(_)
        | sqlx::Error::Tls(_)
        | sqlx::Error::PoolTimedOut
        | sqlx::Error::PoolClosed
        | sqlx::Error::WorkerCrashed => StorageError::unavailable(error),
        sqlx::Error::Database(database) if is_connection_failure(database.code().as_deref()) => {
            StorageError::unavailable(error)
        }
        sqlx::Error::Database(database) if database.code().as_deref() == Some(QUERY_CANCELED) => {
            StorageError::unavailable(error)
        }
        _ => StorageError::unexpected(error),
    }
}

/// SQLSTATE 57014: a statement cancelled, by `statement_timeout` in particular.
const QUERY_CANCELED: &str = "57014";

/// SQLSTATE classes 08 (connection exception) and 57P0x (server shutting down), and
/// 53300 (too many connections).
fn is_connection_failure(code: Option<&str>) -> bool {
    code.is_some_and(|code| code.starts_with("08") || code.starts_with("57P0") || code == "53300")
}

/// Whether `error` is a violation of the unique constraint or index `constraint`.
pub(crate) fn is_unique_violation(error: &sqlx::Error, constraint: &str) -> bool {
    match error {
        sqlx::Error::Database(database) => {
            database.is_unique_violation() && database.constraint() == Some(constraint)
        }
        _ => false,
    }
}

/// A row that does not convert into a domain value.
pub(crate) fn corrupt(what: &str, id: i64, problem: impl std::fmt::Debug) -> StorageError {
    StorageError::unexpected(format!("corrupt {what} row {id}: {problem:?}"))
}
