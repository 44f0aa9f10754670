/**
 * Every TypeScript and JavaScript block of README.md and docs/*.md, as scripts/snippets.ts checks them: each is
 * type-checked with tsc --strict against src/, and each complete program is run (SQLite files in a fresh
 * directory, a fresh PostgreSQL database and the suite's Redis when it asks for them, a receiver on 127.0.0.1 as
 * TARGET_URL). Then the checker itself, on blocks written to fail.
 */
import { mkdirSync, mkdtempSync, rmSync, writeFileSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { afterAll, beforeAll, describe, expect, inject, it } from 'vitest';
import {
  describeMode,
  extractSnippets,
  formatProblem,
  runFailure,
  runSnippet,
  sortProblems,
  typecheck,
  writeWorkspace,
  type Snippet,
  type Workspace,
} from '../scripts/snippets.js';
import { createTestDatabase } from './support/postgres.js';
import { startReceiver } from './support/receiver.js';

const { snippets, problems: markerProblems } = extractSnippets();
const programs = snippets.filter((snippet) => snippet.mode.kind === 'run');
const name = (snippet: Snippet) => `${snippet.doc}:${snippet.line}${snippet.file ? ` (${snippet.file})` : ''}`;

let workspace: Workspace;

beforeAll(() => {
  workspace = writeWorkspace(snippets);
});

afterAll(() => workspace?.cleanup());

describe('the documentation snippets', () => {
  it('lists every ts/js block with how it is checked, and each marker means something', () => {
    console.info(snippets.map((snippet) => `${name(snippet)}  ${describeMode(snippet.mode)}`).join('\n'));
    expect(markerProblems.map(formatProblem)).toEqual([]);
    expect(snippets.length).toBeGreaterThan(40);
    // The README's first delivery is there, in both module systems, as programs that run.
    const firstDelivery = programs.filter((snippet) => snippet.doc === 'README.md' && snippet.file?.startsWith('first-delivery.'));
    expect(firstDelivery.map((snippet) => snippet.file).sort()).toEqual(['first-delivery.cjs', 'first-delivery.mjs']);
  });

  it('type-check under --strict', () => {
    const problems = sortProblems(typecheck(workspace));
    expect(problems.map(formatProblem).join('\n')).toBe('');
  }, 300_000);

  describe.each(programs.map((snippet) => [name(snippet), snippet] as const))('%s', (_label, snippet) => {
    it('runs to completion', async () => {
      const receiver = await startReceiver();
      const cwd = mkdtempSync(join(tmpdir(), 'resthooks-snippet-run-'));
      const database = snippet.code.includes('DATABASE_URL') ? await createTestDatabase(inject('postgresUrl')) : undefined;
      try {
        const env: Record<string, string> = { TARGET_URL: receiver.url, PORT: '0', REDIS_URL: inject('redisUrl') };
        if (database) env.DATABASE_URL = database.url;
        const result = await runSnippet(workspace, snippet, { cwd, env, timeoutMs: 120_000 });
        expect(runFailure(snippet, result)).toBeUndefined();
        if (snippet.file?.startsWith('first-delivery.')) {
          // What the README promises: the delivery arrived, and the program says so.
          expect(result.output).toContain(`book.added → ${receiver.url}: delivered`);
          expect(receiver.received).toHaveLength(1);
          expect(JSON.parse(receiver.received[0]!.body)).toMatchObject({ hook: { event: 'book.added' }, data: { title: 'The Two Towers' } });
        }
      } finally {
        await receiver.close();
        await database?.drop();
        rmSync(cwd, { recursive: true, force: true });
      }
    }, 180_000);
  });
});

describe('the snippet checker', () => {
  let dir: string;
  let doc: string;

  beforeAll(() => {
    dir = mkdtempSync(join(tmpdir(), 'resthooks-snippet-checker-'));
    mkdirSync(join(dir, 'docs'));
    doc = join(dir, 'docs', 'broken.md');
    writeFileSync(
      doc,
      [
        '# Broken on purpose', //                                  1
        '', //                                                      2
        '```ts', //                                                 3
        "import { createHooks } from 'resthooks';", //              4
        "const limit: number = 'ten';", //                          5: a type error
        'createHooks;', //                                          6
        '```', //                                                   7
        '', //                                                      8
        '<!-- snippet: prelude=hooks -->', //                       9
        '```ts', //                                                 10
        "await hooks.raw('user.logged_in', { username: 'alice' });", // 11: fine with its prelude
        '```', //                                                   12
        '', //                                                      13
        '```ts', //                                                 14
        "await hooks.raw('user.logged_in', {});", //                15: the same without a prelude
        '```', //                                                   16
        '', //                                                      17
        '<!-- snippet: typecheck-olny: a typo -->', //              18
        '```ts', //                                                 19
        'const x: number = 1;', //                                  20
        '```', //                                                   21
        '', //                                                      22
        '```js', //                                                 23
        "process.exit(3);", //                                      24
        '```', //                                                   25
        '', //                                                      26
        '<!-- snippet: sigterm-after=ready -->', //                 27
        '```ts', //                                                 28
        "console.log('started');", //                               29
        '```', //                                                   30
        '',
      ].join('\n'),
    );
  });

  afterAll(() => rmSync(dir, { recursive: true, force: true }));

  it('names the file, the line and the tsc error of a block that does not compile, and refuses an unknown marker', () => {
    const extracted = extractSnippets([doc]);
    expect(extracted.problems.map(formatProblem)).toEqual([`${doc}:18: unknown snippet marker "<!-- snippet: typecheck-olny: a typo -->": use prelude=NAME, typecheck-only: REASON or skip: REASON`]);
    expect(extracted.snippets.map((snippet) => [snippet.line, snippet.mode.kind])).toEqual([
      [4, 'run'],
      [11, 'prelude'],
      [15, 'run'],
      [24, 'run'],
      [29, 'run'],
    ]);
    const scratch = writeWorkspace(extracted.snippets);
    try {
      const found = sortProblems(typecheck(scratch)).map(formatProblem);
      expect(found).toEqual([
        `${doc}:5: TS2322: Type 'string' is not assignable to type 'number'. (column 7)`,
        `${doc}:15: TS2304: Cannot find name 'hooks'. (column 7)`,
      ]);
    } finally {
      scratch.cleanup();
    }
  }, 300_000);

  it('fails a program that exits with an error, and a server that never says it is ready for its SIGTERM', async () => {
    const extracted = extractSnippets([doc]).snippets;
    const failing = extracted.find((snippet) => snippet.line === 24)!;
    const neverReady = extracted.find((snippet) => snippet.line === 29)!;
    const scratch = writeWorkspace([failing, neverReady]);
    const cwd = mkdtempSync(join(tmpdir(), 'resthooks-snippet-run-'));
    try {
      const exited = await runSnippet(scratch, failing, { cwd, env: {}, timeoutMs: 60_000 });
      expect(runFailure(failing, exited)).toMatch(/^exited 3:/);
      const started = await runSnippet(scratch, neverReady, { cwd, env: {}, timeoutMs: 60_000 });
      expect(started.code).toBe(0);
      expect(runFailure(neverReady, started)).toMatch(/^never printed "ready", so it was never sent SIGTERM/);
    } finally {
      scratch.cleanup();
      rmSync(cwd, { recursive: true, force: true });
    }
  }, 180_000);
});
