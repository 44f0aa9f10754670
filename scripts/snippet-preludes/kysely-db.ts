// prelude "kysely-db": the app's own Kysely instance over a books table.
declare const db: import('kysely').Kysely<{
  books: { id: import('kysely').Generated<number>; title: string; pages: number | null; ownerId: string | null; owner_id: string | null };
}>;
