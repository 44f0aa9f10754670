// prelude "typeorm-book": the app's TypeORM Book entity, and a book's id.
import { EntitySchema as PreludeEntitySchema } from 'typeorm';
const Book = new PreludeEntitySchema<{ id: number; title: string; pages: number; ownerId: string }>({
  name: 'Book',
  columns: { id: { type: Number, primary: true, generated: true }, title: { type: String }, pages: { type: Number }, ownerId: { type: String } },
});
declare const id: number;
