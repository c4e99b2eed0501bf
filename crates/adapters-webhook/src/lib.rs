//! `WebhookSender` over HTTP with `reqwest` and rustls (CONTRACT §14): each request is
//! signed as Standard Webhooks say, redirects are not followed (a `3xx` is an answer like
//! any other), an answer must come within the timeout, and a host whose DNS answer holds
//! an address `domain::webhook::address_allowed` refuses is not connected to, unless
//! private addresses are allowed. The check runs inside the connection's own resolution,
//! so a name cannot resolve to a public address for a check and a private one for the
//! connection.

use std::error::Error as StdError;
use std::net::{IpAddr, SocketAddr};
use std::sync::Arc;
use std::time::Duration;

use async_trait::async_trait;
use base64::Engine as _;
use base64::engine::general_purpose::STANDARD;
use hmac::{Hmac, Mac};
use ports::outbound::{WebhookRequest, WebhookSendError, WebhookSender};
use reqwest::dns::{Addrs, Name, Resolve, Resolving};
use sha2::Sha256;

/// The `webhook-signature` header's value: `v1,` and the base64 of HMAC-SHA256 over
/// `{id}.{timestamp}.{body}`, keyed by the secret's decoded base64 part.
#[must_use]
pub fn signature(key: &[u8], id: &str, timestamp: i64, body: &str) -> String {
    // HMAC takes a key of any length.
    let Ok(mut mac) = Hmac::<Sha256>::new_from_slice(key) else {
        return String::new();
    };
    mac.update(format!("{id}.{timestamp}.{body}").as_bytes());
    format!("v1,{}", STANDARD.encode(mac.finalize().into_bytes()))
}

/// The refusal of a destination address.
#[derive(Debug)]
struct AddressRefused(String);

impl std::fmt::Display for AddressRefused {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        write!(f, "This address is not allowed: {}", self.0)
    }
}

impl StdError for AddressRefused {}

/// Resolves with the system resolver, and refuses a name any of whose addresses is
/// refused.
struct CheckedResolver;

impl Resolve for CheckedResolver {
    fn resolve(&self, name: Name) -> Resolving {
        Box::pin(async move {
            let host = name.as_str().to_owned();
            let addresses: Vec<SocketAddr> =
                tokio::net::lookup_host((host.as_str(), 0)).await?.collect();
            if let Some(refused) = addresses
                .iter()
                .find(|address| !domain::webhook::address_allowed(address.ip()))
            {
                return Err(Box::new(AddressRefused(format!(
                    "{host} resolves to {}",
                    refused.ip()
                ))) as Box<dyn StdError + Send + Sync>);
            }
            let addresses: Addrs = Box::new(addresses.into_iter());
            Ok(addresses)
        })
    }
}

/// The sender.
#[derive(Debug, Clone)]
pub struct HttpWebhookSender {
    client: reqwest::Client,
    allow_private: bool,
    timeout: Duration,
}

impl HttpWebhookSender {
    /// A sender whose requests must be answered within `timeout`; with `allow_private`,
    /// no address is refused (`ORGS_WEBHOOK_ALLOW_PRIVATE`).
    ///
    /// # Errors
    /// The HTTP client could not be built (no TLS roots).
    pub fn new(timeout: Duration, allow_private: bool) -> Result<Self, WebhookSendError> {
        let mut builder = reqwest::Client::builder()
            .redirect(reqwest::redirect::Policy::none())
            .timeout(timeout)
            .connect_timeout(timeout)
            .user_agent("orgs-webhooks/1");
        if !allow_private {
            builder = builder.dns_resolver(Arc::new(CheckedResolver));
        }
        let client = builder
            .build()
            .map_err(|error| WebhookSendError(error_chain(&error)))?;
        Ok(Self {
            client,
            allow_private,
            timeout,
        })
    }
}

/// An error with its causes, `: `-separated.
fn error_chain(error: &(dyn StdError + 'static)) -> String {
    let mut text = error.to_string();
    let mut source = error.source();
    while let Some(cause) = source {
        let cause_text = cause.to_string();
        if !text.contains(&cause_text) {
            text.push_str(": ");
            text.push_str(&cause_text);
        }
        source = cause.source();
    }
    text
}

/// Whether an error, or one of its causes, is an address refusal; its text if so.
fn refusal(error: &(dyn StdError + 'static)) -> Option<String> {
    let mut current: Option<&(dyn StdError + 'static)> = Some(error);
    while let Some(cause) = current {
        if let Some(refused) = cause.downcast_ref::<AddressRefused>() {
            return Some(refused.to_string());
        }
        current = cause.source();
    }
    None
}

#[async_trait]
impl WebhookSender for HttpWebhookSender {
    #[tracing::instrument(skip_all, fields(webhook.id = %request.id))]
    async fn send(&self, request: &WebhookRequest) -> Result<u16, WebhookSendError> {
        let url = reqwest::Url::parse(request.endpoint.as_str())
            .map_err(|error| WebhookSendError(format!("Invalid endpoint: {error}")))?;
        if !self.allow_private {
            // An IP literal is connected to without resolution: check it here.
            let literal = match url.host() {
                Some(url::Host::Ipv4(v4)) => Some(IpAddr::V4(v4)),
                Some(url::Host::Ipv6(v6)) => Some(IpAddr::V6(v6)),
                _ => None,
            };
            if let Some(address) = literal {
                if !domain::webhook::address_allowed(address) {
                    return Err(WebhookSendError(
                        AddressRefused(address.to_string()).to_string(),
                    ));
                }
            }
        }
        let key = request.secret.key();
        let sent = self
            .client
            .post(url)
            .header("content-type", "application/json")
            .header("webhook-id", request.id.as_str())
            .header("webhook-timestamp", request.timestamp.to_string())
            .header(
                "webhook-signature",
                signature(&key, &request.id, request.timestamp, &request.body),
            )
            .body(request.body.clone())
            .send()
            .await;
        match sent {
            Ok(response) => Ok(response.status().as_u16()),
            Err(error) if error.is_timeout() => Err(WebhookSendError(format!(
                "No answer within {} s",
                self.timeout.as_secs()
            ))),
            Err(error) => Err(WebhookSendError(
                refusal(&error).unwrap_or_else(|| error_chain(&error)),
            )),
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    /// The test vector of the Standard Webhooks reference libraries.
    #[test]
    fn the_signature_matches_the_reference_test_vector() {
        let secret = domain::webhook::WebhookSecret::from_stored(
            "whsec_MfKQ9r8GKYqrTwjUPD8ILPZIo2LaLaSw".to_owned(),
        );
        assert_eq!(
            signature(
                &secret.key(),
                "msg_p5jXN8AQM9LWM0D4loKWxJek",
                1_614_265_330,
                r#"{"test": 2432232314}"#
            ),
            "v1,g0hM9SsE+OTPJTGt/tmIKtSyZlE3uFJELVlNIOLJ1OE="
        );
    }

    #[tokio::test]
    async fn localhost_is_refused_after_resolution() {
        let resolved = CheckedResolver
            .resolve("localhost".parse().expect("name"))
            .await;
        let error = resolved.err().expect("refused");
        assert!(error.to_string().contains("not allowed"), "{error}");
    }
}
