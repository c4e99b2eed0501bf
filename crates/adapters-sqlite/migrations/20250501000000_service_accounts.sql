-- Service accounts (CONTRACT §11): members that are programs, not people. A user is
-- `human` or `service`; a service account's identifier is its name, unique within its
-- organization only, while people's identifiers (e-mail addresses) stay unique across
-- the whole service, archived organizations included. A service account has no password
-- and is never an administrator. See docs/api-keys.md.
--
-- SQLite cannot drop the column's `unique`: the table is rebuilt with the PostgreSQL
-- schema's columns, in the same order. Other tables refer to `users`, so the adapter
-- runs migrations with foreign keys off (dropping the old table would otherwise delete
-- every credential on cascade) and checks them afterwards (docs/storage.md).

create table users_new (
    id integer primary key autoincrement,
    organization_id integer not null references organizations (id) on delete cascade,
    identifier text not null,
    first_name text not null,
    last_name text not null,
    role text not null
        check (role in ('administrators', 'managers', 'users', 'collaborators')),
    password_hash text,
    is_active integer not null default 1 check (is_active in (0, 1)),
    created_at integer not null,
    kind text not null default 'human' check (kind in ('human', 'service')),
    constraint users_services_not_administrators
        check (kind = 'human' or role <> 'administrators'),
    constraint users_services_without_password
        check (kind = 'human' or password_hash is null)
) strict;

insert into users_new (id, organization_id, identifier, first_name, last_name, role,
                       password_hash, is_active, created_at, kind)
select id, organization_id, identifier, first_name, last_name, role,
       password_hash, is_active, created_at, 'human'
from users;

drop table users;
alter table users_new rename to users;

create index users_organization_idx on users (organization_id, id);
-- One person per identifier everywhere (logins and invitations look people up by it).
create unique index users_person_identifier_idx on users (identifier) where kind = 'human';
-- One service account per name within an organization.
create unique index users_service_name_idx
    on users (organization_id, identifier) where kind = 'service';
