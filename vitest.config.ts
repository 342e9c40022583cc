import { defineConfig } from 'vitest/config';

/**
 * Files that assert a deadline the issues set (a frozen database answered within
 * QUOTA_DB_TIMEOUT_MS + 50 ms). On two cores, other files running beside them add tens of
 * milliseconds of scheduling delay to what they measure (302 ms against 300 seen once), so
 * they run alone, after everything else.
 */
const alone = ['test/integration/failureMode.test.ts'];

/** Integration files start servers and databases: more time than a unit test's default. */
const integrationTimeouts = { testTimeout: 30_000, hookTimeout: 60_000 };

export default defineConfig({
  test: {
    // Two cores: more files at once only queue on the same CPUs and database.
    maxWorkers: 2,
    projects: [
      {
        test: {
          name: 'unit',
          include: ['test/unit/**/*.test.ts'],
          sequence: { groupOrder: 0 },
        },
      },
      {
        test: {
          name: 'integration',
          include: ['test/integration/**/*.test.ts'],
          exclude: alone,
          // One PostgreSQL for the whole run; each test file gets its own database.
          globalSetup: ['test/support/globalSetup.ts'],
          ...integrationTimeouts,
          sequence: { groupOrder: 0 },
        },
      },
      {
        test: {
          name: 'integration-alone',
          include: alone,
          // They start their own PostgreSQL: freezing a shared one would stop every file.
          ...integrationTimeouts,
          fileParallelism: false,
          sequence: { groupOrder: 1 },
        },
      },
    ],
  },
});
