/**
 * The bench runs resthooks as production does: subscription secrets sealed at rest (AES-GCM), so the
 * figures include opening each secret. A key is made per run unless one is set; child processes
 * (workers, the backlog process) inherit it.
 */
import { randomBytes } from 'node:crypto';

process.env.RESTHOOKS_SECRET_KEYS ||= `bench:${randomBytes(32).toString('base64')}`;
