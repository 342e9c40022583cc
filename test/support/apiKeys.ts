import { ApiKeyHasher, API_KEY_SECRET_NAME } from '../../src/limits/ApiKeyHasher.js';
import type { TestDatabase } from './testDatabase.js';

/** What counters hold for `apiKey`: its hash under the secret generated in the database. */
export async function storedApiKey(db: TestDatabase, apiKey: string): Promise<string> {
  const secret = await db.query<{ value: Buffer }>(
    'SELECT value FROM service_secrets WHERE name = $1',
    [API_KEY_SECRET_NAME],
  );
  return new ApiKeyHasher(secret.rows[0]!.value).hash(apiKey);
}
