-- Service accounts (CONTRACT §11): members that are programs, not people. A user is
-- `human` or `service`; a service account's identifier is its name, unique within its
-- organization only, while people's identifiers (e-mail addresses) stay unique across
-- the whole service, archived organizations included. A service account has no password
-- and is never an administrator. See docs/api-keys.md.

alter table users
    add column kind text not null default 'human' check (kind in ('human', 'service'));

alter table users
    add constraint users_services_not_administrators
        check (kind = 'human' or role <> 'administrators'),
    add constraint users_services_without_password
        check (kind = 'human' or password_hash is null);

alter table users drop constraint users_identifier_key;

-- One person per identifier everywhere (logins and invitations look people up by it).
create unique index users_person_identifier_idx on users (identifier) where kind = 'human';
-- One service account per name within an organization.
create unique index users_service_name_idx
    on users (organization_id, identifier) where kind = 'service';
