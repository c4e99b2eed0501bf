//! From `sqlx` errors to the ports' storage errors: connection trouble is `Unavailable`,
//! the rest `Unexpected`; unique violations are told apart by the columns SQLite names.

use ports::outbound::StorageError;

/// SQLite's result codes for a busy or locked database (also extended codes).
const SQLITE_BUSY: i64 = 5;
const SQLITE_LOCKED: i64 = 6;
const SQLITE_CANTOPEN: i64 = 14;

/// Maps a `sqlx` error that no business rule explains.
pub(crate) fn storage_error(error: sqlx::Error) -> StorageError {
    match &error {
        sqlx::Error::Io(_)
        | sqlx::Error::Tls(_)
        | sqlx::Error::PoolTimedOut
        | sqlx::Error::PoolClosed
        | sqlx::Error::WorkerCrashed => StorageError::unavailable(error),
        sqlx::Error::Database(database) if is_unavailable(database.code().as_deref()) => {
            StorageError::unavailable(error)
        }
        _ => StorageError::unexpected(error),
    }
}

/// A database that is busy past the busy timeout, or cannot be opened.
fn is_unavailable(code: Option<&str>) -> bool {
    code.and_then(|code| code.parse::<i64>().ok())
        .is_some_and(|code| matches!(code & 0xff, SQLITE_BUSY | SQLITE_LOCKED | SQLITE_CANTOPEN))
}

/// Whether `error` is a violation of the unique constraint or index on `columns`
/// (`table.column, table.column`, as SQLite words it).
pub(crate) fn is_unique_violation(error: &sqlx::Error, columns: &str) -> bool {
    match error {
        sqlx::Error::Database(database) => {
            database.is_unique_violation()
                && database
                    .message()
                    .strip_prefix("UNIQUE constraint failed: ")
                    .is_some_and(|failed| failed == columns)
        }
        _ => false,
    }
}

/// A row that does not convert into a domain value.
pub(crate) fn corrupt(what: &str, id: i64, problem: impl std::fmt::Debug) -> StorageError {
    StorageError::unexpected(format!("corrupt {what} row {id}: {problem:?}"))
}
