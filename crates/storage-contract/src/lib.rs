//! The repository contract of the organizations service, written once and run against
//! every storage adapter on a real database.
//!
//! Each check in [`checks`] is an `async fn` taking a [`Store`]: the driven storage ports
//! of one fresh, migrated, empty database. An adapter's tests run every check with
//! [`contract_tests!`], giving it a function that makes such a store. This crate is test
//! code: a check panics, as a test does, when the adapter breaks the contract.

mod audit_checks;
pub mod checks;
pub mod fixtures;
pub mod idempotency;
pub mod service_account_checks;
mod webhook_checks;

use std::sync::Arc;

use futures::future::BoxFuture;
use ports::outbound::{
    DeliveryQueue, EventRepository, IdempotencyStore, InvitationRepository, MemberRepository,
    OptOutRepository, OrganizationRepository, Outbox, RateLimitStore, StorageHealth,
    UserRepository, WebhookRepository,
};

/// Reads every row of a table, each row as one text holding all its column values, past
/// the ports: for checks about what the database keeps at rest (CONTRACT §9). Each
/// adapter's tests give one for their database.
pub type RowReader = Arc<dyn Fn(&'static str) -> BoxFuture<'static, Vec<String>> + Send + Sync>;

/// The storage ports of one database, as the use cases hold them.
#[derive(Clone)]
pub struct Store {
    /// Organizations.
    pub organizations: Arc<dyn OrganizationRepository>,
    /// Users and credentials.
    pub users: Arc<dyn UserRepository>,
    /// Invitations.
    pub invitations: Arc<dyn InvitationRepository>,
    /// Opt-outs.
    pub opt_outs: Arc<dyn OptOutRepository>,
    /// The e-mail outbox.
    pub outbox: Arc<dyn Outbox>,
    /// Members.
    pub members: Arc<dyn MemberRepository>,
    /// The audit log.
    pub events: Arc<dyn EventRepository>,
    /// Counted events of the abuse limits.
    pub rate_limits: Arc<dyn RateLimitStore>,
    /// Webhooks.
    pub webhooks: Arc<dyn WebhookRepository>,
    /// The webhook delivery queue.
    pub deliveries: Arc<dyn DeliveryQueue>,
    /// Idempotency keys and kept responses.
    pub idempotency: Arc<dyn IdempotencyStore>,
    /// Health and pool usage.
    pub health: Arc<dyn StorageHealth>,
    /// The rows as stored, for the checks that look past the ports (`with_rows`).
    pub rows: Option<RowReader>,
}

impl Store {
    /// Every port, served by one adapter value.
    pub fn new<S>(storage: S) -> Self
    where
        S: OrganizationRepository
            + UserRepository
            + InvitationRepository
            + OptOutRepository
            + Outbox
            + MemberRepository
            + EventRepository
            + RateLimitStore
            + WebhookRepository
            + DeliveryQueue
            + IdempotencyStore
            + StorageHealth
            + 'static,
    {
        let storage = Arc::new(storage);
        Self {
            organizations: storage.clone(),
            users: storage.clone(),
            invitations: storage.clone(),
            opt_outs: storage.clone(),
            outbox: storage.clone(),
            members: storage.clone(),
            events: storage.clone(),
            rate_limits: storage.clone(),
            webhooks: storage.clone(),
            deliveries: storage.clone(),
            idempotency: storage.clone(),
            health: storage,
            rows: None,
        }
    }

    /// This store, with a reader of its database's rows.
    #[must_use]
    pub fn with_rows(mut self, rows: RowReader) -> Self {
        self.rows = Some(rows);
        self
    }

    /// Every row of `table` as text.
    ///
    /// # Panics
    /// When the store was made without a row reader: a check that needs one cannot run.
    pub async fn rows_of(&self, table: &'static str) -> Vec<String> {
        let Some(rows) = &self.rows else {
            panic!("this check reads rows past the ports: make the store `with_rows`");
        };
        rows(table).await
    }
}

/// Generates one `#[tokio::test]` per contract check. `$fresh` names an `async fn()`
/// returning `(Store, guard)`: a store on a fresh, migrated database, and a value whose
/// `Drop` disposes of that database (also when the check fails).
#[macro_export]
macro_rules! contract_tests {
    ($fresh:path) => {
        $crate::contract_tests!(@each $fresh;
            a_created_root_organization_is_found_with_version_1,
            a_child_of_a_missing_or_archived_parent_is_parent_not_found,
            a_child_of_a_child_is_parent_is_child,
            the_visible_list_puts_the_root_first_then_its_live_children_by_id,
            the_children_list_pages_the_live_children_by_id,
            an_update_bumps_the_version_and_a_stale_version_is_a_mismatch,
            updating_a_missing_or_archived_organization_is_not_found,
            archiving_a_child_hides_it_and_refuses_roots_and_stale_versions,
            restoring_brings_back_an_archived_child_and_refuses_a_live_one,
            purging_erases_what_was_archived_strictly_before_with_all_it_owns,
            setting_flags_keeps_the_unset_ones_and_refuses_an_archived_organization,
            timestamps_come_back_truncated_to_the_microsecond,
            a_created_user_is_found_and_authenticates_with_its_api_key,
            a_taken_identifier_cannot_be_given_to_a_second_user,
            a_user_of_a_missing_or_archived_organization_is_organization_not_found,
            sessions_authenticate_until_they_expire,
            authenticating_with_an_organization_reads_both_as_the_separate_calls,
            pruning_sessions_removes_only_the_expired_ones,
            replacing_the_api_key_stops_the_old_one_and_keeps_sessions,
            api_keys_are_listed_newest_first_with_their_name_scope_and_prefix,
            a_key_name_is_taken_once_per_user_and_twenty_live_keys_are_the_most,
            simultaneous_key_creations_never_pass_the_limit_or_share_a_name,
            a_key_authenticates_with_its_scope_until_it_expires,
            a_revoked_key_stops_at_once_and_only_its_owner_revokes_it,
            replacing_the_api_key_replaces_only_the_default_one,
            recorded_key_uses_keep_the_latest_instant,
            users_of_an_archived_organization_cannot_act_until_it_is_restored,
            the_login_record_carries_the_password_hash,
            the_first_administrator_is_created_only_on_a_database_without_users,
            racing_first_administrators_create_exactly_one,
            an_invitation_is_stored_with_its_email_in_the_outbox,
            inviting_a_taken_identifier_is_identifier_taken,
            inviting_into_a_missing_or_archived_organization_is_organization_not_found,
            a_second_pending_invitation_is_refused_but_an_expired_one_blocks_nothing,
            invitations_are_listed_newest_first_and_filtered_by_status,
            an_invitation_is_found_only_in_its_live_organization,
            resending_gives_a_new_token_and_expiry_and_queues_a_new_email,
            resending_revives_an_expired_invitation,
            resending_an_accepted_revoked_or_missing_invitation_is_refused,
            reviving_an_invitation_while_another_one_is_pending_is_another_pending,
            revoking_closes_an_invitation_once,
            accepting_creates_the_user_and_consumes_the_token,
            an_unknown_revoked_expired_or_archived_token_is_invalid,
            accepting_a_taken_identifier_is_refused_and_keeps_the_token,
            twenty_simultaneous_invitations_of_one_address_store_exactly_one,
            an_invitation_takes_its_allowances_and_a_refused_one_takes_none,
            resending_takes_its_allowances_and_a_refused_resend_takes_none,
            only_the_token_of_a_pending_invitation_is_open,
            a_preview_shows_only_a_usable_invitation_and_consumes_nothing,
            ten_simultaneous_acceptances_of_one_token_create_exactly_one_user,
            recording_an_opt_out_twice_creates_then_updates_and_queues_one_notice,
            opt_outs_are_listed_newest_first_and_filtered,
            the_export_pages_through_every_matching_opt_out_newest_first,
            the_export_keyset_splits_rows_of_one_date_and_skips_later_ones,
            opt_outs_are_kept_when_their_organization_is_archived,
            claimed_messages_are_not_claimed_again_until_their_lease_ends,
            a_failed_message_comes_back_at_its_next_attempt,
            delivered_and_dead_messages_leave_the_backlog_for_good,
            two_workers_claiming_a_thousand_messages_get_each_exactly_once,
            settled_messages_keep_no_subject_or_body_at_rest,
            a_claim_whose_lease_another_claim_took_over_changes_nothing,
            a_claim_whose_lease_ran_out_untaken_still_holds,
            pruning_deletes_messages_settled_at_or_before_the_cut_and_keeps_the_rest,
            two_workers_racing_on_expired_leases_never_both_send_or_mark_one_message,
            members_are_listed_by_id_and_filtered_by_role_and_identifier,
            members_are_found_only_in_their_own_live_organization,
            changing_a_role_returns_the_member_with_its_new_role,
            changing_or_removing_a_member_elsewhere_or_in_an_archived_organization_is_not_found,
            the_last_administrator_of_a_root_can_be_neither_demoted_nor_removed,
            a_child_may_be_left_without_administrators,
            a_requester_who_is_no_longer_an_administrator_is_forbidden,
            removing_a_member_deletes_their_credentials_and_frees_their_identifier,
            two_administrators_demoting_each_other_at_once_leave_exactly_one,
            many_simultaneous_mutual_demotions_never_leave_a_root_without_administrators,
            recorded_events_count_in_their_window_strictly_after_since,
            acquiring_records_an_event_per_key_until_the_limit_is_reached,
            a_reached_limit_among_several_records_nothing_and_reports_the_longest_wait,
            released_events_no_longer_count,
            pruning_forgets_events_at_or_before_the_cut,
            twenty_simultaneous_acquisitions_under_a_limit_of_five_succeed_five_times,
            keys_of_any_input_are_stored_and_counted,
            the_storage_answers_pings_and_reports_its_pool,
            a_change_and_its_event_are_stored_together_and_read_back,
            a_users_event_names_the_actor_and_the_request,
            an_event_that_cannot_be_stored_rolls_back_its_change,
            a_refused_change_stores_no_event,
            an_acceptance_records_the_new_member_as_the_actor,
            a_roots_list_includes_its_childrens_events_newest_first,
            events_are_filtered_and_paged,
            a_removed_actor_keeps_its_identifier_on_its_events,
            a_made_and_a_revoked_key_store_their_events_and_refusals_none,
            a_key_event_that_cannot_be_stored_rolls_back_the_key_change,
            purging_an_organization_erases_its_events,
            pruning_deletes_events_made_before_the_cut,
            an_event_queues_one_delivery_per_matching_active_webhook,
            a_rolled_back_event_queues_no_delivery,
            claims_lease_settle_once_and_follow_the_schedule,
            deactivating_or_deleting_a_webhook_drops_its_pending_deliveries,
            an_organization_has_at_most_ten_webhooks_even_under_concurrency,
            two_workers_claim_each_delivery_exactly_once,
            pruning_deletes_deliveries_settled_before_the_cut_and_never_pending_ones,
            a_retried_delivery_counts_its_retention_from_its_new_settlement,
            keyset_pages_read_below_the_cursor_with_the_filters_of_the_list,
        );
        $crate::contract_tests!(@each_in service_account_checks $fresh;
            a_service_account_is_stored_with_its_default_key_and_its_event,
            a_service_account_name_is_unique_within_its_organization_only,
            thirty_simultaneous_creations_of_one_name_store_exactly_one,
            a_refused_service_account_stores_nothing,
            a_requester_demoted_meanwhile_creates_no_service_account,
            members_filter_by_kind_and_a_removed_service_account_loses_its_keys,
            service_accounts_never_count_as_administrators,
        );
        $crate::contract_tests!(@each_in idempotency $fresh;
            a_free_key_is_claimed_and_then_held_by_its_request,
            a_completed_claim_holds_its_response_until_it_expires,
            a_released_claim_frees_the_key,
            an_expired_key_is_claimed_again_even_for_another_request,
            an_unfinished_claim_past_its_lease_is_taken_over_by_the_same_request_only,
            a_claim_that_was_taken_over_can_neither_complete_nor_release,
            keys_are_scoped_to_their_user,
            pruning_forgets_keys_expired_at_or_before_now,
            a_removed_user_takes_their_keys_along,
            twenty_simultaneous_claims_of_one_key_give_exactly_one,
            kept_responses_hold_any_bytes_and_long_keys,
        );
    };
    (@each_in $module:ident $fresh:path; $($check:ident),* $(,)?) => {
        $(
            #[::tokio::test(flavor = "multi_thread", worker_threads = 2)]
            async fn $check() {
                let (store, guard) = $fresh().await;

                $crate::$module::$check(&store).await;

                drop(store);
                drop(guard);
            }
        )*
    };
    (@each $fresh:path; $($check:ident),* $(,)?) => {
        $(
            #[::tokio::test(flavor = "multi_thread", worker_threads = 2)]
            async fn $check() {
                let (store, guard) = $fresh().await;

                $crate::checks::$check(&store).await;

                drop(store);
                drop(guard);
            }
        )*
    };
}
