import pg from 'pg';

/**
 * A connected session of the test's own on `url` (to hold a lock, cut others' sessions, read
 * what was stored). If the server ends it, the statement awaited on it fails; the client's
 * 'error' event is listened to so that it never becomes an unhandled error of the test file.
 */
export async function sqlSession(url: string, options: pg.ClientConfig = {}): Promise<pg.Client> {
  const client = new pg.Client({ ...options, connectionString: url });
  client.on('error', () => undefined);
  await client.connect();
  return client;
}
