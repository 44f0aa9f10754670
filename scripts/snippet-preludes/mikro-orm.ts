// prelude "mikro-orm": the app's MikroORM entity schema for books, and a book's id.
declare const BookSchema: import('@mikro-orm/core').EntitySchema<{ id: number; title: string; pages: number; ownerId: string }>;
declare const id: number;
