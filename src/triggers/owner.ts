/** Anything that names an owner: a user id as a string or number (bigint ids included). */
export type OwnerValue = string | number | bigint;

/**
 * Finds the owner of an instance; return null/undefined when it has none. (Declared through a
 * method so that `(book: Book) => book.authorId` is accepted without a cast.)
 */
export type OwnerResolver = { resolve(instance: object): OwnerValue | null | undefined }['resolve'];

interface OwnedShape {
  ownerId?: unknown;
  userId?: unknown;
  user?: { id?: unknown } | null;
}

/** `instance.ownerId ?? instance.userId ?? instance.user?.id`: django-rest-hooks' `instance.user`, in TypeScript's usual spellings. */
export const defaultOwner: OwnerResolver = (instance) => {
  const owned = instance as OwnedShape;
  const value = owned.ownerId ?? owned.userId ?? owned.user?.id;
  return typeof value === 'string' || typeof value === 'number' || typeof value === 'bigint' ? value : undefined;
};

/** Owners are stored as strings: 42, 42n and "42" are the same owner. */
export function normalizeOwner(value: unknown): string | null {
  if (typeof value === 'string') return value === '' ? null : value;
  if (typeof value === 'number' || typeof value === 'bigint') return String(value);
  return null;
}
