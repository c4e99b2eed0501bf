//! The e-mails the service sends, composed from domain values. Delivery is elsewhere:
//! these go into the durable outbox with the change that caused them.

use crate::email::EmailAddress;
use crate::optout::OptOut;

/// What an e-mail is about, for logs and metrics.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash)]
pub enum EmailKind {
    /// An invitation (or a resent one).
    Invitation,
    /// A notice of a new opt-out to the organization's contact.
    OptOutNotice,
}

impl EmailKind {
    /// The storage name.
    #[must_use]
    pub const fn as_str(self) -> &'static str {
        match self {
            EmailKind::Invitation => "invitation",
            EmailKind::OptOutNotice => "opt_out_notice",
        }
    }

    /// Parses a storage name.
    #[must_use]
    pub fn parse(value: &str) -> Option<Self> {
        [EmailKind::Invitation, EmailKind::OptOutNotice]
            .into_iter()
            .find(|kind| kind.as_str() == value)
    }
}

/// An e-mail ready to be queued.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct OutgoingEmail {
    /// What it is about.
    pub kind: EmailKind,
    /// The recipient.
    pub to: EmailAddress,
    /// The subject line.
    pub subject: String,
    /// The plain-text body.
    pub text: String,
    /// The HTML alternative.
    pub html: String,
}

/// The facts an invitation e-mail states.
#[derive(Debug, Clone, Copy)]
pub struct InvitationEmail<'a> {
    /// The invited address.
    pub to: &'a EmailAddress,
    /// The organization's name.
    pub organization_name: &'a str,
    /// Who invited, as a display name.
    pub inviter: &'a str,
    /// The base of links, such as `https://orgs.example.com` (no trailing slash needed).
    pub public_url: &'a str,
    /// The acceptance token, in clear: the e-mail is the one place it is shown.
    pub token: &'a str,
}

impl InvitationEmail<'_> {
    /// The acceptance link: `{public_url}/invitations/accept?token={token}`.
    #[must_use]
    pub fn accept_link(&self) -> String {
        format!(
            "{}/invitations/accept?token={}",
            self.public_url.trim_end_matches('/'),
            self.token
        )
    }

    /// Composes the e-mail.
    #[must_use]
    pub fn compose(&self) -> OutgoingEmail {
        let link = self.accept_link();
        let subject = format!(
            "{} invited you to join {}",
            self.inviter, self.organization_name
        );
        let text = format!(
            "Hello,\n\n{inviter} invited you to join {organization}.\n\n\
             To accept, open {link}\n\
             or send this token to POST /invitations/accept/: {token}\n\n\
             If you did not expect this invitation, you can ignore this e-mail.\n",
            inviter = self.inviter,
            organization = self.organization_name,
            token = self.token,
        );
        let html = format!(
            "<p>Hello,</p><p>{inviter} invited you to join <strong>{organization}</strong>.</p>\
             <p><a href=\"{link}\">Accept the invitation</a></p>\
             <p>Your token: <code>{token}</code></p>\
             <p>If you did not expect this invitation, you can ignore this e-mail.</p>",
            inviter = escape_html(self.inviter),
            organization = escape_html(self.organization_name),
            link = escape_html(&link),
            token = escape_html(self.token),
        );
        OutgoingEmail {
            kind: EmailKind::Invitation,
            to: self.to.clone(),
            subject,
            text,
            html,
        }
    }
}

/// Composes the notice of a new opt-out for an organization's contact address.
#[must_use]
pub fn opt_out_notice(
    to: &EmailAddress,
    organization_name: &str,
    opt_out: &OptOut,
) -> OutgoingEmail {
    let subject = format!("New opt-out for {organization_name}");
    let text = format!(
        "{address} opted out of {organization_name} (origin: {origin}, at {date}).\n",
        address = opt_out.address,
        origin = opt_out.origin.as_str(),
        date = opt_out.creation_date.to_rfc3339(),
    );
    let html = format!(
        "<p>{address} opted out of <strong>{organization}</strong> (origin: {origin}, at {date}).</p>",
        address = escape_html(opt_out.address.as_str()),
        organization = escape_html(organization_name),
        origin = opt_out.origin.as_str(),
        date = opt_out.creation_date.to_rfc3339(),
    );
    OutgoingEmail {
        kind: EmailKind::OptOutNotice,
        to: to.clone(),
        subject,
        text,
        html,
    }
}

fn escape_html(value: &str) -> String {
    let mut escaped = String::with_capacity(value.len());
    for c in value.chars() {
        match c {
            '&' => escaped.push_str("&amp;"),
            '<' => escaped.push_str("&lt;"),
            '>' => escaped.push_str("&gt;"),
            '"' => escaped.push_str("&quot;"),
            '\'' => escaped.push_str("&#x27;"),
            other => escaped.push(other),
        }
    }
    escaped
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::ids::OrganizationId;
    use crate::optout::OptOutOrigin;
    use crate::time::Timestamp;

    fn address(value: &str) -> EmailAddress {
        EmailAddress::parse(value).expect("valid")
    }

    #[test]
    fn an_invitation_names_the_organization_and_inviter_and_carries_the_link_and_token() {
        let to = address("new@example.com");
        let email = InvitationEmail {
            to: &to,
            organization_name: "Acme <Mail>",
            inviter: "Ada Lovelace",
            public_url: "http://127.0.0.1:8080/",
            token: "TOKEN123",
        }
        .compose();

        assert_eq!(email.to, to);
        assert_eq!(email.kind, EmailKind::Invitation);
        assert!(email.subject.contains("Ada Lovelace") && email.subject.contains("Acme <Mail>"));
        assert!(
            email
                .text
                .contains("http://127.0.0.1:8080/invitations/accept?token=TOKEN123")
        );
        assert!(email.html.contains("Acme &lt;Mail&gt;"));
        assert!(email.html.contains("TOKEN123"));
    }

    #[test]
    fn an_opt_out_notice_names_the_address_and_origin() {
        let opt_out = OptOut {
            organization_id: OrganizationId::new(1),
            address: address("gone@example.com"),
            origin: OptOutOrigin::Bounce,
            creation_date: Timestamp::UNIX_EPOCH,
        };

        let email = opt_out_notice(&address("contact@example.com"), "Acme", &opt_out);

        assert_eq!(email.to.as_str(), "contact@example.com");
        assert!(email.text.contains("gone@example.com") && email.text.contains("bounce"));
    }

    #[test]
    fn kinds_parse_back_from_their_names() {
        for kind in [EmailKind::Invitation, EmailKind::OptOutNotice] {
            assert_eq!(EmailKind::parse(kind.as_str()), Some(kind));
        }
    }
}
