//! The `Mailer` port over SMTP with `lettre`, and the log mailer used when no SMTP
//! server is configured (as Django's console e-mail backend).
//!
//! `SmtpMailer` takes an `smtp://` URL: `smtp://host:port` (plain), with
//! `?tls=required` for STARTTLS or `?tls=opportunistic`; `smtps://host:port` for
//! implicit TLS; `user:password@` for authentication.

use std::time::Duration;

use async_trait::async_trait;
use lettre::message::{Mailbox, MultiPart};
use lettre::{AsyncSmtpTransport, AsyncTransport, Message, Tokio1Executor};

use domain::mail::OutgoingEmail;
use ports::outbound::{MailError, Mailer};

/// Why an SMTP mailer could not be configured.
#[derive(Debug, thiserror::Error)]
pub enum SmtpConfigError {
    /// The URL is not an SMTP URL lettre understands.
    #[error("invalid SMTP URL: {0}")]
    Url(String),
    /// The sender address is not an address.
    #[error("invalid sender address `{0}`")]
    From(String),
}

/// Sends e-mail through an SMTP server.
#[derive(Clone)]
pub struct SmtpMailer {
    transport: AsyncSmtpTransport<Tokio1Executor>,
    from: Mailbox,
}

impl std::fmt::Debug for SmtpMailer {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        // The transport holds credentials: never print it.
        f.debug_struct("SmtpMailer")
            .field("from", &self.from.to_string())
            .finish_non_exhaustive()
    }
}

impl SmtpMailer {
    /// A mailer for the server at `url`, sending as `from`, giving up on a command after
    /// `timeout`. Make it inside a Tokio runtime: its connection pool lives there.
    ///
    /// # Errors
    /// `SmtpConfigError` for a bad URL or sender.
    pub fn from_url(url: &str, from: &str, timeout: Duration) -> Result<Self, SmtpConfigError> {
        let transport = AsyncSmtpTransport::<Tokio1Executor>::from_url(url)
            .map_err(|error| SmtpConfigError::Url(error.to_string()))?
            .timeout(Some(timeout))
            .build();
        let from = from
            .parse::<Mailbox>()
            .map_err(|_| SmtpConfigError::From(from.to_owned()))?;
        Ok(Self { transport, from })
    }

    fn message(&self, email: &OutgoingEmail) -> Result<Message, MailError> {
        let to = email
            .to
            .as_str()
            .parse::<Mailbox>()
            .map_err(|error| MailError::permanent(format!("bad recipient: {error}")))?;
        Message::builder()
            .from(self.from.clone())
            .to(to)
            .subject(email.subject.clone())
            .multipart(MultiPart::alternative_plain_html(
                email.text.clone(),
                email.html.clone(),
            ))
            .map_err(|error| MailError::permanent(format!("cannot build the message: {error}")))
    }
}

#[async_trait]
impl Mailer for SmtpMailer {
    async fn send(&self, email: &OutgoingEmail) -> Result<(), MailError> {
        let message = self.message(email)?;
        match self.transport.send(message).await {
            Ok(_) => Ok(()),
            // A 5xx reply: the server refuses for good (unknown mailbox, policy).
            Err(error) if error.is_permanent() => Err(MailError::permanent(error)),
            // A 4xx reply, a timeout, a refused or dropped connection: try again later.
            Err(error) => Err(MailError::transient(error)),
        }
    }
}

/// Writes each e-mail to the log on exactly one line, token and link included, so that
/// a developer can accept an invitation locally without an SMTP server (CONTRACT §8).
///
/// This line is the only one that names the recipient (`to=<address>`); the delivery
/// worker's own line names the outbox message instead. The subject and the body carry
/// values chosen by callers (an organization's or a person's name), so they are written
/// quoted and Debug-escaped: a line break in a name cannot end the line or start a
/// forged one (CONTRACT §9), whatever the log format does with other values.
#[derive(Debug, Clone, Copy, Default)]
pub struct LogMailer;

#[async_trait]
impl Mailer for LogMailer {
    async fn send(&self, email: &OutgoingEmail) -> Result<(), MailError> {
        tracing::info!(
            target: "orgs::mail",
            kind = email.kind.as_str(),
            to = %email.to,
            subject = ?email.subject,
            body = ?email.text,
            "e-mail written to the log (no SMTP server configured)"
        );
        Ok(())
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use domain::EmailAddress;
    use domain::mail::EmailKind;

    fn email() -> OutgoingEmail {
        OutgoingEmail {
            kind: EmailKind::Invitation,
            to: EmailAddress::parse("new@example.com").expect("valid"),
            subject: "Ada invited you".to_owned(),
            text: "Open http://x/invitations/accept?token=T\nThanks".to_owned(),
            html: "<p>Open</p>".to_owned(),
        }
    }

    #[tokio::test]
    async fn an_smtp_url_with_starttls_or_implicit_tls_is_accepted() {
        for url in [
            "smtp://127.0.0.1:1025",
            "smtp://user:pass@mail.example.com:587?tls=required",
            "smtps://mail.example.com:465",
        ] {
            assert!(
                SmtpMailer::from_url(url, "orgs <noreply@example.com>", Duration::from_secs(5))
                    .is_ok(),
                "{url}"
            );
        }
    }

    #[tokio::test]
    async fn a_bad_url_or_sender_is_refused() {
        assert!(matches!(
            SmtpMailer::from_url("http://nope", "noreply@example.com", Duration::from_secs(5)),
            Err(SmtpConfigError::Url(_))
        ));
        assert!(matches!(
            SmtpMailer::from_url(
                "smtp://127.0.0.1:1025",
                "not an address",
                Duration::from_secs(5)
            ),
            Err(SmtpConfigError::From(_))
        ));
    }

    #[tokio::test]
    async fn the_message_has_a_text_and_an_html_part() {
        let mailer = SmtpMailer::from_url(
            "smtp://127.0.0.1:1025",
            "noreply@example.com",
            Duration::from_secs(5),
        )
        .expect("valid");

        let message = mailer.message(&email()).expect("built");
        let formatted = String::from_utf8_lossy(&message.formatted()).to_string();

        assert!(formatted.contains("To: new@example.com"));
        assert!(formatted.contains("multipart/alternative"));
        assert!(formatted.contains("text/plain"));
        assert!(formatted.contains("text/html"));
    }

    #[tokio::test]
    async fn a_server_that_does_not_answer_is_a_transient_failure() {
        // Port 9 (discard) on loopback: nothing listens there in a test run.
        let mailer = SmtpMailer::from_url(
            "smtp://127.0.0.1:9",
            "noreply@example.com",
            Duration::from_secs(2),
        )
        .expect("valid");

        let sent = mailer.send(&email()).await;

        assert!(matches!(sent, Err(MailError::Transient(_))), "{sent:?}");
    }

    #[tokio::test]
    async fn the_log_mailer_always_accepts() {
        assert_eq!(LogMailer.send(&email()).await, Ok(()));
    }
}
