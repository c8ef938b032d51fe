-- Accounts from the Go original's users table, into auth_db's users (docs/MIGRATING.md).
--
-- Before: apply auth_service's migrations to an empty auth_db without starting the service
-- (its start seeds ADMIN_EMAIL, whose id could clash) and copy the original's rows into the
-- staging table original_users (id, created_at, updated_at, email, password, role,
-- is_verified, approval_status, document_path; password holds the bcrypt hash).
--
-- Ids are kept, so the user_id of imported events, bookings and payments still points at
-- the same person. The bcrypt hashes are kept as they are: each verifies at the account's
-- first login and is then replaced by argon2id. Documents are not carried over (the file
-- paths were the original server's): an organizer's document_path is "" until it reapplies
-- with one.
INSERT INTO users (id, email, password_hash, role, status, is_verified, verified_at,
                   created_at, updated_at)
SELECT id,
       lower(trim(email)),
       password,
       role,
       CASE WHEN approval_status IN ('pending', 'rejected') THEN approval_status
            ELSE 'active' END,
       is_verified,
       CASE WHEN is_verified THEN updated_at END,
       created_at,
       updated_at
FROM original_users
ORDER BY id;

-- New accounts are numbered after the imported ones.
SELECT setval(pg_get_serial_sequence('users', 'id'), (SELECT max(id) FROM users));
