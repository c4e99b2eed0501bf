//! How instants are stored: with microsecond precision, truncated (not rounded) before
//! they are stored, so that what is read back equals what was written on every backend.

use chrono::SubsecRound as _;
use domain::Timestamp;

/// A stored value that is no instant (it is out of `Timestamp`'s range).
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct InstantOutOfRange(pub i64);

/// A column value holding an instant.
pub trait StoredInstant: Sized + Copy + Send + Sync + Unpin + 'static {
    /// `at` as stored.
    fn store(at: Timestamp) -> Self;
    /// The stored instant.
    ///
    /// # Errors
    /// A value that is no instant.
    fn load(self) -> Result<Timestamp, InstantOutOfRange>;
}

/// A native timestamp column (`timestamptz`), truncated to the microsecond.
impl StoredInstant for Timestamp {
    fn store(at: Timestamp) -> Self {
        at.trunc_subsecs(6)
    }

    fn load(self) -> Result<Timestamp, InstantOutOfRange> {
        Ok(self)
    }
}

/// An integer column: whole microseconds since the Unix epoch (UTC), which sort and
/// compare as instants.
impl StoredInstant for i64 {
    fn store(at: Timestamp) -> Self {
        at.timestamp_micros()
    }

    fn load(self) -> Result<Timestamp, InstantOutOfRange> {
        Timestamp::from_timestamp_micros(self).ok_or(InstantOutOfRange(self))
    }
}

/// A stored instant; `what` and `id` name the row for the error of a corrupt value.
pub(crate) fn load<I: StoredInstant>(
    what: &str,
    id: i64,
    at: I,
) -> Result<Timestamp, ports::outbound::StorageError> {
    at.load().map_err(|bad| crate::corrupt(what, id, bad))
}

/// An optional stored instant.
pub(crate) fn load_optional<I: StoredInstant>(
    what: &str,
    id: i64,
    at: Option<I>,
) -> Result<Option<Timestamp>, ports::outbound::StorageError> {
    at.map(|at| load(what, id, at)).transpose()
}

/// `at`, truncated to the microsecond: as it compares once stored.
pub(crate) fn truncate(at: Timestamp) -> Timestamp {
    at.trunc_subsecs(6)
}
