import { Migrator, type Kysely, type MigrationResultSet } from 'kysely';
import { initial } from './migrations/0001-initial.js';

const MIGRATIONS = { '0001-initial': initial };

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
