/**
 * The admin page in a real browser (Debian's Chromium through playwright-core), with JavaScript
 * turned off to prove the page needs none: create a subscription through the form, find it in the
 * list, send a test to a real receiver, see it delivered, disable it, delete it.
 */
import { createServer, type Server } from 'node:http';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { chromium, type Browser, type Page } from 'playwright-core';
import { afterAll, beforeAll, expect, test } from 'vitest';
import { toNodeHandler } from '../../src/adapters/http/node-adapter.js';
import { closeServer, listen, startReceiver, type Receiver } from '../support/receiver.js';
import { ensureDebianPackages } from '../support/system.js';
import { ADMIN_KEY, adminHarness, type AdminHarness } from './admin-support.js';

const CHROMIUM = '/usr/bin/chromium';
/** The one browser global used in `evaluate` (the project's `lib` has no DOM). */
type BrowserWindow = { getComputedStyle(element: unknown): { backgroundColor: string } };
// shared/SERVICES.md: no sandbox as root, and no background traffic on this closed network.
const CHROMIUM_ARGS = ['--no-sandbox', '--disable-gpu', '--disable-quic', '--no-first-run', '--disable-background-networking', '--disable-component-update', '--disable-sync'];

let admin: AdminHarness;
let receiver: Receiver;
let server: Server;
let browser: Browser;
let url: string;
/** Every response the server sent, as `status path`: what the browser asked for, whatever it reports. */
const served: string[] = [];

beforeAll(async () => {
  // A fresh machine has no browser: install Debian's (SERVICES.md). Any failure fails the suite loudly.
  await ensureDebianPackages(['chromium']);
  browser = await chromium.launch({ executablePath: CHROMIUM, headless: true, args: CHROMIUM_ARGS });
  admin = await adminHarness({ title: 'Bookstore hooks' });
  receiver = await startReceiver();
  const handle = toNodeHandler(admin.host);
  server = createServer((request, response) => {
    response.on('finish', () => served.push(`${response.statusCode} ${request.url}`));
    handle(request, response);
  });
  url = await listen(server);
}, 660_000);

afterAll(async () => {
  await browser?.close();
  if (server) await closeServer(server);
  await receiver?.close();
  await admin?.close();
});

/** Reloads until `check` passes (the page has no script to refresh itself). */
async function reloadUntil(page: Page, check: () => Promise<boolean>, timeoutMs = 10_000): Promise<void> {
  const deadline = Date.now() + timeoutMs;
  while (!(await check())) {
    if (Date.now() > deadline) throw new Error(`still not there after ${timeoutMs} ms: ${page.url()}`);
    await new Promise((resolve) => setTimeout(resolve, 100));
    await page.reload();
  }
}

