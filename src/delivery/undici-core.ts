/**
 * undici's `Agent` and `buildConnector`, loaded from their own modules rather than from undici's index,
 * which also loads fetch, WebSocket, EventSource, the cache and the mock agent. A process that delivers
 * webhooks would keep all of that in its heap for nothing: about 3 MB live, and V8 lets the old generation
 * grow to a multiple of what is live before it collects, so several times that at the peak of a busy
 * process (bench/backlog.ts). The sender uses only `dispatch()`, `close()` and `destroy()`, which the
 * Agent defines itself (undici's index adds `request()` and the other helpers to the prototype).
 *
 * These paths are undici 7's file layout, not its documented API: the dependency range stays within
 * major 7, and test/delivery/undici-core.test.ts checks them against the installed version.
 * @module
 */
import type { Agent as UndiciAgent, buildConnector as undiciBuildConnector } from 'undici';
import AgentClass from 'undici/lib/dispatcher/agent.js';
import connectorBuilder from 'undici/lib/core/connect.js';

export const Agent = AgentClass;
export type Agent = UndiciAgent;
export const buildConnector = connectorBuilder;
/** A `connect` function as undici's Agent takes it. */
export type Connector = undiciBuildConnector.connector;
