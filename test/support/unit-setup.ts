/**
 * vitest globalSetup for `npm run test:unit`: no PostgreSQL, no Redis, no Chromium, no apt-get. A test
 * file in the unit scope that reaches for a server gets no URL from `inject()` and fails loudly, so
 * the list of files that need servers (vitest.config.ts) cannot go stale without someone noticing.
 */
export default function setup(): void {}
