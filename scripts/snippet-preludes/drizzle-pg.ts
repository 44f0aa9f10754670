// prelude "drizzle-pg": the app's pg pool and its Drizzle books table.
import { integer as preludeInteger, pgTable as preludePgTable, serial as preludeSerial, text as preludeText } from 'drizzle-orm/pg-core';
declare const pool: import('pg').Pool;
const books = preludePgTable('books', { id: preludeSerial('id').primaryKey(), title: preludeText('title').notNull(), pages: preludeInteger('pages').notNull(), ownerId: preludeText('owner_id').notNull() });
