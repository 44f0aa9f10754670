/**
 * What each ORM adapter adds to a single-row insert on SQLite (a file, WAL, one transaction per insert), as a
 * ratio against the same insert without resthooks, measured in the same run: TypeORM, Prisma (in
 * `$transaction` and standalone, each on its driver adapter as given and wrapped by `resthooksAdapter`), Drizzle,
 * Kysely (with and without its `sqlite` option), MikroORM, Sequelize, and the raw `{ tx }` path on better-sqlite3
 * (async, BEGIN/COMMIT by hand, and `modelSync` in `db.transaction()`; the async one also with an executor that
 * prepares its statement on every call), each as the docs/orms.md and docs/delivery.md recipes write it. The
 * store is in the app's file ('transaction' mode: one more row written per insert, in the same transaction),
 * except for Sequelize, whose driver (sqlite3) must not share a file with the store's (better-sqlite3): the
 * store has a file of its own there ('after-commit' mode: the row is appended after each COMMIT).
 *
 * Each case runs in a child process of its own, on fresh files, with only its ORM loaded
 * (bench/orm-insert-case.ts): the ratio measures the adapter, not what the other ORMs leave in a shared process.
 * Rounds are interleaved: each round runs every case, one child at a time in a rotating order, and within a
 * case the plain and the hooked insert alternate which goes first; each round lasts about the same time for
 * every case. The ratio is the median over rounds of the round's hooked / plain time (drift hits both sides alike).
 * Run alone: npx tsx bench/orm-insert.ts [rounds] [case,case…]
 * @module
 */
import { execFile, fork, type ChildProcess } from 'node:child_process';
import { mkdirSync, mkdtempSync, rmSync, symlinkSync, writeFileSync } from 'node:fs';
import { createRequire } from 'node:module';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { fileURLToPath } from 'node:url';
import { promisify } from 'node:util';
import { ORM_CASES, PRISMA_FLOOR_CASES, type OrmCase, type SideTime, type ToChild, type ToParent } from './orm-insert-case.js';
import { median } from './stats.js';

/** The raw better-sqlite3 rows: the `{ tx }` recipe an app writes by hand, no adapter; measured beside them, judged by no adapter target. */
export const isRawRecipe = (cost: Pick<AdapterCost, 'adapter'>): boolean => cost.adapter.startsWith('raw ');
/** The rows the ≤ 1.5× target judges: each adapter in the setup docs/orms.md gives it. */
export const isJudged = (cost: Pick<AdapterCost, 'adapter' | 'otherSetup'>): boolean => !isRawRecipe(cost) && cost.otherSetup === undefined;

export interface AdapterCost {
  readonly adapter: string;
  /** How the insert is written, both sides. */
  readonly insert: string;
  /** Where the outbox row goes: in the insert's transaction, or appended after its COMMIT. */
  readonly mode: 'transaction' | 'after-commit';
  /** Set when this is not the adapter's documented setup: what that setup does instead (not judged by the target). */
  readonly otherSetup?: string;
  readonly inserts: number;
  readonly plainUs: number;
  readonly hookedUs: number;
  /** Median over rounds of hooked / plain. */
  readonly ratio: number;
  /** The same in CPU time of this process, which other processes on a shared machine disturb less. */
  readonly plainCpuUs: number;
  readonly hookedCpuUs: number;
  readonly cpuRatio: number;
}

const HERE = fileURLToPath(new URL('.', import.meta.url));

/** `prisma generate` offline (no schema engine needed) into `dir`, beside a link to the project's node_modules: the client's module. */
export async function prismaClient(dir: string): Promise<string> {
  mkdirSync(dir);
  symlinkSync(join(HERE, '..', 'node_modules'), join(dir, 'node_modules'), 'dir');
  const output = join(dir, 'generated');
  mkdirSync(output);
  const schema = join(dir, 'schema.prisma');
  writeFileSync(
    schema,
    `generator client {\n  provider = "prisma-client"\n  output = "${output}"\n  moduleFormat = "esm"\n}\n\ndatasource db {\n  provider = "sqlite"\n}\n\n` +
      `model Book {\n  id      Int    @id @default(autoincrement())\n  title   String\n  ownerId String\n  @@map("books")\n}\n`,
  );
  const cli = createRequire(import.meta.url).resolve('prisma/build/index.js');
  await promisify(execFile)(process.execPath, [cli, 'generate', '--schema', schema], {
    cwd: dir,
    env: { ...process.env, PRISMA_SCHEMA_ENGINE_BINARY: '/bin/false', PRISMA_HIDE_UPDATE_MESSAGE: '1', CHECKPOINT_DISABLE: '1' },
    timeout: 120_000,
  });
  return join(output, 'client.ts');
}

/** A case's child process, driven one order at a time; `root`: the checkout whose bench/orm-insert-case.ts it runs. */
export class CaseChild {
  readonly #child: ChildProcess;
  #waiting: { resolve(message: ToParent): void; reject(error: Error): void } | undefined;
  #exited: Error | undefined;

