import { describe, expect, it, vi } from 'vitest';
import { envelopeBody, eventBody } from './envelope.js';

const hook = { id: 'sub_1', event: 'book.added', target: 'https://x.test/h?a="b"' };
const plain = (h: typeof hook, data: string) => JSON.stringify({ hook: { id: h.id, event: h.event, target: h.target }, data: JSON.parse(data) as unknown });

describe('the envelope', () => {
  it("is django-rest-hooks' payload, the data spliced in as serialized, extra members after it", () => {
    expect(envelopeBody(hook, '{"id":1}')).toBe(plain(hook, '{"id":1}'));
    expect(eventBody(hook, '{"id":1}', ',"changes":["title"]')).toBe(`${plain(hook, '{"id":1}').slice(0, -1)},"changes":["title"]}`);
    expect(eventBody(hook, '{"id":1}', '{"whole":true}')).toBe('{"whole":true}');
  });

  it('kept per subscription part, still follows the hook it is built for: another event, target or id is stringified afresh', () => {
    const part = {};
    expect(eventBody(hook, '{"id":1}', null, part)).toBe(plain(hook, '{"id":1}'));
    expect(eventBody(hook, '{"id":2}', null, part)).toBe(plain(hook, '{"id":2}'));
    for (const other of [{ ...hook, event: 'book.changed' }, { ...hook, target: 'https://y.test/h' }, { ...hook, id: 'sub_2' }]) {
      expect(eventBody(other, '{"id":3}', null, part)).toBe(plain(other, '{"id":3}'));
    }
    expect(eventBody(hook, '{"id":4}', null, part)).toBe(plain(hook, '{"id":4}'));
  });

  it('is stringified once per subscription part, however the deliveries of several subscriptions interleave', () => {
    const parts = [{}, {}, {}];
    const hooks = parts.map((_, i) => ({ ...hook, id: `sub_${i}` }));
    const stringify = vi.spyOn(JSON, 'stringify');
    try {
      for (let event = 0; event < 4; event++) {
        parts.forEach((part, i) => expect(eventBody(hooks[i]!, `{"id":${event}}`, null, part)).toBe(`{"hook":${JSON.stringify(hooks[i])},"data":{"id":${event}}}`));
      }
      // One in each expectation (12), and one per subscription part.
      expect(stringify).toHaveBeenCalledTimes(12 + 3);
    } finally {
      stringify.mockRestore();
    }
  });
});
