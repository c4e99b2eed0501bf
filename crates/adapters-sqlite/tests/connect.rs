//! Opening a SQLite database: the file and its directory are made, WAL is on, and a
//! closed pool reports the storage unavailable.

use adapters_sqlite::SqliteStorage;
use ports::outbound::{OrganizationRepository as _, StorageError, StorageHealth as _};

#[tokio::test]
async fn connecting_creates_the_file_and_its_missing_parent_directories() {
    let directory = tempfile::tempdir().expect("a temporary directory");
    let file = directory
        .path()
        .join("nested")
        .join("deeper")
        .join("orgs.db");
    let url = format!("sqlite://{}", file.display());

    let storage = SqliteStorage::connect(&url, ()).await.expect("connected");
    storage.migrate().await.expect("migrated");

    assert!(file.is_file());
    assert_eq!(storage.ping().await, Ok(()));
    assert!(
        directory
            .path()
            .join("nested")
            .join("deeper")
            .join("orgs.db-wal")
            .exists(),
        "the journal is in WAL mode"
    );
}

#[tokio::test]
async fn migrating_twice_changes_nothing() {
    let directory = tempfile::tempdir().expect("a temporary directory");
    let url = format!("sqlite://{}", directory.path().join("orgs.db").display());
    let storage = SqliteStorage::connect(&url, ()).await.expect("connected");
    storage.migrate().await.expect("migrated");

    let again = storage.migrate().await;

    assert_eq!(again, Ok(()));
}

#[tokio::test]
async fn a_closed_storage_is_unavailable() {
    let directory = tempfile::tempdir().expect("a temporary directory");
    let url = format!("sqlite://{}", directory.path().join("orgs.db").display());
    let storage = SqliteStorage::connect(&url, ()).await.expect("connected");
    storage.migrate().await.expect("migrated");

    storage.close().await;

    assert!(matches!(
        storage.ping().await,
        Err(StorageError::Unavailable(_))
    ));
    let find = storage.find(domain::OrganizationId::new(1)).await;
    assert!(
        matches!(find, Err(StorageError::Unavailable(_))),
        "{find:?}"
    );
}

#[tokio::test]
async fn a_malformed_url_is_refused_without_panicking() {
    let refused = SqliteStorage::connect("postgres://not-sqlite", ()).await;

    assert!(
        matches!(refused, Err(StorageError::Unexpected(_))),
        "{refused:?}"
    );
}

#[cfg(unix)]
#[tokio::test]
async fn a_new_database_and_its_journal_files_are_private_to_their_owner() {
    use std::os::unix::fs::PermissionsExt as _;
    let directory = tempfile::tempdir().expect("a temporary directory");
    let data = directory.path().join("data");
    let file = data.join("orgs.db");
    let url = format!("sqlite://{}", file.display());

    let storage = SqliteStorage::connect(&url, ()).await.expect("connected");
    storage.migrate().await.expect("migrated");

    let mode = |path: &std::path::Path| {
        std::fs::metadata(path)
            .expect("exists")
            .permissions()
            .mode()
            & 0o777
    };
    assert_eq!(mode(&file), 0o600);
    assert_eq!(mode(&data.join("orgs.db-wal")), 0o600);
    assert_eq!(mode(&data.join("orgs.db-shm")), 0o600);
    assert_eq!(mode(&data), 0o700);
}

