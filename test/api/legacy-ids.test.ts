/**
 * Ids made before the TypeID format (`sub_` + 10 chars of ms + 4 of sequence + 12 random) stay valid: the
 * API takes them as opaque strings, and they sort by time among new ids, so paging over both works.
 */
import Database from 'better-sqlite3';
import { afterEach, describe, expect, it } from 'vitest';
import { idFloor } from '../../src/ids.js';
import { apiHarness, TARGET, type ApiHarness } from './api-support.js';

let h: ApiHarness;
afterEach(() => h?.close());

describe('ids of the previous format', () => {
  it('are found, changed and paged through by the API beside new TypeIDs', async () => {
    h = await apiHarness();
    const created = (await (await h.call('POST', '/hooks', { body: { event: 'book.added', target: TARGET } })).json()) as { id: string };
    const newer = (await (await h.call('POST', '/hooks', { body: { event: 'book.changed', target: TARGET } })).json()) as { id: string };
    // The first subscription gets an id of the previous format, made a minute before the other.
    const legacy = `${idFloor('sub', Date.now() - 60_000)}0000abcdefghjkmn`;
    const db = new Database(h.file);
    // Its secret as such a row has it: stored before secrets were sealed (a sealed one is bound to its row's id).
    db.prepare("update resthooks_subscriptions set id = ?, secret = 'whsec_MfKQ9r8GKYqrTwjUPD8ILPZIo2LaLaSw' where id = ?").run(legacy, created.id);
    db.close();

    const one = await h.call('GET', `/hooks/${legacy}`);
    expect(one.status).toBe(200);
    expect(await one.json()).toMatchObject({ id: legacy, event: 'book.added' });
    const patched = await h.call('PATCH', `/hooks/${legacy}`, { body: { active: false } });
    expect(patched.status).toBe(200);
    expect(await patched.json()).toMatchObject({ id: legacy, active: false });

    const first = await h.call('GET', '/hooks?limit=1');
    expect(((await first.json()) as Array<{ id: string }>).map((s) => s.id)).toEqual([newer.id]);
    const cursor = first.headers.get('x-next-cursor');
    expect(cursor).toBe(newer.id);
    const second = await h.call('GET', `/hooks?limit=1&cursor=${cursor}`);
    expect(((await second.json()) as Array<{ id: string }>).map((s) => s.id)).toEqual([legacy]);
  });
});
