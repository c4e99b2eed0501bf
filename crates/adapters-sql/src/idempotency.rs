//! `IdempotencyStore` on every SQL backend (CONTRACT §12): a key is claimed by one
//! `insert … on conflict do update … where`, which the database runs atomically, so that
//! two processes racing for one key never both get it; finishing and releasing are
//! conditional on the claim's `attempt`, so that a claim taken over changes nothing.

use async_trait::async_trait;
use domain::idempotency::{IdempotencyKey, RecordedResponse, RequestFingerprint};
use domain::{Timestamp, UserId};
use ports::outbound::{IdempotencyClaim, IdempotencyStore, StorageError};
use sqlx::{ColumnIndex, Database, Decode, Encode, Executor, IntoArguments, Type};

use crate::{Connection, Dialect, SqlStorage, corrupt, storage_error, stored};

/// How many times a claim looks again for a key that was freed between its two
/// statements (released by a failed first request) before calling it busy.
const CLAIM_ROUNDS: usize = 3;

/// The kept response's headers as stored: one `name: value` a line (a header value holds
/// no line break).
fn headers_text(headers: &[(String, String)]) -> String {
    headers
        .iter()
        .map(|(name, value)| format!("{name}: {value}"))
        .collect::<Vec<_>>()
        .join("\n")
}

fn headers_of(text: &str, user: i64) -> Result<Vec<(String, String)>, StorageError> {
    text.lines()
        .filter(|line| !line.is_empty())
        .map(|line| {
            line.split_once(": ")
                .map(|(name, value)| (name.to_owned(), value.to_owned()))
                .ok_or_else(|| corrupt("idempotency key of user", user, line))
        })
        .collect()
}

type HeldRow = (String, Option<i64>, Option<String>, Option<Vec<u8>>);

