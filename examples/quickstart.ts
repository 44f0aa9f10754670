/**
 * django-rest-hooks' bookstore example, end to end, in one file: declare events, subscribe a local
 * receiver, fire created / updated / custom / deleted / raw events, and watch signed deliveries
 * arrive.
 */
import Database from 'better-sqlite3';
import { mkdirSync } from 'node:fs';
import { createServer } from 'node:http';
import type { AddressInfo } from 'node:net';
import { Webhook } from 'standardwebhooks';
import { createHooks, sqliteStore } from 'resthooks';

class Book {
  constructor(
    public id: number,
    public title: string,
    public pages: number,
    public fiction: boolean,
    public ownerId: string,
  ) {}
}

const EVENTS = {
  'book.added': 'Book.created',
  'book.changed': 'Book.updated+', // '+': every owner's subscribers get it
  'book.removed': 'Book.deleted',
  'book.read': 'Book.read', // a custom action
  'user.logged_in': null, // a raw event
} as const;

mkdirSync('.data', { recursive: true });
const hooks = createHooks({
  events: EVENTS,
  store: sqliteStore(new Database('.data/quickstart.db')),
  allowPrivateTargets: true, // the receiver below is on loopback; production refuses private targets
});

// A receiver, as your users would run one: verify the signature with the subscription's secret.
const secrets = new Map<string, string>();
let remaining = Object.keys(EVENTS).length;
let allArrived!: () => void;
const arrived = new Promise<void>((resolve) => (allArrived = resolve));
const receiver = createServer((req, res) => {
  let body = '';
  req.on('data', (chunk) => (body += chunk));
  req.on('end', () => {
    const payload = JSON.parse(body);
    let check = '✓ signature verified';
    try {
      new Webhook(secrets.get(payload.hook.id)!).verify(body, req.headers as Record<string, string>);
    } catch {
      check = '✗ bad signature';
    }
    console.log(`← ${payload.hook.event.padEnd(15)} ${req.headers['webhook-id']}  ${check}\n    ${JSON.stringify(payload.data)}`);
    res.writeHead(200).end();
    if (--remaining === 0) allArrived();
  });
});
await new Promise<void>((resolve) => receiver.listen(0, '127.0.0.1', resolve));
const target = `http://127.0.0.1:${(receiver.address() as AddressInfo).port}/hooks`;

await hooks.start();
console.log(`resthooks quickstart — receiver at ${target}\n`);
for (const event of Object.keys(EVENTS) as Array<keyof typeof EVENTS>) {
  const subscription = await hooks.subscriptions.create({ owner: 'alice', event, target });
  secrets.set(subscription.id, subscription.secret);
}

const book = new Book(1, 'The Two Towers', 327, true, 'alice');
await hooks.model(Book, 'created', book);
book.title += ': Deluxe Edition';
book.pages = 352;
await hooks.model(Book, 'updated', book);
await hooks.action(book, 'read');
await hooks.model(Book, 'deleted', book);
await hooks.raw('user.logged_in', { username: 'alice', when: new Date() }, { owner: 'alice' });

const timeout = setTimeout(() => console.error('Some deliveries did not arrive within 10 s.'), 10_000);
await Promise.race([arrived, new Promise((resolve) => setTimeout(resolve, 10_000))]);
clearTimeout(timeout);
for (const id of secrets.keys()) await hooks.subscriptions.delete(id);
await hooks.close();
receiver.close();
console.log('\nAll deliveries arrived, signed. The README shows the API, the adapters and the demo.');
