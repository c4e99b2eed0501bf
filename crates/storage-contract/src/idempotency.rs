//! The contract of `IdempotencyStore` (CONTRACT §12): claims, kept responses, release,
//! expiry, the takeover of a claim whose process died, and claims racing for one key.

use domain::idempotency::{IdempotencyKey, RecordedResponse, RequestFingerprint};
use domain::{Duration, Role, Timestamp, UserId};
use futures::future::join_all;
use ports::outbound::IdempotencyClaim;

use crate::Store;
use crate::fixtures::{now, organization_with_admin, user};

fn key(value: &str) -> IdempotencyKey {
    IdempotencyKey::parse(value.as_bytes()).expect("a valid key")
}

fn request(body: &str) -> RequestFingerprint {
    RequestFingerprint::of("POST", "/organizations/", None, body.as_bytes())
}

fn answer(status: u16, body: &str) -> RecordedResponse {
    RecordedResponse {
        status,
        headers: vec![
            ("content-type".to_owned(), "application/json".to_owned()),
            ("location".to_owned(), "/organizations/2/".to_owned()),
        ],
        body: body.as_bytes().to_vec(),
    }
}

fn lease() -> Duration {
    Duration::seconds(60)
}

fn ttl() -> Duration {
    Duration::hours(24)
}

/// Claims `key` of `user` for `fingerprint` at `at`, with the usual lease and expiry.
async fn claim_at(
    store: &Store,
    user: UserId,
    key: &IdempotencyKey,
    fingerprint: &RequestFingerprint,
    at: Timestamp,
) -> IdempotencyClaim {
    store
        .idempotency
        .claim(user, key, fingerprint, at, at + lease(), at + ttl())
        .await
        .expect("claimed or held")
}

/// The first claim of a key is granted; while it runs, the key is held by its request.
pub async fn a_free_key_is_claimed_and_then_held_by_its_request(store: &Store) {
    let (_, admin) = organization_with_admin(store).await;
    let at = now();

    let first = claim_at(store, admin.id, &key("k1"), &request("{}"), at).await;
    let again = claim_at(store, admin.id, &key("k1"), &request("{}"), at).await;
    let other = claim_at(store, admin.id, &key("k1"), &request("{\"a\":1}"), at).await;

    assert_eq!(first, IdempotencyClaim::Claimed { attempt: 1 });
    assert_eq!(
        again,
        IdempotencyClaim::Held {
            fingerprint: request("{}"),
            response: None
        }
    );
    assert_eq!(
        other,
        IdempotencyClaim::Held {
            fingerprint: request("{}"),
            response: None
        }
    );
}

/// A completed claim gives its response to every later claim until it expires, even past
/// its lease; then the key is free.
pub async fn a_completed_claim_holds_its_response_until_it_expires(store: &Store) {
    let (_, admin) = organization_with_admin(store).await;
    let at = now();
    let IdempotencyClaim::Claimed { attempt } =
        claim_at(store, admin.id, &key("k"), &request("{}"), at).await
    else {
        panic!("the first claim is granted");
    };

    let kept = store
        .idempotency
        .complete(
            admin.id,
            &key("k"),
            attempt,
            &answer(201, "{\"url\":\"/organizations/2/\"}"),
            at + Duration::hours(1),
        )
        .await;
    let twice = store
        .idempotency
        .complete(admin.id, &key("k"), attempt, &answer(400, "{}"), at + ttl())
        .await;
    let past_lease = claim_at(
        store,
        admin.id,
        &key("k"),
        &request("{}"),
        at + Duration::minutes(30),
    )
    .await;
    let past_expiry = claim_at(
        store,
        admin.id,
        &key("k"),
        &request("{}"),
        at + Duration::hours(1),
    )
    .await;

    assert_eq!(kept, Ok(true));
    assert_eq!(twice, Ok(false), "a finished claim is kept as it was");
    assert_eq!(
        past_lease,
        IdempotencyClaim::Held {
            fingerprint: request("{}"),
            response: Some(answer(201, "{\"url\":\"/organizations/2/\"}")),
        }
    );
    assert_eq!(past_expiry, IdempotencyClaim::Claimed { attempt: 2 });
}

