import { describe, expect, it } from 'vitest';
import { placeholderParts } from './host-executor.js';

describe('placeholderParts: a compiled statement cut at its placeholders', () => {
  it('cuts `?` (SQLite) and `$n` (PostgreSQL, in any order, repeated) and passes quoted text over', () => {
    expect(placeholderParts({ sql: 'insert into "t" ("a", "b") values (?, ?)', parameters: [1, 'x'] })).toEqual({
      texts: ['insert into "t" ("a", "b") values (', ', ', ')'],
      values: [1, 'x'],
    });
    expect(placeholderParts({ sql: `update t set a = $2, s = 'pending?$1' where id = $1 or p = $1`, parameters: ['id', 5] })).toEqual({
      texts: ['update t set a = ', `, s = 'pending?$1' where id = `, ' or p = ', ''],
      values: [5, 'id', 'id'],
    });
    expect(placeholderParts({ sql: 'select 1', parameters: [] })).toEqual({ texts: ['select 1'], values: [] });
  });

  it('refuses a placeholder without a parameter', () => {
    expect(() => placeholderParts({ sql: 'select $3', parameters: [1] })).toThrow(/\$3 has no parameter/);
    expect(() => placeholderParts({ sql: 'select ?, ?', parameters: [1] })).toThrow(/\? has no parameter/);
  });
});
