-- Up Migration

-- Defaults a new installation starts with; operators change them with AdminService. They are
-- listed in the README. Exact-match rules override the "*" rule of their scope.
INSERT INTO rate_limit_rules (name, scope, match, limit_count, window_ms, algorithm, period, description) VALUES
  ('ip-per-minute', 'ip', '*', 600, 60000, 'sliding_window', NULL, 'Each client IP: 600 calls per sliding minute.'),
  ('user-per-minute', 'user', '*', 300, 60000, 'sliding_window', NULL, 'Each user: 300 calls per sliding minute.'),
  ('api-key-per-second', 'api_key', '*', 50, 1000, 'token_bucket', NULL, 'Each API key: bursts of 50, refilled at 50 per second.'),
  ('api-key-per-day', 'api_key', '*', 10000, NULL, 'fixed_window', 'daily', 'Each API key: 10,000 calls per calendar day.')
ON CONFLICT (name) DO NOTHING;

-- Down Migration

DELETE FROM rate_limit_rules WHERE name IN ('ip-per-minute', 'user-per-minute', 'api-key-per-second', 'api-key-per-day');