/// The service-account migration rebuilds `users`, which other tables refer to: on a
/// database made by the earlier migrations, people keep their keys, sessions and
/// invitations (nothing cascades), their identifiers stay unique, and foreign keys are
/// enforced again afterwards.
#[tokio::test]
async fn upgrading_a_database_with_people_keeps_their_keys_and_references() {
    use ports::outbound::{CreateUserError, UserRepository};
    use sqlx::ConnectOptions as _;

    let directory = tempfile::tempdir().expect("a temporary directory");
    let earlier = directory.path().join("earlier");
    std::fs::create_dir(&earlier).expect("a folder");
    let all = std::path::Path::new(env!("CARGO_MANIFEST_DIR")).join("migrations");
    for entry in std::fs::read_dir(&all).expect("the migrations") {
        let path = entry.expect("a migration").path();
        let name = path.file_name().expect("a name").to_owned();
        if name.to_string_lossy().as_ref() < "20250501000000" {
            std::fs::copy(&path, earlier.join(name)).expect("copied");
        }
    }
    let file = directory.path().join("orgs.db");
    let url = format!("sqlite://{}", file.display());
    let options = url
        .parse::<sqlx::sqlite::SqliteConnectOptions>()
        .expect("a URL")
        .create_if_missing(true)
        .foreign_keys(true);
    let mut connection = options.connect().await.expect("connected");
    sqlx::migrate::Migrator::new(earlier.as_path())
        .await
        .expect("the earlier migrations")
        .run_direct(&mut connection)
        .await
        .expect("migrated to the earlier schema");
    let key = domain::secret::SecretToken::presented("an-old-key").hash();
    sqlx::raw_sql(&format!(
        "insert into organizations (id, name, created_at, updated_at) values (1, 'Old', 0, 0);
         insert into users (id, organization_id, identifier, first_name, last_name, role, created_at)
             values (7, 1, 'old@example.com', 'Old', 'Timer', 'administrators', 0);
         insert into credentials (user_id, kind, token_hash, created_at, name, scope)
             values (7, 'api_key', '{}', 0, 'default', 'write');
         insert into invitations (organization_id, identifier, role, invited_by, token_hash, created_at, expires_at)
             values (1, 'new@example.com', 'users', 7, 'invitation-hash', 0, 1);",
        key.as_str()
    ))
    .execute(&mut connection)
    .await
    .expect("rows of the earlier schema");
    drop(connection);

    let storage = SqliteStorage::connect(&url, ()).await.expect("connected");
    storage.migrate().await.expect("upgraded");
    let authenticated = storage
        .authenticate(&key, domain::Timestamp::UNIX_EPOCH)
        .await
        .expect("read")
        .expect("the old key still works");
    let duplicate = UserRepository::create(
        &storage,
        domain::user::NewUser {
            organization_id: domain::OrganizationId::new(1),
            identifier: domain::EmailAddress::parse("old@example.com").expect("valid"),
            first_name: domain::user::PersonName::unnamed(),
            last_name: domain::user::PersonName::unnamed(),
            role: domain::Role::Users,
            password_hash: None,
        },
        &domain::api_key::KeyMaterial::of(&domain::secret::SecretToken::presented("x")),
        domain::Timestamp::UNIX_EPOCH,
        domain::audit::NewEvent::by_operator(
            domain::audit::EventAction::MemberCreated,
            domain::audit::EventOrganization::Existing(domain::OrganizationId::new(1)),
            domain::audit::EventTarget::ThisMember,
            domain::Timestamp::UNIX_EPOCH,
        ),
    )
    .await;
    drop(storage);
    let mut connection = options.connect().await.expect("connected again");
    let (invited_by,): (Option<i64>,) = sqlx::query_as("select invited_by from invitations")
        .fetch_one(&mut connection)
        .await
        .expect("the invitation is still there");
    let dangling = sqlx::query(
        "insert into credentials (user_id, kind, token_hash, created_at, name, scope) \
         values (999, 'api_key', 'orphan', 0, 'orphan', 'write')",
    )
    .execute(&mut connection)
    .await;

    assert_eq!(authenticated.user.identifier.as_str(), "old@example.com");
    assert_eq!(authenticated.user.kind(), domain::user::UserKind::Human);
    assert_eq!(duplicate, Err(CreateUserError::IdentifierTaken));
    assert_eq!(invited_by, Some(7));
    assert!(dangling.is_err(), "foreign keys are enforced again");
}
