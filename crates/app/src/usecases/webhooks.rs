//! Webhooks (CONTRACT §14): an organization's administrators manage them and read their
//! deliveries; the webhook worker (`crate::webhooks`) sends what the events queued.

use std::sync::Arc;

use async_trait::async_trait;

use domain::audit::{Changes, EventAction, EventTarget, NewEvent};
use domain::pagination::{Page, PageRequest};
use domain::webhook::{Delivery, Webhook, WebhookInput, WebhookSecret};
use domain::{Action, Actor, DeliveryId, ErrorCode, OrganizationId, ValidationErrors, WebhookId};
use ports::inbound::{UseCaseError, WebhookUseCases};
use ports::outbound::{
    Clock, CreateWebhookError, OrganizationRepository, SecretGenerator, WebhookRepository,
};

use super::authorized_organization;

/// The webhook use cases.
#[derive(Clone)]
pub struct WebhookService {
    organizations: Arc<dyn OrganizationRepository>,
    webhooks: Arc<dyn WebhookRepository>,
    secrets: Arc<dyn SecretGenerator>,
    clock: Arc<dyn Clock>,
    allow_private: bool,
}

impl WebhookService {
    /// A service over these ports; `allow_private` accepts endpoints on private
    /// addresses (`ORGS_WEBHOOK_ALLOW_PRIVATE`).
    pub fn new(
        organizations: Arc<dyn OrganizationRepository>,
        webhooks: Arc<dyn WebhookRepository>,
        secrets: Arc<dyn SecretGenerator>,
        clock: Arc<dyn Clock>,
        allow_private: bool,
    ) -> Self {
        Self {
            organizations,
            webhooks,
            secrets,
            clock,
            allow_private,
        }
    }

    async fn authorize(
        &self,
        actor: &Actor,
        organization: OrganizationId,
    ) -> Result<(), UseCaseError> {
        authorized_organization(
            self.organizations.as_ref(),
            actor,
            Action::ManageWebhooks,
            organization,
        )
        .await
        .map(drop)
    }

    async fn existing(
        &self,
        actor: &Actor,
        organization: OrganizationId,
        webhook: WebhookId,
    ) -> Result<Webhook, UseCaseError> {
        self.authorize(actor, organization).await?;
        self.webhooks
            .find(organization, webhook)
            .await?
            .ok_or(UseCaseError::NotFound)
    }

    fn event(&self, actor: &Actor, action: EventAction, webhook: &Webhook) -> NewEvent {
        NewEvent::by(
            actor,
            action,
            webhook.organization_id,
            EventTarget::Webhook(webhook.id),
            self.clock.now(),
        )
    }
}

fn patterns_text(webhook: &Webhook) -> String {
    webhook
        .events
        .iter()
        .map(domain::webhook::EventPattern::as_text)
        .collect::<Vec<_>>()
        .join(",")
}

/// What `webhook.updated` records between two versions (never the secret).
fn changes(before: &Webhook, after: &Webhook) -> Changes {
    Changes::new()
        .with(
            "endpoint",
            before.endpoint.as_str(),
            after.endpoint.as_str(),
        )
        .with(
            "events",
            patterns_text(before).as_str(),
            patterns_text(after).as_str(),
        )
        .with(
            "description",
            before.description.as_str(),
            after.description.as_str(),
        )
        .with("active", before.active, after.active)
}

#[async_trait]
impl WebhookUseCases for WebhookService {
    async fn create(
        &self,
        actor: &Actor,
        organization: OrganizationId,
        input: WebhookInput,
    ) -> Result<(Webhook, WebhookSecret), UseCaseError> {
        self.authorize(actor, organization).await?;
        let fields = input.validate(false, self.allow_private)?;
        let secret = WebhookSecret::from_token(&self.secrets.generate());
        let created_changes = Changes::new()
            .with(
                "endpoint",
                None::<&str>,
                fields.endpoint.as_ref().map(|e| e.as_str()),
            )
            .with("active", None::<bool>, fields.active);
        let event = NewEvent::by(
            actor,
            EventAction::WebhookCreated,
            organization,
            EventTarget::ThisWebhook,
            self.clock.now(),
        )
        .with_changes(created_changes);
        match self
            .webhooks
            .create(organization, fields, &secret, event)
            .await
        {
            Ok(webhook) => Ok((webhook, secret)),
            Err(CreateWebhookError::TooMany) => Err(UseCaseError::Validation(
                ValidationErrors::non_field(ErrorCode::TooManyWebhooks),
            )),
            Err(CreateWebhookError::Storage(error)) => Err(error.into()),
        }
    }

