/**
 * The benchmark scenarios at a small size, on real parts: the backlog built by SQL is one the engine
 * delivers as its own (signed, one request per (event, subscription), nothing fanned out again), each
 * scenario's measurement sees every delivery it times, and a run alone replaces only its own section.
 */
import Database from 'better-sqlite3';
import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import { backlogReport, buildBacklog, measureBacklog, threadOverheadMb } from '../../bench/backlog.js';
import { fanOutReport, measureFanOut } from '../../bench/fanout-10k.js';
import { latencyReport, measureLatency } from '../../bench/latency.js';
import { Receiver } from '../../bench/receiver-process.js';
import { sectionOf, spliceSection, type ScenarioContext, type ScenarioReport } from '../../bench/scenario-report.js';
import { scenarioNamed } from '../../bench/scenarios.js';
import { postgresTxCost, txCostReport } from '../../bench/tx-cost.js';
import { createHooks, sqliteStore } from '../../src/index.js';
import { ENGINES, TestDatabase } from '../support/database.js';
import { tempDir } from '../support/hooks.js';
import { startReceiver, verify } from '../support/receiver.js';

let rx: Receiver;
let dir: ReturnType<typeof tempDir>;
const context = (): ScenarioContext => ({ rx, dir: dir.path, bodyLength: 330, log: () => undefined });

beforeAll(async () => {
  rx = await Receiver.start();
  dir = tempDir();
});
afterAll(() => {
  rx.close();
  dir.cleanup();
});

describe('backlog', () => {
  it('is built in the store\'s own shape: the engine delivers each (event, subscription) once, signed, and marks its events fanned out', { timeout: 60_000 }, async () => {
    const receiver = await startReceiver();
    const file = `${dir.path}/shape.db`;
    try {
      const port = Number(new URL(receiver.url).port);
      expect(await buildBacklog(file, port, { events: 3, subscriptions: 4 })).toBe(12);
      const hooks = createHooks({ events: { 'book.added': 'Book.created' }, store: sqliteStore(new Database(file)), allowPrivateTargets: true, delivery: { pollInterval: 20 } });
      const secrets = new Map((await hooks.subscriptions.list({ limit: 100 })).items.map((s) => [new URL(s.target).pathname, s.secret]));
      await hooks.start();
      const received = await receiver.waitFor(12, 30_000);
      await hooks.idle({ timeout: '10s' });
      await hooks.close();
      const pairs = received.map((r) => {
        const payload = verify(secrets.get(r.path)!, r) as { hook: { target: string }; data: { id: number } };
        expect(new URL(payload.hook.target).pathname).toBe(r.path);
        return `${r.path} ${payload.data.id}`;
      });
      expect(new Set(pairs).size).toBe(12);
      const db = new Database(file, { readonly: true });
      const states = db.prepare('select status, attempts, count(*) as n from resthooks_deliveries group by status, attempts').all();
      const events = db.prepare('select status, count(*) as n from resthooks_events group by status').all();
      db.close();
      expect([states, events]).toEqual([[{ status: 'delivered', attempts: 1, n: 12 }], [{ status: 'done', n: 3 }]]);
      expect(receiver.received).toHaveLength(12);
    } finally {
      await receiver.close();
    }
  });

  it('a process restarted on it reports its first delivery and peak RSS, and its deliveries are recorded', { timeout: 90_000 }, async () => {
    const run = await measureBacklog(context(), { events: 2, subscriptions: 5 }, 1_000, 'tiny');
    expect(run.pending).toBe(10);
    expect(run.delivered).toBeGreaterThan(0);
    expect(run.firstAfterStartMs).toBeGreaterThan(0);
    expect(run.firstAfterSpawnMs).toBeGreaterThan(run.firstAfterStartMs);
    expect(run.rssMaxMb).toBeGreaterThanOrEqual(run.rssAtStartMb);
    const report = backlogReport(run, run);
    expect(run.heapAfterGcMb).toBeGreaterThan(0);
    expect(report.lines.join('\n')).toContain('| 10 |');
    // A target missed names the checkpointer thread's share of the fixed cost, when it was measured.
    const thread = threadOverheadMb();
    expect(thread).toBeGreaterThan(0);
    const missed = backlogReport({ ...run, rssMaxMb: 10_000 }, run, thread);
    expect(missed.verdicts[0]).toMatch(/missed.*MB is the SQLite store's checkpointer thread/);
  });
});

describe('fan-out', () => {
  it('times resthooks, the floor and the ceiling on the same number of deliveries in every round', { timeout: 90_000 }, async () => {
    const r = await measureFanOut(context(), { subscriptions: 50, rounds: 2 });
    expect(r.rounds.map((x) => [x.ours.deliveries, x.floor.deliveries, x.ceiling.deliveries])).toEqual([
      [50, 50, 50],
      [50, 50, 50],
    ]);
    expect(fanOutReport(r).lines.some((line) => line.startsWith('| resthooks |'))).toBe(true);
  });
});

describe('latency', () => {
  it('sees every event at the receiver and in every stage (the bench tracer follows the engine\'s spans)', { timeout: 90_000 }, async () => {
    const r = await measureLatency(context(), { perSecond: 50, seconds: 1 });
    expect([r.ours.count, r.withoutCheckpointer.ours.count, r.ceiling.count]).toEqual([50, 50, 50]);
    expect(r.stages.map((s) => s.count)).toEqual([50, 50, 50, 50]);
    for (const p of [r.ours, r.ceiling]) expect(p.p50).toBeLessThanOrEqual(p.max);
    expect(latencyReport(r).verdicts).toHaveLength(1);
    expect(latencyReport(r).lines.filter((line) => /^\| (resthooks|`checkpointer: false`)/.test(line))).toHaveLength(4);
  });
});

describe('{ tx } cost', () => {
  for (const engine of ENGINES.filter((e) => e === 'postgres')) {
    it(`on ${engine}: every hooked transaction commits its event, and the ratio compares like with like`, { timeout: 60_000 }, async () => {
      const database = new TestDatabase(engine);
      await database.init();
      try {
        const cost = await postgresTxCost({ rounds: 2, perRound: 5, url: database.url });
        expect(cost.ratio).toBeGreaterThan(0);
        expect(txCostReport([cost]).lines.join('\n')).toContain('PostgreSQL');
      } finally {
        await database.close();
      }
    });
  }
});

describe('the page', () => {
  const report = (name: string, text: string): ScenarioReport => ({ name, lines: [`## ${name}`, text], verdicts: [] });
  const page = ['# Benchmarks', '', '## Tables', '', '## What bounds these numbers', '', 'prose'].join('\n');

  it('a scenario run alone adds its section before the analysis, then replaces only that section', () => {
    const once = spliceSection(page, report('fanout', 'first'), '## What bounds these numbers');
    expect(once.indexOf('## fanout')).toBeLessThan(once.indexOf('## What bounds these numbers'));
    const withOther = spliceSection(once, report('latency', 'other'), '## What bounds these numbers');
    const twice = spliceSection(withOther, report('fanout', 'second'), '## What bounds these numbers');
    expect(twice).toContain('second');
    expect(twice).not.toContain('first');
    expect(twice).toContain('other');
    expect(twice.split('scenario:fanout:start').length).toBe(2);
    expect(sectionOf(report('x', 'y'))[0]).toContain('scenario:x:start');
  });

  it('an unknown scenario name fails loudly, naming the ones there are', () => {
    expect(() => scenarioNamed('nope')).toThrow(/fanout, latency, backlog, tx-cost/);
  });
});