/// A released claim frees the key at once; releasing a finished claim changes nothing.
pub async fn a_released_claim_frees_the_key(store: &Store) {
    let (_, admin) = organization_with_admin(store).await;
    let at = now();
    claim_at(store, admin.id, &key("failed"), &request("{}"), at).await;
    claim_at(store, admin.id, &key("done"), &request("{}"), at).await;
    store
        .idempotency
        .complete(admin.id, &key("done"), 1, &answer(201, "{}"), at + ttl())
        .await
        .expect("completed");

    store
        .idempotency
        .release(admin.id, &key("failed"), 1)
        .await
        .expect("released");
    store
        .idempotency
        .release(admin.id, &key("done"), 1)
        .await
        .expect("released");
    let retried = claim_at(store, admin.id, &key("failed"), &request("{\"b\":2}"), at).await;
    let done = claim_at(store, admin.id, &key("done"), &request("{}"), at).await;

    assert_eq!(retried, IdempotencyClaim::Claimed { attempt: 1 });
    assert_eq!(
        done,
        IdempotencyClaim::Held {
            fingerprint: request("{}"),
            response: Some(answer(201, "{}")),
        }
    );
}

/// Once expired, a key is new again: any request may claim it.
pub async fn an_expired_key_is_claimed_again_even_for_another_request(store: &Store) {
    let (_, admin) = organization_with_admin(store).await;
    let at = now();
    claim_at(store, admin.id, &key("k"), &request("{}"), at).await;
    store
        .idempotency
        .complete(admin.id, &key("k"), 1, &answer(201, "{}"), at + ttl())
        .await
        .expect("completed");

    let before = claim_at(
        store,
        admin.id,
        &key("k"),
        &request("{\"other\":true}"),
        at + ttl() - Duration::seconds(1),
    )
    .await;
    let after = claim_at(
        store,
        admin.id,
        &key("k"),
        &request("{\"other\":true}"),
        at + ttl(),
    )
    .await;
    let held = claim_at(
        store,
        admin.id,
        &key("k"),
        &request("{\"other\":true}"),
        at + ttl(),
    )
    .await;

    assert!(
        matches!(before, IdempotencyClaim::Held { .. }),
        "{before:?}"
    );
    assert_eq!(after, IdempotencyClaim::Claimed { attempt: 2 });
    assert_eq!(
        held,
        IdempotencyClaim::Held {
            fingerprint: request("{\"other\":true}"),
            response: None,
        },
        "the new claim starts unfinished"
    );
}

/// A claim left unfinished past its lease (its process died) is taken over by a retry of
/// the same request, not by a different one.
pub async fn an_unfinished_claim_past_its_lease_is_taken_over_by_the_same_request_only(
    store: &Store,
) {
    let (_, admin) = organization_with_admin(store).await;
    let at = now();
    claim_at(store, admin.id, &key("k"), &request("{}"), at).await;

    let within = claim_at(
        store,
        admin.id,
        &key("k"),
        &request("{}"),
        at + lease() - Duration::seconds(1),
    )
    .await;
    let different = claim_at(
        store,
        admin.id,
        &key("k"),
        &request("{\"x\":1}"),
        at + lease(),
    )
    .await;
    let same = claim_at(store, admin.id, &key("k"), &request("{}"), at + lease()).await;

    assert!(
        matches!(within, IdempotencyClaim::Held { response: None, .. }),
        "{within:?}"
    );
    assert_eq!(
        different,
        IdempotencyClaim::Held {
            fingerprint: request("{}"),
            response: None,
        }
    );
    assert_eq!(same, IdempotencyClaim::Claimed { attempt: 2 });
}

/// The process whose claim was taken over can no longer finish it nor free the key.
pub async fn a_claim_that_was_taken_over_can_neither_complete_nor_release(store: &Store) {
    let (_, admin) = organization_with_admin(store).await;
    let at = now();
    claim_at(store, admin.id, &key("k"), &request("{}"), at).await;
    claim_at(store, admin.id, &key("k"), &request("{}"), at + lease()).await;

    let late = store
        .idempotency
        .complete(
            admin.id,
            &key("k"),
            1,
            &answer(201, "{\"late\":1}"),
            at + ttl(),
        )
        .await;
    store
        .idempotency
        .release(admin.id, &key("k"), 1)
        .await
        .expect("release");
    let still_held = claim_at(store, admin.id, &key("k"), &request("{}"), at + lease()).await;
    let current = store
        .idempotency
        .complete(
            admin.id,
            &key("k"),
            2,
            &answer(201, "{\"now\":2}"),
            at + ttl(),
        )
        .await;

    assert_eq!(late, Ok(false));
    assert_eq!(
        still_held,
        IdempotencyClaim::Held {
            fingerprint: request("{}"),
            response: None,
        }
    );
    assert_eq!(current, Ok(true));
}

