// The two undici modules src/delivery/undici-core.ts loads, typed as undici's index exports them.
declare module 'undici/lib/dispatcher/agent.js' {
  import type { Agent } from 'undici';
  const AgentClass: typeof Agent;
  export default AgentClass;
}

declare module 'undici/lib/core/connect.js' {
  import type { buildConnector } from 'undici';
  const connectorBuilder: typeof buildConnector;
  export default connectorBuilder;
}
