//! Module `ports` specifies the seams of the organizations service.
//!
//! - [`outbound`]: the *driven* ports the use cases need — one repository per aggregate,
//!   the e-mail outbox, the mailer, the clock, secrets and password hashing. Each
//!   repository method is one atomic business change.
//! - [`inbound`]: the *driving* ports — the use cases that the HTTP adapter and the
//!   command line call.
//!
//! With the `mocks` feature, every trait has a `mockall` mock (`MockClock`, …).

pub mod cause;
pub mod inbound;
pub mod outbound;

pub use cause::{Cause, ErrorChain};

pub use domain;