#[async_trait]
impl<D> IdempotencyStore for SqlStorage<D>
where
    D: Dialect,
    for<'c> &'c mut Connection<D>: Executor<'c, Database = D::Db>,
    for<'q> <D::Db as Database>::Arguments<'q>: IntoArguments<'q, D::Db>,
    for<'q> i64: Encode<'q, D::Db> + Type<D::Db>,
    for<'q> &'q str: Encode<'q, D::Db> + Type<D::Db>,
    for<'q> &'q [u8]: Encode<'q, D::Db> + Type<D::Db>,
    for<'r> i64: Decode<'r, D::Db>,
    for<'r> String: Decode<'r, D::Db> + Type<D::Db>,
    for<'r> Vec<u8>: Decode<'r, D::Db> + Type<D::Db>,
    usize: ColumnIndex<<D::Db as Database>::Row>,
{
    #[tracing::instrument(skip_all, fields(db.system = D::NAME), err(level = "debug"))]
    async fn claim(
        &self,
        user: UserId,
        key: &IdempotencyKey,
        fingerprint: &RequestFingerprint,
        now: Timestamp,
        locked_until: Timestamp,
        expires_at: Timestamp,
    ) -> Result<IdempotencyClaim, StorageError> {
        for _ in 0..CLAIM_ROUNDS {
            // A new key, an expired one, or an unfinished claim of the same request whose
            // lease ran out (its process died) is taken; anything else is left as it is.
            let claimed: Option<(i64,)> = on_pool!(
                self,
                sqlx::query_as(
                    "insert into idempotency_keys \
                     (user_id, key, fingerprint, attempt, locked_until, expires_at) \
                 values ($1, $2, $3, 1, $4, $5) \
                 on conflict (user_id, key) do update set \
                     fingerprint = excluded.fingerprint, \
                     attempt = idempotency_keys.attempt + 1, \
                     locked_until = excluded.locked_until, \
                     expires_at = excluded.expires_at, \
                     response_status = null, response_headers = null, response_body = null \
                 where idempotency_keys.expires_at <= $6 \
                     or (idempotency_keys.response_status is null \
                         and idempotency_keys.locked_until <= $6 \
                         and idempotency_keys.fingerprint = excluded.fingerprint) \
                 returning attempt",
                )
                .bind(user.get())
                .bind(key.as_str())
                .bind(fingerprint.as_str())
                .bind(stored::<D>(locked_until))
                .bind(stored::<D>(expires_at))
                .bind(stored::<D>(now)),
                fetch_optional
            )
            .map_err(storage_error::<D>)?;
            if let Some((attempt,)) = claimed {
                return Ok(IdempotencyClaim::Claimed { attempt });
            }
            let held: Option<HeldRow> = on_pool!(
                self,
                sqlx::query_as(
                    "select fingerprint, response_status, response_headers, response_body \
                 from idempotency_keys where user_id = $1 and key = $2",
                )
                .bind(user.get())
                .bind(key.as_str()),
                fetch_optional
            )
            .map_err(storage_error::<D>)?;
            let Some((held_fingerprint, status, headers, body)) = held else {
                continue;
            };
            let response = match (status, headers, body) {
                (Some(status), Some(headers), Some(body)) => Some(RecordedResponse {
                    status: u16::try_from(status)
                        .map_err(|e| corrupt("idempotency key of user", user.get(), e))?,
                    headers: headers_of(&headers, user.get())?,
                    body,
                }),
                _ => None,
            };
            return Ok(IdempotencyClaim::Held {
                fingerprint: RequestFingerprint::from_stored(held_fingerprint),
                response,
            });
        }
        // Freed and taken again each time: as good as busy.
        Ok(IdempotencyClaim::Held {
            fingerprint: fingerprint.clone(),
            response: None,
        })
    }

    #[tracing::instrument(skip_all, fields(db.system = D::NAME), err(level = "debug"))]
    async fn complete(
        &self,
        user: UserId,
        key: &IdempotencyKey,
        attempt: i64,
        response: &RecordedResponse,
        expires_at: Timestamp,
    ) -> Result<bool, StorageError> {
        on_pool!(
            self,
            sqlx::query(
                "update idempotency_keys set response_status = $4, response_headers = $5, \
                 response_body = $6, expires_at = $7 \
             where user_id = $1 and key = $2 and attempt = $3 and response_status is null",
            )
            .bind(user.get())
            .bind(key.as_str())
            .bind(attempt)
            .bind(i64::from(response.status))
            .bind(headers_text(&response.headers).as_str())
            .bind(response.body.as_slice())
            .bind(stored::<D>(expires_at)),
            execute
        )
        .map(|done| D::rows_affected(&done) == 1)
        .map_err(storage_error::<D>)
    }

    #[tracing::instrument(skip_all, fields(db.system = D::NAME), err(level = "debug"))]
    async fn release(
        &self,
        user: UserId,
        key: &IdempotencyKey,
        attempt: i64,
    ) -> Result<(), StorageError> {
        on_pool!(
            self,
            sqlx::query(
                "delete from idempotency_keys \
             where user_id = $1 and key = $2 and attempt = $3 and response_status is null",
            )
            .bind(user.get())
            .bind(key.as_str())
            .bind(attempt),
            execute
        )
        .map(drop)
        .map_err(storage_error::<D>)
    }

    #[tracing::instrument(skip_all, fields(db.system = D::NAME), err(level = "debug"))]
    async fn prune(&self, now: Timestamp) -> Result<u64, StorageError> {
        on_pool!(
            self,
            sqlx::query("delete from idempotency_keys where expires_at <= $1")
                .bind(stored::<D>(now)),
            execute
        )
        .map(|done| D::rows_affected(&done))
        .map_err(storage_error::<D>)
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn headers_are_stored_one_a_line_and_read_back() {
        let headers = vec![
            ("location".to_owned(), "/organizations/2/".to_owned()),
            ("content-type".to_owned(), "application/json".to_owned()),
            ("etag".to_owned(), "\"1\"".to_owned()),
        ];

        let text = headers_text(&headers);

        assert_eq!(headers_of(&text, 1), Ok(headers));
        assert_eq!(headers_of("", 1), Ok(Vec::new()));
        assert!(headers_of("no separator", 1).is_err());
    }
}
