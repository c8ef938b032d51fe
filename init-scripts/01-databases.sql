-- One database per service, owned by the application role, created on the first start of
-- the postgres container (docker-entrypoint-initdb.d runs this with psql as superuser).
-- The role's name and password come from the container's DB_USER and DB_PASSWORD, the
-- same variables the services connect with. Safe to run again: nothing is re-created.

\set ON_ERROR_STOP on
\getenv app_user DB_USER
\getenv app_password DB_PASSWORD

SELECT format('CREATE ROLE %I LOGIN PASSWORD %L', :'app_user', :'app_password')
WHERE NOT EXISTS (SELECT FROM pg_roles WHERE rolname = :'app_user')
\gexec

SELECT format('CREATE DATABASE %I OWNER %I', name, :'app_user')
FROM unnest(ARRAY['auth_db', 'event_db', 'booking_db', 'payment_db', 'notification_db']) AS name
WHERE NOT EXISTS (SELECT FROM pg_database WHERE datname = name)
\gexec
