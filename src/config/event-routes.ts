import type { EventDefinition } from './events-map.js';

/**
 * The (model, action) → event lookup, built once at start-up. The write path calls `route()` on
 * every save, so it is two Map lookups and nothing else.
 */
export class EventRoutes {
  readonly #byModel = new Map<string, Map<string, EventDefinition>>();
  readonly #byName = new Map<string, EventDefinition>();

  constructor(definitions: readonly EventDefinition[]) {
    for (const definition of definitions) {
      this.#byName.set(definition.name, definition);
      if (definition.model === null || definition.action === null) continue;
      let actions = this.#byModel.get(definition.model);
      if (!actions) this.#byModel.set(definition.model, (actions = new Map()));
      actions.set(definition.action, definition);
    }
  }

  route(model: string, action: string): EventDefinition | undefined {
    return this.#byModel.get(model)?.get(action);
  }

  event(name: string): EventDefinition | undefined {
    return this.#byName.get(name);
  }

  /** Every declared event, in declaration order. */
  all(): EventDefinition[] {
    return [...this.#byName.values()];
  }

  /** django-rest-hooks' `get_event_actions_config()` table: `{ Model: { action: [event, allOwners] } }`. */
  table(): Record<string, Record<string, readonly [string, boolean]>> {
    const table: Record<string, Record<string, readonly [string, boolean]>> = {};
    for (const [model, actions] of this.#byModel) {
      table[model] = Object.fromEntries([...actions].map(([action, d]) => [action, [d.name, d.allOwners] as const]));
    }
    return table;
  }
}