  constructor(name: OrmCase, dir: string, prismaClientModule: string | undefined, root = join(HERE, '..'), env: NodeJS.ProcessEnv = process.env) {
    this.#child = fork(join(root, 'bench', 'orm-insert-case.ts'), [name, dir, ...(prismaClientModule ? [prismaClientModule] : [])], {
      cwd: root,
      env,
      execArgv: ['--import', 'tsx'],
      stdio: ['ignore', 'inherit', 'inherit', 'ipc'],
    });
    this.#child.on('message', (message: ToParent) => {
      const waiting = this.#waiting;
      this.#waiting = undefined;
      waiting?.resolve(message);
    });
    this.#child.on('exit', (code, signal) => {
      this.#exited = new Error(`bench case ${name} exited (${signal ?? code}) before it answered`);
      this.#waiting?.reject(this.#exited);
      this.#waiting = undefined;
    });
  }

  /** The child's next message, after sending `order` if given. */
  next<T extends ToParent['type']>(type: T, order?: ToChild): Promise<Extract<ToParent, { type: T }>> {
    return new Promise<ToParent>((resolve, reject) => {
      if (this.#exited) return reject(this.#exited);
      this.#waiting = { resolve, reject };
      if (order) this.#child.send(order);
    }).then((message) => {
      if (message.type !== type) throw new Error(`bench case: expected ${type}, got ${message.type}`);
      return message as Extract<ToParent, { type: T }>;
    });
  }

  kill(): void {
    if (this.#child.exitCode === null) this.#child.kill();
  }
}

/** Measures the cost of every adapter in `cases` (all by default) in interleaved rounds (see the module comment). */
export async function adapterCosts(rounds = 21, log: (line: string) => void = () => undefined, cases: readonly OrmCase[] = ORM_CASES): Promise<AdapterCost[]> {
  const dir = mkdtempSync(join(tmpdir(), 'resthooks-orm-bench-'));
  const children: CaseChild[] = [];
  try {
    const prismaClientModule = cases.some((name) => name.startsWith('prisma')) ? await prismaClient(join(dir, 'prisma')) : undefined;
    // Set up one at a time: the setups would otherwise compete with each other for the two cores.
    const ready: Array<Extract<ToParent, { type: 'ready' }>> = [];
    for (const name of cases) {
      const child = new CaseChild(name, join(dir, name), prismaClientModule);
      children.push(child);
      ready.push(await child.next('ready'));
      log(`  adapters: ${name} ready`);
    }
    const plain: SideTime[][] = cases.map(() => []);
    const hooked: SideTime[][] = cases.map(() => []);
    for (let round = 0; round < rounds; round++) {
      for (let k = 0; k < cases.length; k++) {
        const index = (k + round) % cases.length;
        const times = await children[index]!.next('round', { type: 'round', hookedFirst: round % 2 === 1 });
        plain[index]!.push(times.plain);
        hooked[index]!.push(times.hooked);
      }
      log(`  adapters: round ${round + 1} of ${rounds}`);
    }
    for (const child of children) {
      const { error } = await child.next('finished', { type: 'finish' });
      if (error) throw new Error(`adapters: ${error}`);
    }
    return ready.map((r, index) => {
      const [p, h] = [plain[index]!, hooked[index]!];
      const side = (times: readonly SideTime[], which: 0 | 1) => median(times.map((t) => t[which]));
      const ratio = (which: 0 | 1) => median(h.map((t, round) => t[which] / p[round]![which]));
      return {
        adapter: r.adapter,
        insert: r.insert,
        mode: r.mode,
        ...(r.otherSetup === undefined ? {} : { otherSetup: r.otherSetup }),
        inserts: r.count * rounds,
        plainUs: side(p, 0),
        hookedUs: side(h, 0),
        ratio: ratio(0),
        plainCpuUs: side(p, 1),
        hookedCpuUs: side(h, 1),
        cpuRatio: ratio(1),
      };
    });
  } finally {
    for (const child of children) child.kill();
    rmSync(dir, { recursive: true, force: true });
  }
}

if (process.argv[1] && fileURLToPath(import.meta.url) === process.argv[1]) {
  const only = process.argv[3]?.split(',') as OrmCase[] | undefined;
  const known: readonly OrmCase[] = [...ORM_CASES, ...PRISMA_FLOOR_CASES];
  const unknown = only?.filter((name) => !known.includes(name));
  if (unknown?.length) throw new Error(`unknown case(s) ${unknown.join(', ')}; cases: ${known.join(', ')}`);
  const rows = await adapterCosts(Number(process.argv[2] ?? 21), (line) => console.log(line), only);
  for (const r of rows) {
    console.log(`${r.adapter} (${r.mode}): ${r.plainUs.toFixed(1)} µs plain, ${r.hookedUs.toFixed(1)} µs with resthooks (medians), ratio ${r.ratio.toFixed(2)}× (CPU ${r.cpuRatio.toFixed(2)}×)`);
  }
}
