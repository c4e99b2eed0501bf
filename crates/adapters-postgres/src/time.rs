//! Timestamps are stored with microsecond precision; values are truncated (not
//! rounded) before they are stored, so that what is read back equals what was written.

use chrono::SubsecRound as _;
use domain::Timestamp;

/// `at`, truncated to the microsecond.
pub(crate) fn micros(at: Timestamp) -> Timestamp {
    at.trunc_subsecs(6)
}
