/**
 * `basicAuthorization()`: the simplest safe `authorize` for the admin page when the app has no
 * operator login of its own: HTTP Basic (RFC 7617) against one long password, compared in constant
 * time. Web-standard (Web Crypto), so it runs wherever the page does.
 * @module
 */
import type { AdminPageOptions } from './admin-page.js';

export interface BasicAuthorizationOptions {
  /** Default `admin`. */
  username?: string;
  /** At least 16 characters; use a random one (e.g. `randomBytes(24).toString('base64url')`). */
  password: string;
  /** Shown by the browser's password prompt. Default `resthooks admin`. */
  realm?: string;
}

const MIN_PASSWORD_LENGTH = 16;

/**
 * `authorize` and `challenge` for `createAdminPage`: browsers prompt for the password, then send it
 * with every request. Serve the page over HTTPS (or loopback only): Basic credentials are not encrypted.
 * @example
 * app.route('/admin', createAdminPage(hooks, { ...basicAuthorization({ password: process.env.ADMIN_PASSWORD! }) }));
 */
export function basicAuthorization(options: BasicAuthorizationOptions): Required<Pick<AdminPageOptions, 'authorize' | 'challenge'>> {
  const username = options.username ?? 'admin';
  if (typeof options.password !== 'string' || options.password.length < MIN_PASSWORD_LENGTH) {
    throw new TypeError(`basicAuthorization: \`password\` must be at least ${MIN_PASSWORD_LENGTH} characters; use a random one, e.g. randomBytes(24).toString('base64url').`);
  }
  if (username.includes(':')) throw new TypeError('basicAuthorization: `username` cannot contain ":" (RFC 7617 §2).');
  const expected = sha256(`${username}:${options.password}`);
  const realm = (options.realm ?? 'resthooks admin').replace(/["\\]/g, '');
  return {
    challenge: `Basic realm="${realm}", charset="UTF-8"`,
    async authorize(request) {
      const given = credentials(request.headers.get('authorization'));
      // Hashing both sides first makes the comparison constant-time whatever the lengths.
      return given !== null && equalBytes(await sha256(given), await expected);
    },
  };
}

/** The decoded `user:password` of a Basic `Authorization` header, or null. */
function credentials(header: string | null): string | null {
  const match = /^Basic\s+([A-Za-z0-9+/]+=*)\s*$/i.exec(header ?? '');
  if (!match) return null;
  try {
    const binary = atob(match[1]!);
    return new TextDecoder('utf-8', { fatal: true }).decode(Uint8Array.from(binary, (c) => c.charCodeAt(0)));
  } catch {
    return null;
  }
}

async function sha256(text: string): Promise<Uint8Array> {
  return new Uint8Array(await crypto.subtle.digest('SHA-256', new TextEncoder().encode(text)));
}

function equalBytes(a: Uint8Array, b: Uint8Array): boolean {
  let difference = a.length ^ b.length;
  for (let i = 0; i < a.length && i < b.length; i++) difference |= a[i]! ^ b[i]!;
  return difference === 0;
}
