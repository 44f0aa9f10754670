// prelude "drizzle-sqlite": what the Drizzle example before it imported, with a better-sqlite3 books table.
import Database from 'better-sqlite3';
import { eq } from 'drizzle-orm';
import { drizzle } from 'drizzle-orm/better-sqlite3';
import { integer as preludeInteger, sqliteTable as preludeSqliteTable, text as preludeText } from 'drizzle-orm/sqlite-core';
import { drizzleHooks } from 'resthooks/drizzle';
declare const hooks: import('resthooks').Hooks;
const books = preludeSqliteTable('books', { id: preludeInteger('id').primaryKey({ autoIncrement: true }), title: preludeText('title').notNull(), pages: preludeInteger('pages').notNull(), ownerId: preludeText('owner_id').notNull() });