/// Two users' equal keys are two keys.
pub async fn keys_are_scoped_to_their_user(store: &Store) {
    let (organization, admin) = organization_with_admin(store).await;
    let (other, _) = user(store, &organization, "other@example.com", Role::Managers).await;
    let at = now();
    claim_at(store, admin.id, &key("shared"), &request("{}"), at).await;
    store
        .idempotency
        .complete(admin.id, &key("shared"), 1, &answer(201, "{}"), at + ttl())
        .await
        .expect("completed");

    let others = claim_at(store, other.id, &key("shared"), &request("{}"), at).await;

    assert_eq!(others, IdempotencyClaim::Claimed { attempt: 1 });
}

/// `prune` deletes the keys expired at or before `now`, finished or not, and no other.
pub async fn pruning_forgets_keys_expired_at_or_before_now(store: &Store) {
    let (_, admin) = organization_with_admin(store).await;
    let at = now();
    for (name, expires_at) in [
        ("old", at - Duration::seconds(1)),
        ("edge", at),
        ("young", at + Duration::seconds(1)),
    ] {
        store
            .idempotency
            .claim(
                admin.id,
                &key(name),
                &request("{}"),
                at - Duration::hours(2),
                at - Duration::hours(2) + lease(),
                expires_at,
            )
            .await
            .expect("claimed");
    }

    let pruned = store.idempotency.prune(at).await;
    let young = claim_at(store, admin.id, &key("young"), &request("{\"new\":1}"), at).await;
    let old = claim_at(store, admin.id, &key("old"), &request("{\"new\":1}"), at).await;

    assert_eq!(pruned, Ok(2));
    assert!(matches!(young, IdempotencyClaim::Held { .. }), "{young:?}");
    assert_eq!(old, IdempotencyClaim::Claimed { attempt: 1 }, "a new row");
}

/// A removed member's keys are deleted with them.
pub async fn a_removed_user_takes_their_keys_along(store: &Store) {
    let (organization, admin) = organization_with_admin(store).await;
    let (member, _) = user(store, &organization, "member@example.com", Role::Users).await;
    let at = now();
    claim_at(store, member.id, &key("k"), &request("{}"), at).await;

    store
        .members
        .remove(
            organization.id,
            member.id,
            admin.id,
            crate::fixtures::any_event(),
        )
        .await
        .expect("removed");
    let pruned = store.idempotency.prune(at + ttl() + ttl()).await;

    assert_eq!(pruned, Ok(0), "nothing left to prune");
}

/// Twenty claims of one new key at once: exactly one is granted; the others see it held.
pub async fn twenty_simultaneous_claims_of_one_key_give_exactly_one(store: &Store) {
    let (_, admin) = organization_with_admin(store).await;
    let at = now();
    let the_key = key("race");
    let fingerprint = request("{}");

    let claims: Vec<IdempotencyClaim> =
        join_all((0..20).map(|_| claim_at(store, admin.id, &the_key, &fingerprint, at))).await;

    let granted = claims
        .iter()
        .filter(|claim| matches!(claim, IdempotencyClaim::Claimed { .. }))
        .count();
    assert_eq!(granted, 1, "{claims:?}");
}

/// A kept response holds any bytes (a NUL, invalid UTF-8) and a key of 255 characters of
/// any visible ASCII.
pub async fn kept_responses_hold_any_bytes_and_long_keys(store: &Store) {
    let (_, admin) = organization_with_admin(store).await;
    let at = now();
    let long = key(&"!~'\"\\%_".repeat(40)[..255]);
    let response = RecordedResponse {
        status: 200,
        headers: vec![("etag".to_owned(), "\"7\"".to_owned())],
        body: vec![0, 159, 146, 150, b'{', b'}'],
    };
    claim_at(store, admin.id, &long, &request("{}"), at).await;

    let kept = store
        .idempotency
        .complete(admin.id, &long, 1, &response, at + ttl())
        .await;
    let replay = claim_at(store, admin.id, &long, &request("{}"), at).await;

    assert_eq!(kept, Ok(true));
    assert_eq!(
        replay,
        IdempotencyClaim::Held {
            fingerprint: request("{}"),
            response: Some(response),
        }
    );
}
