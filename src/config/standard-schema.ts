/**
 * The Standard Schema v1 interface (https://standardschema.dev), copied as its authors recommend so that
 * zod, valibot, arktype and any other implementation fit without resthooks depending on one of them.
 * Types only; plus the optional Standard JSON Schema converter, which schemas that can describe
 * themselves as JSON Schema carry beside `validate`.
 * @module
 */

export interface StandardSchemaV1<Input = unknown, Output = Input> {
  readonly '~standard': StandardSchemaProps<Input, Output>;
}

export interface StandardSchemaProps<Input = unknown, Output = Input> {
  readonly version: 1;
  readonly vendor: string;
  readonly validate: (value: unknown, options?: { readonly libraryOptions?: Record<string, unknown> | undefined } | undefined) => StandardSchemaResult<Output> | Promise<StandardSchemaResult<Output>>;
  readonly types?: { readonly input: Input; readonly output: Output } | undefined;
}

export type StandardSchemaResult<Output> = { readonly value: Output; readonly issues?: undefined } | { readonly issues: ReadonlyArray<StandardSchemaIssue> };

export interface StandardSchemaIssue {
  readonly message: string;
  readonly path?: ReadonlyArray<PropertyKey | { readonly key: PropertyKey }> | undefined;
}

/** Standard JSON Schema v1's converter, present on schemas that implement it. */
export interface StandardJsonSchemaConverter {
  readonly input: (options: { readonly target: string }) => Record<string, unknown>;
  readonly output: (options: { readonly target: string }) => Record<string, unknown>;
}

/**
 * A schema's output as JSON Schema (draft 2020-12), when it implements Standard JSON Schema (zod 4.2+,
 * valibot and arktype through their converters); `undefined` when it cannot describe itself, or says so by
 * throwing (a zod `z.date()`, say).
 */
export function jsonSchemaOf(schema: StandardSchemaV1 | undefined): Record<string, unknown> | undefined {
  const converter = (schema?.['~standard'] as { readonly jsonSchema?: Partial<StandardJsonSchemaConverter> } | undefined)?.jsonSchema;
  if (typeof converter?.output !== 'function') return undefined;
  try {
    const { $schema: _dialect, ...described } = converter.output({ target: 'draft-2020-12' });
    return described;
  } catch {
    return undefined;
  }
}

/** The type a schema accepts. */
export type SchemaInput<Schema extends StandardSchemaV1> = NonNullable<Schema['~standard']['types']>['input'];
/** The type a schema gives back. */
export type SchemaOutput<Schema extends StandardSchemaV1> = NonNullable<Schema['~standard']['types']>['output'];