    async fn list(
        &self,
        actor: &Actor,
        organization: OrganizationId,
        page: PageRequest,
    ) -> Result<Page<Webhook>, UseCaseError> {
        self.authorize(actor, organization).await?;
        let listed = self.webhooks.list(organization, page).await?;
        page.check(listed.total)
            .map_err(|_| UseCaseError::InvalidPage)?;
        Ok(listed)
    }

    async fn get(
        &self,
        actor: &Actor,
        organization: OrganizationId,
        webhook: WebhookId,
    ) -> Result<Webhook, UseCaseError> {
        self.existing(actor, organization, webhook).await
    }

    async fn update(
        &self,
        actor: &Actor,
        organization: OrganizationId,
        webhook: WebhookId,
        input: WebhookInput,
    ) -> Result<Webhook, UseCaseError> {
        let before = self.existing(actor, organization, webhook).await?;
        let fields = input.validate(true, self.allow_private)?;
        let after = Webhook {
            endpoint: fields.endpoint.unwrap_or_else(|| before.endpoint.clone()),
            events: fields.events.unwrap_or_else(|| before.events.clone()),
            description: fields
                .description
                .unwrap_or_else(|| before.description.clone()),
            active: fields.active.unwrap_or(before.active),
            ..before.clone()
        };
        let changed = changes(&before, &after);
        let event = (!changed.is_empty()).then(|| {
            self.event(actor, EventAction::WebhookUpdated, &after)
                .with_changes(changed)
        });
        if self.webhooks.update(&after, event).await? {
            Ok(after)
        } else {
            Err(UseCaseError::NotFound)
        }
    }

    async fn delete(
        &self,
        actor: &Actor,
        organization: OrganizationId,
        webhook: WebhookId,
    ) -> Result<(), UseCaseError> {
        let existing = self.existing(actor, organization, webhook).await?;
        let event = self.event(actor, EventAction::WebhookDeleted, &existing);
        if self.webhooks.delete(organization, webhook, event).await? {
            Ok(())
        } else {
            Err(UseCaseError::NotFound)
        }
    }

    async fn rotate_secret(
        &self,
        actor: &Actor,
        organization: OrganizationId,
        webhook: WebhookId,
    ) -> Result<(Webhook, WebhookSecret), UseCaseError> {
        let existing = self.existing(actor, organization, webhook).await?;
        let secret = WebhookSecret::from_token(&self.secrets.generate());
        let event = self.event(actor, EventAction::WebhookSecretRotated, &existing);
        if self
            .webhooks
            .rotate_secret(organization, webhook, &secret, event)
            .await?
        {
            Ok((existing, secret))
        } else {
            Err(UseCaseError::NotFound)
        }
    }

    async fn deliveries(
        &self,
        actor: &Actor,
        organization: OrganizationId,
        webhook: WebhookId,
        page: PageRequest,
    ) -> Result<Page<Delivery>, UseCaseError> {
        self.existing(actor, organization, webhook).await?;
        let listed = self.webhooks.deliveries(webhook, page).await?;
        page.check(listed.total)
            .map_err(|_| UseCaseError::InvalidPage)?;
        Ok(listed)
    }

