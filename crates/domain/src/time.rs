//! Time values. The domain never reads the clock: `now` is always passed in.

/// An instant, in UTC.
pub type Timestamp = chrono::DateTime<chrono::Utc>;

/// A length of time.
pub type Duration = chrono::TimeDelta;
