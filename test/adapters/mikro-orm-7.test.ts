/**
 * resthooks/mikro-orm with MikroORM 7 (SQL through Kysely, where 6 has Knex): the same MikroORM suites as
 * for 6 (test/support/mikro-orm-suite.ts), with 7's packages from test/peers/mikro-orm-7.
 */
import { mikroOrm7 } from '../support/mikro-orm-7.js';
import { mikroOrmSuites } from '../support/mikro-orm-suite.js';

mikroOrmSuites(await mikroOrm7());
