import { defineConfig } from 'vitest/config';

/**
 * Files that assert a deadline the issues set (a frozen database answered within
 * QUOTA_DB_TIMEOUT_MS + 50 ms). On two cores, other files running beside them add tens of
 * milliseconds of scheduling delay to what they measure (302 ms against 300 seen once), so
 * they run alone, after everything else.
 */
const alone = ['test/integration/failureMode.test.ts'];

/**
 * Files that start a PostgreSQL of their own (to freeze, kill or fill it): when
 * QUOTA_TEST_DATABASE_URL points the suite at another server, they would test nothing they have
 * not tested in the embedded run, so that run leaves them out.
 */
const ownDatabase = [
  ...alone,
  'test/integration/commandQuotaDurability.test.ts',
  'test/integration/databaseRestart.test.ts',
  'test/integration/embedded.test.ts',
  'test/integration/embeddedPermissions.test.ts',
];
/**
 * Files whose subject is not the database (the client package: packing, connect(), the
 * executor's processes, the HTTP middleware; the image's health check): a second run against
 * another server would only repeat them.
 */
const notAboutTheDatabase = [
  'test/integration/clientPackage.test.ts',
  'test/integration/clientConnect.test.ts',
  'test/integration/executorChildSpec.test.ts',
  'test/integration/executorProcessGroups.test.ts',
  'test/integration/httpBackendExample.test.ts',
  'test/integration/httpBurst.test.ts',
  'test/integration/httpMiddleware.test.ts',
  'test/integration/dockerHealthcheck.test.ts',
];
const external = process.env['QUOTA_TEST_DATABASE_URL'] !== undefined;

/** Integration files start servers and databases: more time than a unit test's default. */
const integrationTimeouts = { testTimeout: 30_000, hookTimeout: 60_000 };

export default defineConfig({
  test: {
    // Two cores: more files at once only queue on the same CPUs and database.
    maxWorkers: 2,
    // Against an external server the integration-alone project has no files (see ownDatabase).
    passWithNoTests: external,
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
          exclude: external ? [...ownDatabase, ...notAboutTheDatabase] : alone,
          // One PostgreSQL for the whole run; each test file gets its own database.
          globalSetup: ['test/support/globalSetup.ts'],
          ...integrationTimeouts,
          sequence: { groupOrder: 0 },
        },
      },
      {
        test: {
          name: 'integration-alone',
          include: external ? [] : alone,
          // They start their own PostgreSQL: freezing a shared one would stop every file.
          ...integrationTimeouts,
          fileParallelism: false,
          sequence: { groupOrder: 1 },
        },
      },
    ],
  },
});
