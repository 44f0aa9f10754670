/**
 * The guided tour `npm start` runs: a local receiver subscribes to alice's book events through the
 * REST API, then a book is created, changed, read and deleted, and each signed delivery is printed
 * as it arrives, with its signature checked by the Standard Webhooks reference package.
 */
import { createServer } from 'node:http';
import type { AddressInfo } from 'node:net';
import { Webhook } from 'standardwebhooks';

const TOUR_EVENTS = ['book.added', 'book.changed', 'book.read', 'book.removed'] as const;

export async function runTour(baseUrl: string, aliceKey: string, print: (line: string) => void): Promise<void> {
  const secrets = new Map<string, string>();
  const arrived: string[] = [];
  let wake: () => void = () => {};
  const receiver = createServer((req, res) => {
    let body = '';
    req.on('data', (chunk) => (body += chunk));
    req.on('end', () => {
      res.writeHead(200).end();
      const payload = JSON.parse(body) as { hook: { id: string; event: string }; data: { id?: number; title?: string } };
      let check = '✓ signature verified';
      try {
        new Webhook(secrets.get(payload.hook.id) ?? '').verify(body, req.headers as Record<string, string>);
      } catch {
        check = '✗ signature did not verify';
      }
      print(`  ← ${payload.hook.event.padEnd(13)} ${String(req.headers['webhook-id'])}  ${check}`);
      const { hook: _hook, ...rest } = payload;
      print(`    ${JSON.stringify(rest)}`);
      arrived.push(payload.hook.event);
      wake();
    });
  });
  await new Promise<void>((resolve) => receiver.listen(0, '127.0.0.1', resolve));
  const target = `http://127.0.0.1:${(receiver.address() as AddressInfo).port}/webhooks`;

  const call = async (method: string, path: string, body?: object) => {
    const response = await fetch(baseUrl + path, {
      method,
      headers: { authorization: `Bearer ${aliceKey}`, 'content-type': 'application/json' },
      ...(body ? { body: JSON.stringify(body) } : {}),
    });
    if (!response.ok) throw new Error(`${method} ${path} → ${response.status} ${await response.text()}`);
    return response.status === 204 ? undefined : ((await response.json()) as Record<string, unknown>);
  };
  const until = async (count: number) => {
    const deadline = Date.now() + 10_000;
    while (arrived.length < count && Date.now() < deadline) await new Promise<void>((resolve) => ((wake = resolve), setTimeout(resolve, 200)));
  };

  const created: string[] = [];
  try {
    print(`Tour: a receiver at ${target} subscribes to alice's book events`);
    for (const event of TOUR_EVENTS) {
      const subscription = (await call('POST', '/api/hooks', { event, target }))!;
      secrets.set(String(subscription.id), String(subscription.secret));
      created.push(String(subscription.id));
      print(`  POST /api/hooks {"event":"${event}"} → ${String(subscription.id)}`);
    }
    const steps: Array<[string, () => Promise<unknown>]> = [];
    let bookId = 0;
    steps.push(['POST   /api/books (create "The Two Towers")', async () => (bookId = Number((await call('POST', '/api/books', { title: 'The Two Towers', pages: 327, fiction: true }))!.id))]);
    steps.push(['PATCH  /api/books/:id (a Deluxe Edition)', () => call('PATCH', `/api/books/${bookId}`, { title: 'The Two Towers: Deluxe Edition', pages: 352 })]);
    steps.push(['POST   /api/books/:id/read (custom action)', () => call('POST', `/api/books/${bookId}/read`)]);
    steps.push(['DELETE /api/books/:id', () => call('DELETE', `/api/books/${bookId}`)]);
    for (const [index, [label, step]] of steps.entries()) {
      print(`\n→ ${label}`);
      await step();
      await until(index + 1);
    }
    print(arrived.length === TOUR_EVENTS.length ? '\nTour done: 4 deliveries, all signed.' : `\nTour: only ${arrived.length} of 4 deliveries arrived in time.`);
  } finally {
    for (const id of created) await call('DELETE', `/api/hooks/${id}`).catch(() => undefined);
    receiver.close();
  }
}
