// JSON.stringify already calls toJSON() (so Dates become ISO strings); bigint has no JSON form and
// would throw, so it is sent as a string, as django-rest-hooks' encoder does for Decimal.
function replacer(_key: string, value: unknown): unknown {
  return typeof value === 'bigint' ? value.toString() : value;
}

/** The instance's JSON text: `toJSON()` if present, Dates as ISO strings, bigint as strings. */
export function toJsonText(value: unknown): string {
  let text: string | undefined;
  try {
    // Without a replacer, JSON.stringify keeps V8's fast path (every save runs this); only a bigint,
    // which it refuses, needs the replacer, and then the instance is serialized again with it.
    text = JSON.stringify(value);
  } catch (error) {
    if (!(error instanceof TypeError) || !/bigint/i.test(error.message)) throw error;
    text = JSON.stringify(value, replacer);
  }
  return text === undefined ? 'null' : text;
}
