-- Up Migration

-- Bearer tokens of the gRPC API, kept only as the SHA-256 of the token (see
-- src/auth/tokenSecret.ts for why a plain hash): the token itself is shown once, at creation,
-- and never stored. Every replica keeps a copy of (hash, role, revoked) and reloads it on
-- NOTIFY quota_config 'access_tokens'. last_used_at is written in batches; the trigger leaves
-- that column out, so those writes announce nothing.
CREATE TABLE access_tokens (
  id           bigint GENERATED ALWAYS AS IDENTITY PRIMARY KEY,
  name         text NOT NULL CHECK (name <> '' AND octet_length(name) <= 256),
  role         text NOT NULL CHECK (role IN ('client', 'viewer', 'admin')),
  token_hash   bytea NOT NULL UNIQUE CHECK (octet_length(token_hash) = 32),
  created_at   timestamptz NOT NULL DEFAULT now(),
  last_used_at timestamptz,
  revoked_at   timestamptz
);

CREATE TRIGGER access_tokens_notify
  AFTER INSERT OR DELETE OR UPDATE OF role, token_hash, revoked_at ON access_tokens
  FOR EACH STATEMENT EXECUTE FUNCTION quota_notify_config();

-- Down Migration

DROP TRIGGER IF EXISTS access_tokens_notify ON access_tokens;
DROP TABLE IF EXISTS access_tokens;
