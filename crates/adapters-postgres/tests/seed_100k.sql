-- 100,000 rows in each big table, spread over 100 root organizations (ids 1 to 100)
-- as a busy service would have them: each list page reads one organization's rows.
insert into organizations (parent_id, name, created_at, updated_at)
select null, 'Root ' || n, now(), now() from generate_series(1, 100) as n;

insert into organizations (parent_id, name, created_at, updated_at)
select n % 100 + 1, 'Child ' || n, now(), now() from generate_series(1, 100000) as n;

insert into users (organization_id, identifier, first_name, last_name, role, created_at)
select n % 100 + 1, 'user' || n || '@example.com', 'Ada', 'Lovelace', 'users', now()
from generate_series(1, 100000) as n;

insert into credentials (user_id, kind, token_hash, created_at, name)
select id, 'api_key', md5('key' || id), now(), 'default' from users;

insert into invitations (organization_id, identifier, role, token_hash, created_at, expires_at)
select n % 100 + 1, 'guest' || n || '@example.com', 'users', md5('invitation' || n),
       now() - n * interval '1 minute', now() - n * interval '1 minute' + interval '7 days'
from generate_series(1, 100000) as n;

insert into opt_outs (organization_id, address, origin, creation_date)
select n % 100 + 1, 'reader' || n || '@example.com',
       (array['mail', 'web', 'feedback-loop', 'bounce', 'abuse', 'api'])[n % 6 + 1],
       now() - n * interval '1 minute'
from generate_series(1, 100000) as n;

-- 99,000 delivered messages and 1,000 waiting.
insert into outbox (kind, recipient, subject, text_body, html_body, created_at,
                    next_attempt_at, delivered_at)
select 'invitation', 'r' || n || '@example.com', 'Hi', 'Hi', '<p>Hi</p>',
       now() - n * interval '1 second', now() - n * interval '1 second',
       case when n > 1000 then now() end
from generate_series(1, 100000) as n;
