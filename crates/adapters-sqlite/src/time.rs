//! Timestamps are stored as integer microseconds since the Unix epoch (UTC): they sort
//! and compare as instants, and keep the same precision as PostgreSQL's `timestamptz`.
//! Sub-microsecond digits are truncated, so that what is read back equals what was
//! written on both backends.

use domain::Timestamp;
use ports::outbound::StorageError;

/// `at` as stored: whole microseconds since the epoch.
pub(crate) fn micros(at: Timestamp) -> i64 {
    at.timestamp_micros()
}

/// A stored instant; `what` and `id` name the row for the error of a corrupt value.
pub(crate) fn timestamp(what: &str, id: i64, micros: i64) -> Result<Timestamp, StorageError> {
    Timestamp::from_timestamp_micros(micros).ok_or_else(|| {
        StorageError::unexpected(format!("corrupt {what} row {id}: bad instant {micros}"))
    })
}

/// An optional stored instant.
pub(crate) fn optional_timestamp(
    what: &str,
    id: i64,
    micros: Option<i64>,
) -> Result<Option<Timestamp>, StorageError> {
    micros.map(|micros| timestamp(what, id, micros)).transpose()
}