test('create, list, open, send test, see it delivered, disable, delete — in Chromium, without JavaScript', async () => {
  const context = await browser.newContext({ javaScriptEnabled: false, httpCredentials: { username: 'admin', password: ADMIN_KEY }, viewport: { width: 1280, height: 900 } });
  const page = await context.newPage();
  const problems: string[] = [];
  page.on('console', (message) => message.type() === 'error' && problems.push(`${message.text()} (${message.location().url})`)); // e.g. a CSP violation
  page.on('pageerror', (error) => problems.push(error.message));

  // A stranger with the wrong password gets the 401 page, not the list.
  const stranger = await browser.newContext({ httpCredentials: { username: 'admin', password: 'guess' } });
  const strangerPage = await stranger.newPage();
  expect((await strangerPage.goto(`${url}/admin`))?.status()).toBe(401);
  expect(await strangerPage.locator('h1').textContent()).toBe('Sign in required');
  await stranger.close();

  // Create through the form: the event is chosen from the declared events.
  expect((await page.goto(`${url}/admin`))?.status()).toBe(200);
  // The inline stylesheet applies: its hash in the CSP matches (a blocked one would leave the page unstyled).
  expect(await page.locator('body').evaluate((body) => (globalThis as unknown as BrowserWindow).getComputedStyle(body).backgroundColor)).toBe('rgb(246, 247, 249)');
  await page.getByRole('link', { name: 'New subscription' }).first().click();
  await expect.poll(() => page.locator('#event option').allTextContents()).toEqual(['Choose an event…', 'book.added — Book.created', 'book.changed — Book.updated+', 'book.read — Book.read', 'user.logged_in — raw']);
  await page.fill('#owner', 'alice');
  await page.selectOption('#event', 'book.added');
  const target = `${receiver.url}/browser`;
  await page.fill('#target', target);
  await page.getByRole('button', { name: 'Create subscription' }).click();
  await page.waitForURL(/\/admin\/subscriptions\/sub_[^/?]+\?done=created$/);
  expect(await page.getByRole('status').textContent()).toBe('Subscription created.');
  const id = /subscriptions\/(sub_[^/?]+)/.exec(page.url())![1]!;
  expect(await admin.hooks.subscriptions.get(id)).toMatchObject({ owner: 'alice', event: 'book.added', target, active: true });

  // Listed with every column; open it from the list.
  await page.getByRole('link', { name: 'Subscriptions' }).first().click();
  const row = page.locator('tbody tr', { has: page.locator(`a[href="/admin/subscriptions/${id}"]`) });
  expect(await row.locator('td').allTextContents()).toEqual([id, 'alice', 'book.added', target, 'active', expect.stringMatching(/^\d{4}-\d\d-\d\d \d\d:\d\d:\d\d UTC$/)]);
  await row.getByRole('link', { name: id }).click();
  await page.waitForURL(`${url}/admin/subscriptions/${id}`);

  // The secret is masked until its <details> is opened.
  const secret = (await admin.hooks.subscriptions.get(id))!.secret;
  expect(await page.getByText(secret).isVisible()).toBe(false);
  await page.locator('summary', { hasText: 'reveal' }).click();
  expect(await page.getByText(secret).isVisible()).toBe(true);

  // Send test: the receiver gets a hook.test, and a reload shows the delivery as delivered.
  await page.getByRole('button', { name: 'Send test' }).click();
  await page.waitForURL(`${url}/admin/subscriptions/${id}?done=tested`);
  const [received] = await receiver.waitFor(1);
  expect(received!.json.hook).toEqual({ id, event: 'hook.test', target });
  const delivered = page.locator('.delivery[data-status="delivered"]', { hasText: 'hook.test' });
  await reloadUntil(page, async () => (await delivered.count()) === 1);
  expect(await delivered.locator('tbody tr td').nth(2).textContent()).toBe('200');
  const shot = join(tmpdir(), `resthooks-admin-${process.pid}.png`);
  await page.screenshot({ path: shot, fullPage: true });
  console.log(`admin page screenshot: ${shot}`);

  // Disable it through the edit form.
  await page.selectOption('#active', 'false');
  await page.getByRole('button', { name: 'Save changes' }).click();
  await page.waitForURL(`${url}/admin/subscriptions/${id}?done=updated`);
  expect(await page.locator('h1 .badge').textContent()).toBe('disabled');
  expect((await admin.hooks.subscriptions.get(id))!.active).toBe(false);

  // Delete it through the confirm step.
  await page.getByRole('link', { name: 'Delete…' }).click();
  await page.waitForURL(`${url}/admin/subscriptions/${id}/delete`);
  expect(await admin.hooks.subscriptions.get(id)).toBeDefined();
  await page.getByRole('button', { name: 'Delete subscription' }).click();
  await page.waitForURL(`${url}/admin?done=deleted`);
  expect(await page.getByRole('status').textContent()).toContain('Subscription deleted');
  expect(await page.locator(`a[href="/admin/subscriptions/${id}"]`).count()).toBe(0);
  expect(await admin.hooks.subscriptions.get(id)).toBeUndefined();

  expect(problems).toEqual([]);
  // Every request the browser made stayed under the mount (no /favicon.ico probe, for one) and found its page.
  expect(served.filter((line) => !/^(200|303|401) \/admin/.test(line))).toEqual([]);
  await context.close();
}, 60_000);
