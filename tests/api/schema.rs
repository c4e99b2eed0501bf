//! Both storage adapters' migrations make the same logical schema: the same tables with
//! the same columns.

use std::collections::BTreeSet;

use orgs_tests::{Backend, spawn_app};
use sqlx::Connection as _;

type Columns = BTreeSet<(String, String)>;

async fn postgres_columns(url: &str) -> Columns {
    let mut connection = sqlx::PgConnection::connect(url).await.expect("connects");
    let rows: Vec<(String, String)> = sqlx::query_as(
        "select table_name::text, column_name::text from information_schema.columns \
         where table_schema = 'public' and table_name <> '_sqlx_migrations'",
    )
    .fetch_all(&mut connection)
    .await
    .expect("columns");
    rows.into_iter().collect()
}

async fn sqlite_columns(url: &str) -> Columns {
    let mut connection = sqlx::SqliteConnection::connect(url).await.expect("opens");
    let rows: Vec<(String, String)> = sqlx::query_as(
        "select m.name, p.name from sqlite_master m join pragma_table_info(m.name) p \
         where m.type = 'table' and m.name not like 'sqlite_%' and m.name <> '_sqlx_migrations'",
    )
    .fetch_all(&mut connection)
    .await
    .expect("columns");
    rows.into_iter().collect()
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn both_backends_have_the_same_tables_and_columns() {
    let sqlite = spawn_app(Backend::Sqlite).await;
    let postgres = spawn_app(Backend::Postgres).await;

    let on_sqlite = sqlite_columns(&sqlite.database_url).await;
    let on_postgres = postgres_columns(&postgres.database_url).await;

    assert!(on_sqlite.len() > 20, "{on_sqlite:?}");
    assert_eq!(
        on_sqlite
            .symmetric_difference(&on_postgres)
            .collect::<Vec<_>>(),
        Vec::<&(String, String)>::new()
    );
}
