import type { GaugeSource } from './GaugeSource.js';

/** What the database gauges read: the breaker and the pool, both from memory. */
export interface DatabaseView {
  /** The breaker: false while the database is taken as not answering. */
  readonly available: boolean;
  readonly poolUse: { readonly total: number; readonly idle: number; readonly waiting: number };
}

/**
 * The breaker's state and the pool's use. Read from memory only: a scrape while the database
 * is away still answers, and says so.
 */
export function databaseGauges(db: DatabaseView, poolSize: number): GaugeSource[] {
  const one = (value: number) => [{ value }];
  return [
    {
      name: 'quota_database_available',
      help: '1 while the database answers, 0 while the breaker is open (failure mode in force)',
      read: () => one(db.available ? 1 : 0),
    },
    {
      name: 'quota_database_pool_connections',
      help: 'Connections the pool holds open, busy and idle',
      read: () => one(db.poolUse.total),
    },
    {
      name: 'quota_database_pool_idle_connections',
      help: 'Open connections no query is using',
      read: () => one(db.poolUse.idle),
    },
    {
      name: 'quota_database_pool_waiting',
      help: 'Queries waiting for a connection of the pool',
      read: () => one(db.poolUse.waiting),
    },
    {
      name: 'quota_database_pool_max_connections',
      help: 'Connections the pool may open at most (QUOTA_DB_POOL_SIZE)',
      read: () => one(poolSize),
    },
  ];
}
