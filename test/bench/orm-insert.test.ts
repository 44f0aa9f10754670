/**
 * The ORM adapter bench runs each case in a child process of its own, driven round by round: the rows
 * come back complete, each hooked insert recorded its event (checked by the child), and a child that
 * dies is reported instead of waited for.
 */
import { describe, expect, it } from 'vitest';
import { adapterCosts, isJudged, isRawRecipe } from '../../bench/orm-insert.js';
import type { OrmCase } from '../../bench/orm-insert-case.js';

describe('bench/orm-insert.ts', () => {
  it('measures each case in its own child process, rounds interleaved', { timeout: 120_000 }, async () => {
    const lines: string[] = [];
    const rows = await adapterCosts(2, (line) => lines.push(line), ['raw-tx', 'kysely']);
    expect(rows.map((r) => [r.adapter, r.mode])).toEqual([
      ['raw better-sqlite3, `{ tx }`', 'transaction'],
      ['Kysely', 'transaction'],
    ]);
    for (const r of rows) {
      expect(r.inserts).toBeGreaterThanOrEqual(40);
      for (const value of [r.plainUs, r.hookedUs, r.ratio, r.plainCpuUs, r.hookedCpuUs]) expect(Number.isFinite(value) && value > 0).toBe(true);
    }
    expect(lines).toEqual(['  adapters: raw-tx ready', '  adapters: kysely ready', '  adapters: round 1 of 2', '  adapters: round 2 of 2']);
  });

  it("judges each adapter in the setup docs/orms.md gives it, and tells the other setups it measures", { timeout: 120_000 }, async () => {
    const rows = await adapterCosts(1, () => undefined, ['raw-tx', 'kysely', 'kysely-through']);
    expect(rows.map((r) => [r.adapter, isRawRecipe(r), isJudged(r)])).toEqual([
      ['raw better-sqlite3, `{ tx }`', true, false],
      ['Kysely', false, true],
      ['Kysely, without the `sqlite` option', false, false],
    ]);
    expect(rows[1]!.otherSetup).toBeUndefined();
    expect(rows[2]!.otherSetup).toMatch(/`sqlite` option/);
  });

  it("measures Prisma's floor on request: each floor insert writes its outbox row (checked by the child)", { timeout: 240_000 }, async () => {
    const rows = await adapterCosts(1, () => undefined, ['prisma-tx-floor', 'prisma-standalone-floor']);
    expect(rows.map((r) => [r.adapter, r.mode])).toEqual([
      ["Prisma's floor, in `$transaction`", 'transaction'],
      ["Prisma's floor, standalone", 'transaction'],
    ]);
    for (const r of rows) for (const value of [r.plainUs, r.hookedUs, r.ratio]) expect(Number.isFinite(value) && value > 0).toBe(true);
  });

  it('reports a case whose child dies', { timeout: 60_000 }, async () => {
    await expect(adapterCosts(1, () => undefined, ['no-such-case' as OrmCase])).rejects.toThrow(/bench case no-such-case exited/);
  });
});
