/**
 * The signature verifiers in docs/delivery.md ("Verifying a signature"), run as written: each fenced
 * block under a `<!-- verifier: name -->` marker is read from the doc, saved to a scratch directory
 * and run with node, python3 (Debian's) or built with go (Debian's golang-go, offline, standard library only)
 * against real deliveries that resthooks signed and sent to a receiver on 127.0.0.1. The functions are
 * called by a small harness per language; the two receivers are started as servers and get POSTs.
 */
import { execFile, spawn, type ChildProcess } from 'node:child_process';
import { mkdirSync, mkdtempSync, readFileSync, rmSync, symlinkSync, writeFileSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { fileURLToPath } from 'node:url';
import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import { generateSecret, signatureHeaders } from '../src/index.js';
import { eventually, testHooks, type TestHooks } from './support/hooks.js';
import { startReceiver, type Receiver } from './support/receiver.js';
import { ensureDebianPackages, freePort } from './support/system.js';

const ROOT = fileURLToPath(new URL('..', import.meta.url));
const DOC = join(ROOT, 'docs', 'delivery.md');
const SNIPPETS = ['node-standardwebhooks', 'node-crypto', 'python-hmac', 'python-receiver', 'go-hmac'] as const;
type SnippetName = (typeof SNIPPETS)[number];

/** The code under each `<!-- verifier: name -->` marker in the "Verifying a signature" section. */
function snippetsFromDoc(): { snippets: Map<string, string>; fences: number } {
  const doc = readFileSync(DOC, 'utf8');
  const start = doc.indexOf('## Verifying a signature');
  const end = doc.indexOf('\n## ', start + 1);
  expect(start).toBeGreaterThan(-1);
  const section = doc.slice(start, end === -1 ? undefined : end);
  const snippets = new Map<string, string>();
  for (const [, name, code] of section.matchAll(/<!-- verifier: ([\w-]+) -->\n```\w+\n([\s\S]*?)\n```\n/g)) {
    expect(snippets.has(name!), `two snippets named ${name}`).toBe(false);
    snippets.set(name!, `${code}\n`);
  }
  return { snippets, fences: section.match(/^```\w+$/gm)?.length ?? 0 };
}

/** One message for a verifier: headers and body as received, the secret it verifies with, and the verdict due. */
interface Case {
  readonly name: string;
  readonly secret: string;
  readonly headers: Record<string, string>;
  readonly body: string;
  readonly valid: boolean;
}

interface Run {
  readonly code: number;
  readonly stdout: string;
  readonly stderr: string;
}

function run(command: string, args: readonly string[], options: { cwd: string; env?: NodeJS.ProcessEnv; timeoutMs?: number }): Promise<Run> {
  return new Promise((resolve) => {
    execFile(command, args, { cwd: options.cwd, env: { ...process.env, ...options.env }, timeout: options.timeoutMs ?? 120_000 }, (error, stdout, stderr) =>
      resolve({ code: error ? (typeof error.code === 'number' ? error.code : 1) : 0, stdout, stderr }),
    );
  });
}

/** A harness's output: one `name<TAB>ok` or `name<TAB>refused: reason` line per case. */
function verdicts(result: Run): Map<string, string> {
  expect(result.code, `${result.stdout}\n${result.stderr}`).toBe(0);
  return new Map(result.stdout.trim().split('\n').map((line) => line.split('\t') as [string, string]));
}

function expectVerdicts(found: Map<string, string>, cases: readonly Case[]): void {
  for (const c of cases) {
    const verdict = found.get(c.name);
    expect(verdict, `case ${c.name}: no verdict in ${JSON.stringify([...found])}`).toBeDefined();
    if (c.valid) expect(verdict, c.name).toBe('ok');
    else expect(verdict, c.name).toMatch(/^refused: \S/);
  }
}

const NODE_HARNESS = `import { readFileSync } from 'node:fs';
import { verifyWebhook } from './webhooks.mjs';

for (const c of JSON.parse(readFileSync(process.argv[2], 'utf8'))) {
  try {
    const payload = verifyWebhook(c.secret, c.headers, Buffer.from(c.body, 'utf8'));
    console.log(\`\${c.name}\\t\${payload && payload.hook ? 'ok' : 'refused: no payload'}\`);
  } catch (error) {
    console.log(\`\${c.name}\\trefused: \${error.message}\`);
  }
}
`;

const PYTHON_HARNESS = `import json
import sys

from webhooks import verify_webhook

for c in json.load(open(sys.argv[1], encoding="utf-8")):
    try:
        payload = verify_webhook(c["secret"], {k.lower(): v for k, v in c["headers"].items()}, c["body"].encode("utf-8"))
        print(c["name"] + "\\t" + ("ok" if "hook" in payload else "refused: no payload"))
    except ValueError as error:
        print(c["name"] + "\\trefused: " + str(error))
`;

const GO_HARNESS = `package main

import (
	"encoding/json"
	"fmt"
	"net/http"
	"os"
	"time"

	"verifiers/webhooks"
)

type testCase struct {
	Name    string            \`json:"name"\`
	Secret  string            \`json:"secret"\`
	Headers map[string]string \`json:"headers"\`
	Body    string            \`json:"body"\`
}

func main() {
	data, err := os.ReadFile(os.Args[1])
	if err != nil {
		panic(err)
	}
	var cases []testCase
	if err := json.Unmarshal(data, &cases); err != nil {
		panic(err)
	}
	for _, c := range cases {
		header := http.Header{}
		for name, value := range c.Headers {
			header.Set(name, value)
		}
		if err := webhooks.Verify(c.Secret, header, []byte(c.Body), 5*time.Minute); err != nil {
			fmt.Printf("%s\\trefused: %s\\n", c.Name, err)
		} else {
			fmt.Printf("%s\\tok\\n", c.Name)
		}
	}
}
`;

const scratch = mkdtempSync(join(tmpdir(), 'resthooks-verifiers-'));
const servers: ChildProcess[] = [];
let test: TestHooks<'book.added'>;
let capture: Receiver;
let subscriptionId: string;
let secret: string;
let rotatedSecret: string;
let cases: Case[];
let casesFile: string;
let snippets: Map<string, string>;
let goBuild: Run;

afterAll(async () => {
  for (const server of servers) if (server.exitCode === null && server.signalCode === null) server.kill('SIGKILL');
  await test?.close();
  await capture?.close();
  rmSync(scratch, { recursive: true, force: true });
});

beforeAll(async () => {
  const found = snippetsFromDoc();
  snippets = found.snippets;
  await ensureDebianPackages(['python3', 'golang-go']);
  // Built before the deliveries are made: their timestamps must still be fresh when verified, however
  // slowly a busy machine compiles.
  const goDir = workspace('go-hmac', { 'go.mod': 'module verifiers\n\ngo 1.18\n', 'webhooks/webhooks.go': found.snippets.get('go-hmac') ?? '', 'main.go': GO_HARNESS });
  const goEnv = {
    GOCACHE: join(scratch, 'go-cache'),
    GOPATH: join(scratch, 'go-path'),
    GOPROXY: 'off',
    GOFLAGS: '-mod=mod',
    GOTOOLCHAIN: 'local',
    GOTELEMETRY: 'off',
    CGO_ENABLED: '0',
  };
  goBuild = await run('/usr/bin/go', ['build', '-o', 'verifier', '.'], { cwd: goDir, env: goEnv, timeoutMs: 5 * 60_000 });

  // Real deliveries: one signed with the subscription's secret, one during a rotation (both secrets).
  capture = await startReceiver();
  test = await testHooks({ events: { 'book.added': 'Book.created' } });
  const subscription = await test.hooks.subscriptions.create({ owner: 'alice', event: 'book.added', target: capture.url });
  subscriptionId = subscription.id;
  secret = subscription.secret;
  // Not ASCII, so a verifier that re-encodes the body shows.
  await test.hooks.model('Book', 'created', { id: 1, title: 'Les Misérables — ☃ 𝄞', ownerId: 'alice' });
  const [first] = await capture.waitFor(1);
  rotatedSecret = (await test.hooks.subscriptions.rotateSecret(subscription.id)).secret;
  await test.hooks.model('Book', 'created', { id: 2, title: 'Unfinished Tales', ownerId: 'alice' });
  const [, rotated] = await capture.waitFor(2);
  const delivered = (request: typeof first) => ({
    headers: Object.fromEntries(['webhook-id', 'webhook-timestamp', 'webhook-signature', 'content-type'].map((name) => [name, String(request!.headers[name])])),
    body: request!.body,
  });
  const one = delivered(first);
  const two = delivered(rotated);
  expect(two.headers['webhook-signature']!.split(' ')).toHaveLength(2);
  const id = one.headers['webhook-id']!;
  const timestamp = Number(one.headers['webhook-timestamp']);
  const resigned = (at: number, secrets: string[]) => ({ ...one.headers, ...signatureHeaders(id, at, one.body, secrets) });
  cases = [
    { name: 'valid', secret, ...one, valid: true },
    { name: 'rotation-old-secret', secret, ...two, valid: true },
    { name: 'rotation-new-secret', secret: rotatedSecret, ...two, valid: true },
    { name: 'changed-body', secret, headers: one.headers, body: one.body.replace('Misérables', 'Miserables'), valid: false },
    { name: 'other-webhook-id', secret, headers: { ...one.headers, 'webhook-id': `${id.slice(0, -1)}${id.endsWith('x') ? 'y' : 'x'}` }, body: one.body, valid: false },
    { name: 'wrong-secret', secret, headers: resigned(timestamp, [generateSecret()]), body: one.body, valid: false },
    { name: 'timestamp-10-minutes-old', secret, headers: resigned(timestamp - 600, [secret]), body: one.body, valid: false },
    { name: 'timestamp-10-minutes-ahead', secret, headers: resigned(timestamp + 600, [secret]), body: one.body, valid: false },
  ];
  casesFile = join(scratch, 'cases.json');
  writeFileSync(casesFile, JSON.stringify(cases));
}, 15 * 60_000); // a fresh machine installs python3 and golang-go first

/** A scratch directory holding the named snippets (as files) and a harness. */
function workspace(name: string, files: Record<string, string>): string {
  const dir = join(scratch, name);
  mkdirSync(dir, { recursive: true });
  for (const [file, text] of Object.entries(files)) {
    mkdirSync(join(dir, file, '..'), { recursive: true });
    writeFileSync(join(dir, file), text);
  }
  return dir;
}

const snippet = (name: SnippetName) => {
  const code = snippets.get(name);
  if (code === undefined) throw new Error(`docs/delivery.md has no <!-- verifier: ${name} --> block`);
  return code;
};

/** Starts a receiver snippet on a free port and resolves once it answers. */
async function startServer(command: string, args: readonly string[], cwd: string, env: NodeJS.ProcessEnv): Promise<{ url: string; output: () => string }> {
  const port = await freePort();
  const child = spawn(command, args, { cwd, env: { ...process.env, ...env, PORT: String(port) }, stdio: ['ignore', 'pipe', 'pipe'] });
  servers.push(child);
  let output = '';
  child.stdout!.on('data', (chunk: Buffer) => (output += chunk.toString()));
  child.stderr!.on('data', (chunk: Buffer) => (output += chunk.toString()));
  const url = `http://127.0.0.1:${port}/hooks`;
  await eventually(async () => {
    if (child.exitCode !== null) throw new Error(`${args.join(' ')} exited ${child.exitCode}: ${output}`);
    await (await fetch(url)).arrayBuffer();
  }, 30_000);
  return { url, output: () => output };
}

/** POSTs every case that uses the subscription's first secret (a server knows one secret) and checks 204/400. */
async function expectServerVerdicts(url: string): Promise<void> {
  const served = cases.filter((c) => c.secret === secret);
  expect(served.length).toBe(cases.length - 1);
  for (const c of served) {
    const response = await fetch(url, { method: 'POST', headers: c.headers, body: c.body });
    await response.arrayBuffer();
    expect(response.status, c.name).toBe(c.valid ? 204 : 400);
  }
}

/** Points the subscription at `url`, triggers an event, and waits until resthooks records it delivered. */
async function expectDeliveredTo(url: string): Promise<void> {
  await test.hooks.subscriptions.update(subscriptionId, { target: url });
  const before = new Set((await test.hooks.deliveries.list(subscriptionId)).map((d) => d.id));
  await test.hooks.model('Book', 'created', { id: 3, title: 'The Children of Húrin', ownerId: 'alice' });
  await eventually(async () => {
    const fresh = (await test.hooks.deliveries.list(subscriptionId)).filter((d) => !before.has(d.id));
    expect(fresh.map((d) => [d.status, d.lastStatusCode])).toEqual([['delivered', 204]]);
  }, 15_000);
}

describe('docs/delivery.md signature verifiers, run as written', () => {
  it('marks every code block of the section, each once', () => {
    const found = snippetsFromDoc();
    expect([...found.snippets.keys()].sort()).toEqual([...SNIPPETS].sort());
    expect(found.fences).toBe(SNIPPETS.length);
  });

  it('Node, node:crypto: accepts real deliveries (both secrets in a rotation), refuses every tampered one', async () => {
    const dir = workspace('node-crypto', { 'webhooks.mjs': snippet('node-crypto'), 'harness.mjs': NODE_HARNESS });
    expectVerdicts(verdicts(await run(process.execPath, ['harness.mjs', casesFile], { cwd: dir })), cases);
  });

  it('Python, hmac: the same, with python3', async () => {
    const dir = workspace('python-hmac', { 'webhooks.py': snippet('python-hmac'), 'harness.py': PYTHON_HARNESS });
    expectVerdicts(verdicts(await run('/usr/bin/python3', ['harness.py', casesFile], { cwd: dir, env: { PYTHONDONTWRITEBYTECODE: '1' } })), cases);
  });

  it('Go, crypto/hmac: the same, built with go build (offline, standard library only)', async () => {
    expect(goBuild.code, `${goBuild.stdout}\n${goBuild.stderr}`).toBe(0);
    expectVerdicts(verdicts(await run(join(scratch, 'go-hmac', 'verifier'), [casesFile], { cwd: join(scratch, 'go-hmac') })), cases);
  });

  it('Node, standardwebhooks + express: the receiver answers 204 to a real delivery and 400 to every tampered one', async () => {
    const dir = workspace('node-standardwebhooks', { 'receiver.mjs': snippet('node-standardwebhooks') });
    // Its imports (express, standardwebhooks) resolve as in an app with them installed.
    symlinkSync(join(ROOT, 'node_modules'), join(dir, 'node_modules'), 'dir');
    const server = await startServer(process.execPath, ['receiver.mjs'], dir, { HOOK_SECRET: secret });
    await expectServerVerdicts(server.url);
    await expectDeliveredTo(server.url);
  }, 60_000);

  it('Python, http.server receiver: the same, with python3', async () => {
    const dir = workspace('python-receiver', { 'webhooks.py': snippet('python-hmac'), 'receiver.py': snippet('python-receiver') });
    const server = await startServer('/usr/bin/python3', ['receiver.py'], dir, { HOOK_SECRET: secret, PYTHONDONTWRITEBYTECODE: '1' });
    await expectServerVerdicts(server.url);
    await expectDeliveredTo(server.url);
  }, 60_000);
});
