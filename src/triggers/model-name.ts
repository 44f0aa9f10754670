/**
 * How a trigger names the model of a class or an instance. A class's own `name` does not survive
 * minifiers (esbuild `--minify` turns `Book` into `o`), so a class can declare its model name, which
 * wins over the class name; a name taken from the class name alone is marked as such, so that a
 * miss can be reported instead of silently ignored.
 * @module
 */

/**
 * A class's model name, declared as a static member so that it survives minification:
 * `class Book { static [resthooksModel] = 'Book' }`. A plain `static resthooksModel = 'Book'` works too.
 */
export const resthooksModel: unique symbol = Symbol.for('resthooks.model');

/** A model name and where it came from. */
export interface ResolvedModel {
  readonly name: string;
  /** Taken from a class's `name` (which a minifier may have changed), not declared or given. */
  readonly fromClassName: boolean;
  /** The class it was read from, when it was. */
  readonly type?: object;
}

/** The model of a `ModelRef`: a string, a class (its declared name, else its `name`), or an object with a `name`. */
export function resolveModelRef(model: unknown): ResolvedModel | undefined {
  if (typeof model === 'string') return model === '' ? undefined : { name: model, fromClassName: false };
  if (typeof model === 'function') return resolveClass(model);
  if (typeof model === 'object' && model !== null) {
    const name = declaredModelName(model) ?? (model as { name?: unknown }).name;
    return typeof name === 'string' && name !== '' ? { name, fromClassName: false } : undefined;
  }
  return undefined;
}

/** The model of an instance, from its class; undefined for plain objects. */
export function resolveInstanceModel(instance: object): ResolvedModel | undefined {
  const type = (instance as { constructor?: unknown }).constructor;
  if (typeof type !== 'function' || type === Object) return undefined;
  return resolveClass(type);
}

function resolveClass(type: object): ResolvedModel | undefined {
  const declared = declaredModelName(type);
  if (declared !== undefined) return { name: declared, fromClassName: false, type };
  const name = (type as { name?: unknown }).name;
  return typeof name === 'string' && name !== '' && name !== 'Object' ? { name, fromClassName: true, type } : undefined;
}

/**
 * The model name a class declares (`static [resthooksModel]` or `static resthooksModel`), if any. Own
 * members only: a subclass is its own model, as it is when named by its class name.
 */
export function declaredModelName(type: object): string | undefined {
  const declared = Object.hasOwn(type, resthooksModel)
    ? (type as { [resthooksModel]?: unknown })[resthooksModel]
    : Object.hasOwn(type, 'resthooksModel')
      ? (type as { resthooksModel?: unknown }).resthooksModel
      : undefined;
  return typeof declared === 'string' && declared !== '' ? declared : undefined;
}