    async fn retry_delivery(
        &self,
        actor: &Actor,
        organization: OrganizationId,
        webhook: WebhookId,
        delivery: DeliveryId,
    ) -> Result<(), UseCaseError> {
        self.existing(actor, organization, webhook).await?;
        if self
            .webhooks
            .retry_delivery(webhook, delivery, self.clock.now())
            .await?
        {
            Ok(())
        } else {
            Err(UseCaseError::NotFound)
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::usecases::fixtures::*;
    use domain::Role;
    use domain::secret::SecretToken;
    use domain::webhook::{Endpoint, EventPattern};
    use ports::outbound::{
        MockClock, MockOrganizationRepository, MockSecretGenerator, MockWebhookRepository,
    };

    fn service(webhooks: MockWebhookRepository, allow_private: bool) -> WebhookService {
        let mut organizations = MockOrganizationRepository::new();
        organizations.expect_find().returning(|id| {
            Ok([root(), child(), other_root()]
                .into_iter()
                .find(|organization| organization.id == id))
        });
        let mut secrets = MockSecretGenerator::new();
        secrets
            .expect_generate()
            .returning(|| SecretToken::from_random_bytes([9; 32]));
        let mut clock = MockClock::new();
        clock.expect_now().returning(now);
        WebhookService::new(
            Arc::new(organizations),
            Arc::new(webhooks),
            Arc::new(secrets),
            Arc::new(clock),
            allow_private,
        )
    }

    fn input(endpoint: &str) -> WebhookInput {
        WebhookInput {
            endpoint: domain::Input::Value(endpoint.to_owned()),
            ..WebhookInput::default()
        }
    }

    fn webhook(active: bool) -> Webhook {
        Webhook {
            id: WebhookId::new(3),
            organization_id: ROOT,
            endpoint: Endpoint::from_stored("https://hooks.example.com/".to_owned()),
            events: vec![EventPattern::All],
            description: String::new(),
            active,
            created_at: now(),
        }
    }

    #[tokio::test]
    async fn administrators_create_a_webhook_with_its_event_and_a_secret_shown_once() {
        let mut webhooks = MockWebhookRepository::new();
        webhooks
            .expect_create()
            .withf(|organization, fields, secret, event| {
                *organization == ROOT
                    && fields.events == Some(vec![EventPattern::All])
                    && secret.expose().starts_with("whsec_")
                    && event.action == EventAction::WebhookCreated
                    && event.target == EventTarget::ThisWebhook
                    && !event.changes.to_json().contains("whsec_")
            })
            .times(1)
            .returning(|_, _, _, _| Ok(webhook(true)));

        let created = service(webhooks, false)
            .create(
                &actor(Role::Administrators),
                ROOT,
                input("https://hooks.example.com/"),
            )
            .await;

        assert!(created.is_ok_and(|(_, secret)| secret.key() == vec![9; 32]));
    }

    #[tokio::test]
    async fn others_are_forbidden_and_private_endpoints_refused_unless_allowed() {
        for role in [Role::Managers, Role::Users, Role::Collaborators] {
            let mut webhooks = MockWebhookRepository::new();
            webhooks.expect_create().never();
            let created = service(webhooks, false)
                .create(&actor(role), ROOT, input("https://hooks.example.com/"))
                .await;
            assert_eq!(created.map(|_| ()), Err(UseCaseError::Forbidden));
        }
        let mut webhooks = MockWebhookRepository::new();
        webhooks.expect_create().never();
        let refused = service(webhooks, false)
            .create(
                &actor(Role::Administrators),
                ROOT,
                input("http://127.0.0.1:9/"),
            )
            .await;
        assert_eq!(
            refused.map(|_| ()),
            Err(UseCaseError::Validation(ValidationErrors::single(
                "endpoint",
                ErrorCode::AddressNotAllowed
            )))
        );
        let mut webhooks = MockWebhookRepository::new();
        webhooks
            .expect_create()
            .times(1)
            .returning(|_, _, _, _| Ok(webhook(true)));
        let allowed = service(webhooks, true)
            .create(
                &actor(Role::Administrators),
                ROOT,
                input("http://127.0.0.1:9/"),
            )
            .await;
        assert!(allowed.is_ok());
    }

    #[tokio::test]
    async fn an_eleventh_webhook_is_refused_as_a_non_field_error() {
        let mut webhooks = MockWebhookRepository::new();
        webhooks
            .expect_create()
            .returning(|_, _, _, _| Err(CreateWebhookError::TooMany));
        let refused = service(webhooks, false)
            .create(
                &actor(Role::Administrators),
                ROOT,
                input("https://hooks.example.com/"),
            )
            .await;
        assert_eq!(
            refused.map(|_| ()),
            Err(UseCaseError::Validation(ValidationErrors::non_field(
                ErrorCode::TooManyWebhooks
            )))
        );
    }

    #[tokio::test]
    async fn an_update_records_what_changed_and_nothing_when_nothing_did() {
        let mut webhooks = MockWebhookRepository::new();
        webhooks
            .expect_find()
            .returning(|_, _| Ok(Some(webhook(true))));
        webhooks
            .expect_update()
            .withf(|after, event| {
                !after.active
                    && event.as_ref().is_some_and(|event| {
                        event.action == EventAction::WebhookUpdated
                            && event.changes.to_json() == r#"{"active": [true, false]}"#
                    })
            })
            .times(1)
            .returning(|_, _| Ok(true));
        webhooks
            .expect_update()
            .withf(|_, event| event.is_none())
            .times(1)
            .returning(|_, _| Ok(true));
        let service = service(webhooks, false);
        let deactivate = WebhookInput {
            active: domain::Input::Value(false),
            ..WebhookInput::default()
        };
        let updated = service
            .update(
                &actor(Role::Administrators),
                ROOT,
                WebhookId::new(3),
                deactivate,
            )
            .await;
        assert!(updated.is_ok_and(|webhook| !webhook.active));
        let unchanged = service
            .update(
                &actor(Role::Administrators),
                ROOT,
                WebhookId::new(3),
                WebhookInput::default(),
            )
            .await;
        assert!(unchanged.is_ok());
    }

    #[tokio::test]
    async fn an_unknown_webhook_is_not_found() {
        let mut webhooks = MockWebhookRepository::new();
        webhooks.expect_find().returning(|_, _| Ok(None));
        webhooks.expect_delete().never();
        let deleted = service(webhooks, false)
            .delete(&actor(Role::Administrators), ROOT, WebhookId::new(99))
            .await;
        assert_eq!(deleted, Err(UseCaseError::NotFound));
    }
}
