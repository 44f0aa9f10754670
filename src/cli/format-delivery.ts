/**
 * How `resthooks listen` prints what it receives. Pure: every input (time, attempt, verification,
 * color) is given, so the output is testable byte for byte.
 * @module
 */
import type { Verification } from './verify-signature.js';

/** `unchecked`: no `--secret` was given, so nothing was verified. */
export type SignatureStatus = Verification | 'unchecked';

export interface ReceivedDelivery {
  readonly receivedAt: Date;
  readonly method: string;
  readonly path: string;
  readonly webhookId: string | undefined;
  /** How many times this process has seen this `webhook-id` (1 = first attempt). */
  readonly attempt: number | undefined;
  readonly body: string;
  readonly signature: SignatureStatus;
  /** The status the listener answers with. */
  readonly status: number;
}

export interface Palette {
  bold(text: string): string;
  dim(text: string): string;
  green(text: string): string;
  red(text: string): string;
  yellow(text: string): string;
  cyan(text: string): string;
}

const ansi = (open: number, close: number) => (text: string) => `\u001b[${open}m${text}\u001b[${close}m`;
export const COLORS: Palette = { bold: ansi(1, 22), dim: ansi(2, 22), green: ansi(32, 39), red: ansi(31, 39), yellow: ansi(33, 39), cyan: ansi(36, 39) };
const identity = (text: string) => text;
export const PLAIN: Palette = { bold: identity, dim: identity, green: identity, red: identity, yellow: identity, cyan: identity };

/**
 * Colors only on a terminal, and never when `NO_COLOR` is set to a non-empty value
 * (https://no-color.org: "when present and not an empty string").
 */
export function paletteFor(isTTY: boolean | undefined, env: Readonly<Record<string, string | undefined>>): Palette {
  return isTTY === true && !env.NO_COLOR ? COLORS : PLAIN;
}

/** The longest body printed in full; a bigger one is cut, with a note saying how much was left out. */
export const MAX_PRINTED_BODY = 64 * 1024;

/** `hook.event` from a resthooks envelope, or undefined for any other body. */
export function eventOf(json: unknown): string | undefined {
  if (typeof json !== 'object' || json === null) return undefined;
  const hook = (json as { hook?: unknown }).hook;
  if (typeof hook !== 'object' || hook === null) return undefined;
  const event = (hook as { event?: unknown }).event;
  return typeof event === 'string' ? event : undefined;
}

/**
 * What a terminal must not receive raw from a request: C0 controls (ESC starts sequences that move
 * the cursor, recolor, set the window title or write the clipboard; CR returns to the line start, so
 * text could overwrite a ✓), DEL, C1 controls (U+009B is CSI on terminals that take 8-bit controls),
 * and the bidirectional formatting characters, which reorder how the rest of a line reads.
 */
const UNSAFE = /[\u0000-\u001f\u007f-\u009f\u061c\u200e\u200f\u202a-\u202e\u2066-\u2069]/g;
const UNSAFE_KEEPING_LINES = /[\u0000-\u0008\u000b-\u001f\u007f-\u009f\u061c\u200e\u200f\u202a-\u202e\u2066-\u2069]/g;

/**
 * Received text is untrusted and goes to a terminal: every unsafe character is shown as a `\u001b`
 * style escape. Newlines and tabs are kept only in bodies (`keepNewlines`), which are printed
 * indented, so a body line can never pass for a headline.
 */
export function printable(text: string, keepNewlines = false): string {
  return text.replace(keepNewlines ? UNSAFE_KEEPING_LINES : UNSAFE, (ch) => `\\u${ch.charCodeAt(0).toString(16).padStart(4, '0')}`);
}

function parseJson(body: string): { json: unknown } | undefined {
  try {
    return { json: JSON.parse(body) as unknown };
  } catch {
    return undefined;
  }
}

function formatSignature(signature: SignatureStatus, c: Palette): string {
  if (signature === 'unchecked') return c.yellow('unsigned check: pass --secret');
  if (signature.ok) return c.green('✓ signature');
  // The reason can quote request headers (an unparsable webhook-timestamp, for one).
  return c.red(`✗ signature: ${printable(signature.reason)}`);
}

function statusColor(status: number, c: Palette): (text: string) => string {
  return status >= 200 && status < 300 ? c.green : status === 410 ? c.yellow : c.red;
}

/** The indented body: pretty JSON, or the raw text with a note when it is not JSON. */
export function formatBody(body: string, c: Palette): string {
  const indent = (text: string) => text.replace(/^/gm, '  ');
  if (body === '') return indent(c.dim('(empty body)'));
  const parsed = parseJson(body);
  const text = printable(parsed ? JSON.stringify(parsed.json, null, 2) : body, true);
  const note = parsed ? '' : c.dim('(not JSON)') + '\n';
  const cut = text.length > MAX_PRINTED_BODY ? '\n' + c.dim(`… (${text.length - MAX_PRINTED_BODY} more characters not shown)`) : '';
  return indent(note + text.slice(0, MAX_PRINTED_BODY) + cut);
}

/**
 * One delivery as a block of lines:
 *
 * ```
 * 2025-01-02T03:04:05.678Z  book.added  attempt 1  ✓ signature  → 200
 *   POST /hooks  webhook-id: dlv_…
 *   { …the JSON body, indented… }
 * ```
 */
export function formatDelivery(delivery: ReceivedDelivery, c: Palette): string {
  const parsed = parseJson(delivery.body);
  const event = parsed ? eventOf(parsed.json) : undefined;
  const attempt =
    delivery.attempt === undefined ? c.dim('attempt ?') : delivery.attempt > 1 ? c.yellow(`attempt ${delivery.attempt} (repeat)`) : `attempt ${delivery.attempt}`;
  const headline = [
    c.dim(delivery.receivedAt.toISOString()),
    event === undefined ? c.dim('(no hook.event)') : c.bold(c.cyan(printable(event))),
    attempt,
    formatSignature(delivery.signature, c),
    statusColor(delivery.status, c)(`→ ${delivery.status}`),
  ].join('  ');
  const meta = c.dim(`  ${printable(delivery.method)} ${printable(delivery.path)}  webhook-id: ${delivery.webhookId === undefined ? '(none)' : printable(delivery.webhookId)}`);
  return `${headline}\n${meta}\n${formatBody(delivery.body, c)}\n`;
}

/** A request that is not a delivery (wrong path or method): one dim line. */
export function formatIgnored(receivedAt: Date, method: string, path: string, status: number, c: Palette): string {
  return c.dim(`${receivedAt.toISOString()}  ${printable(method)} ${printable(path)}  ignored → ${status}`) + '\n';
}
