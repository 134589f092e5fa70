// The in-memory reference adapter: the behaviour the contract suite holds every other adapter to.
import { SignetError } from "@signet/protocol";
import { assertKeysBelongTo, eventLimit } from "./input-checks.js";
import type {
  AgentKeyPatch,
  AgentKeyRecord,
  AgentRecord,
  ApiKeyRecord,
  EventQuery,
  EventRecord,
  StoreContext,
  Stores,
} from "./types.js";

/**
 * A deep copy without top-level `undefined` fields, so what a caller gets back looks like what a SQL
 * adapter returns (absent, not `undefined`) and shares nothing with what the store holds.
 */
function snapshot<T extends object>(value: T): T {
  const copy = structuredClone(value);
  for (const [field, fieldValue] of Object.entries(copy)) {
    if (fieldValue === undefined) delete (copy as Record<string, unknown>)[field];
  }
  return copy;
}

/**
 * Opens a fresh, empty set of stores that lives as long as the process. For tests, demos and
 * single-process development; nothing survives a restart.
 *
 * Example: `const stores = createMemoryStores(); await stores.agents.getAgent("alice");`.
 */
export function createMemoryStores(): Stores {
  const agents = new Map<string, AgentRecord>();
  // Map iteration follows insertion order, which breaks `createdAt` ties the way SQL's rowid does.
  const agentKeys = new Map<string, AgentKeyRecord>();
  const apiKeys = new Map<string, ApiKeyRecord>();
  const events: EventRecord[] = [];
  const eventIds = new Set<string>();
  let lastSeq = 0;
  let open = true;

  // Runs `work` synchronously, so each call is atomic, and turns a throw into a rejection.
  const run = <T>(work: () => T): Promise<T> =>
    new Promise<T>((resolve) => {
      if (!open) throw new Error("The store is closed");
      resolve(work());
    });

  const refuseTakenKid = (kid: string): void => {
    if (agentKeys.has(kid)) throw new SignetError("INVALID_REQUEST", `Key ${kid} is already registered`);
  };

  const byCreation = <T extends { readonly createdAt: number }>(records: Iterable<T>): T[] =>
    [...records].sort((a, b) => a.createdAt - b.createdAt).map(snapshot);

  return {
    agents: {
      putAgent: (agent: AgentRecord, keys: readonly AgentKeyRecord[], _ctx: StoreContext) =>
        run(() => {
          // Check everything before changing anything: a refused call leaves no trace.
          assertKeysBelongTo(agent, keys);
          for (const key of keys) refuseTakenKid(key.kid);
          agents.set(agent.id, snapshot(agent));
          for (const key of keys) agentKeys.set(key.kid, snapshot(key));
        }),
      getAgent: (id: string) =>
        run(() => {
          const agent = agents.get(id);
          return agent && snapshot(agent);
        }),
      listAgents: () =>
        run(() =>
          [...agents.values()].sort((a, b) => (a.id < b.id ? -1 : a.id > b.id ? 1 : 0)).map(snapshot),
        ),
      addKey: (key: AgentKeyRecord, _ctx: StoreContext) =>
        run(() => {
          if (!agents.has(key.agentId)) {
            throw new SignetError("INVALID_REQUEST", `No agent ${key.agentId} to add key ${key.kid} to`);
          }
          refuseTakenKid(key.kid);
          agentKeys.set(key.kid, snapshot(key));
        }),
      updateKey: (kid: string, patch: AgentKeyPatch, _ctx: StoreContext) =>
        run(() => {
          const key = agentKeys.get(kid);
          if (key === undefined) return undefined;
          const updated: AgentKeyRecord = {
            ...key,
            ...(patch.notAfter !== undefined && { notAfter: patch.notAfter }),
            ...(patch.revokedAt !== undefined && { revokedAt: patch.revokedAt }),
            ...(patch.revokedReason !== undefined && { revokedReason: patch.revokedReason }),
          };
          agentKeys.set(kid, updated);
          return snapshot(updated);
        }),
      getKey: (kid: string) =>
        run(() => {
          const key = agentKeys.get(kid);
          return key && snapshot(key);
        }),
      listKeys: (agentId?: string) =>
        run(() =>
          byCreation(
            [...agentKeys.values()].filter((key) => agentId === undefined || key.agentId === agentId),
          ),
        ),
    },

    apiKeys: {
      putApiKey: (key: ApiKeyRecord, _ctx: StoreContext) =>
        run(() => {
          if (apiKeys.has(key.id)) {
            throw new SignetError("INVALID_REQUEST", `API key ${key.id} already exists`);
          }
          apiKeys.set(key.id, snapshot(key));
        }),
      getApiKey: (id: string) =>
        run(() => {
          const key = apiKeys.get(id);
          return key && snapshot(key);
        }),
      listApiKeys: () => run(() => byCreation(apiKeys.values())),
      revokeApiKey: (id: string, at: number, _ctx: StoreContext) =>
        run(() => {
          const key = apiKeys.get(id);
          if (key === undefined) return undefined;
          // The first revocation time stands: a later call must not make the key look valid for longer.
          const updated: ApiKeyRecord = key.revokedAt === undefined ? { ...key, revokedAt: at } : key;
          apiKeys.set(id, updated);
          return snapshot(updated);
        }),
    },

    events: {
      appendEvent: (event: EventRecord) =>
        run(() => {
          if (eventIds.has(event.id)) {
            throw new SignetError("INVALID_REQUEST", `Event ${event.id} is already recorded`);
          }
          lastSeq += 1;
          eventIds.add(event.id);
          events.push(snapshot({ ...event, seq: lastSeq }));
          return lastSeq;
        }),
      listEvents: (query: EventQuery = {}) =>
        run(() => {
          const limit = eventLimit(query);
          const afterSeq = query.afterSeq ?? 0;
          // `events` is in seq order already, so filtering keeps it sorted.
          const matching = events.filter(
            (event) => (event.seq ?? 0) > afterSeq && (query.type === undefined || event.type === query.type),
          );
          if (query.newestFirst === true) matching.reverse();
          return matching.slice(0, limit).map(snapshot);
        }),
    },

    ping: () => Promise.resolve(open),
    close: () => {
      open = false;
      return Promise.resolve();
    },
  };
}
