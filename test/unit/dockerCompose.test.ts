import { readFileSync } from 'node:fs';
import { describe, expect, it } from 'vitest';
import { parse } from 'yaml';
import { VARIABLES } from '../../src/config.js';

// No Docker engine runs here, so the file is kept valid by construction and checked by parsing.
describe('docker-compose.yml', () => {
  const compose = parse(
    readFileSync(new URL('../../docker-compose.yml', import.meta.url), 'utf8'),
  ) as {
    services: Record<
      string,
      {
        environment?: Record<string, string>;
        command?: string[];
        depends_on?: Record<string, unknown>;
      }
    >;
  };

  it('defines PostgreSQL, a migration step and two replicas', () => {
    expect(Object.keys(compose.services).sort()).toEqual([
      'migrate',
      'postgres',
      'quota-a',
      'quota-b',
    ]);
    expect(compose.services['migrate']!.command).toEqual(['migrate']);
    expect(compose.services['quota-a']!.depends_on).toHaveProperty('migrate');
  });

  it('sets only variables the service reads', () => {
    const known = new Set(VARIABLES.map((v) => v.name));
    for (const name of ['migrate', 'quota-a', 'quota-b']) {
      for (const key of Object.keys(compose.services[name]!.environment ?? {}))
        expect(known).toContain(key);
    }
  });
});
