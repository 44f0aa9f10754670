// JSON.stringify already calls toJSON() (so Dates become ISO strings); bigint has no JSON form and
// would throw, so it is sent as a string, as django-rest-hooks' encoder does for Decimal.
function replacer(_key: string, value: unknown): unknown {
  return typeof value === 'bigint' ? value.toString() : value;
}

/** The instance's JSON text: `toJSON()` if present, Dates as ISO strings, bigint as strings. */
export function toJsonText(value: unknown): string {
  const text = JSON.stringify(value, replacer);
  return text === undefined ? 'null' : text;
}
