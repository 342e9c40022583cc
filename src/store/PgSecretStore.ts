import type { SecretStore } from '../limits/ports.js';
import type { Database } from './Database.js';

/** Server secrets in the service_secrets table, one row per name, never changed once written. */
export class PgSecretStore implements SecretStore {
  constructor(private readonly db: Database) {}

  async getOrCreate(name: string, candidate: Uint8Array): Promise<Buffer> {
    await this.db.query(
      'INSERT INTO service_secrets (name, value) VALUES ($1, $2) ON CONFLICT (name) DO NOTHING',
      [name, Buffer.from(candidate)],
    );
    // A statement of its own: the insert's snapshot would not show a row that another replica
    // committed while the insert waited on it.
    const result = await this.db.query<{ value: Buffer }>(
      'SELECT value FROM service_secrets WHERE name = $1',
      [name],
    );
    const row = result.rows[0];
    if (!row) throw new Error(`secret ${JSON.stringify(name)} is missing after it was stored`);
    return row.value;
  }
}
