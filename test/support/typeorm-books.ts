/** The suite's books as a TypeORM entity, for the tests that run TypeORM. */
import { EntitySchema } from 'typeorm';
import type { Book } from '../orm-adapter.suite.js';

export const BookEntity = new EntitySchema<Book>({
  name: 'Book',
  tableName: 'books',
  columns: {
    id: { type: 'integer', primary: true, generated: 'increment' },
    title: { type: 'varchar' },
    pages: { type: 'integer' },
    ownerId: { type: 'varchar' },
  },
});
