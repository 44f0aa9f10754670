import { Migrator, type Kysely, type MigrationResultSet } from 'kysely';
import { initial } from './migrations/0001-initial.js';
import { attemptsKeyedByDelivery } from './migrations/0002-attempts-keyed-by-delivery.js';
import { eventFanOutRetries } from './migrations/0003-event-fanout-retries.js';

const MIGRATIONS = {
  '0001-initial': initial,
  '0002-attempts-keyed-by-delivery': attemptsKeyedByDelivery,
  '0003-event-fanout-retries': eventFanOutRetries,
};

/** Brings the resthooks tables up to date. Returns Kysely's `{ error, results }` rather than throwing. */
export function migrateToLatest(db: Kysely<any>): Promise<MigrationResultSet> {
  const migrator = new Migrator({
    db,
    provider: { getMigrations: async () => MIGRATIONS },
    migrationTableName: 'resthooks_migration',
    migrationLockTableName: 'resthooks_migration_lock',
  });
  return migrator.migrateToLatest();
}
