// The in-memory reference adapter: the behaviour the contract suite holds every other adapter to.
import { SignetError } from "@signet/protocol";
import type {
  SessionEventRecord,
  SessionMessageRecord,
  SessionQuery,
  SessionRecord,
  SessionStore,
} from "../sessions/types.js";
import { admitExpiresAt, assertKeysBelongTo, outcomeJson } from "./input-checks.js";
import {
  type NewSessionEvent,
  appendRefusal,
  checkAppend,
  checkClose,
  checkCreate,
  checkLimit,
  checkNow,
  duplicateMessage,
  sessionExists,
  unknownCursor,
} from "./session-checks.js";
import type {
  AdmitOutcome,
  AdmitRequest,
  AgentKeyPatch,
  AgentKeyRecord,
  AgentRecord,
  ApiKeyRecord,
  MessageRecord,
  RoleAssignmentQuery,
  RoleAssignmentRecord,
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

/** A message as held: the outcome stays JSON text, as in SQL, so every read parses a fresh copy. */
interface HeldMessage extends Omit<MessageRecord, "outcome"> {
  readonly outcomeJson?: string;
}

/** A nonce as held: the message id it is bound to, and until when. */
interface HeldNonce {
  readonly messageId: string;
  readonly expiresAt: number;
}

/** Records keyed by sender, then by message id or nonce: no separator for a crafted id to forge. */
type BySender<T> = Map<string, Map<string, T>>;

function held<T>(table: BySender<T>, sender: string, key: string): T | undefined {
  return table.get(sender)?.get(key);
}

function hold<T>(table: BySender<T>, sender: string, key: string, value: T): void {
  let inner = table.get(sender);
  if (inner === undefined) {
    inner = new Map<string, T>();
    table.set(sender, inner);
  }
  inner.set(key, value);
}

function forget<T>(table: BySender<T>, sender: string, key: string): void {
  const inner = table.get(sender);
  if (inner?.delete(key) === true && inner.size === 0) table.delete(sender);
}

/** Deletes every entry that expired before `now` and returns how many went. */
function pruneExpired<T extends { readonly expiresAt: number }>(table: BySender<T>, now: number): number {
  let deleted = 0;
  for (const [sender, inner] of table) {
    for (const [key, value] of inner) {
      if (value.expiresAt < now) {
        inner.delete(key);
        deleted += 1;
      }
    }
    if (inner.size === 0) table.delete(sender);
  }
  return deleted;
}

function toMessage({ outcomeJson: json, ...message }: HeldMessage): MessageRecord {
  return json === undefined ? { ...message } : { ...message, outcome: JSON.parse(json) as unknown };
}

/** One session's accepted messages in seq order, and the message ids they used. */
interface HeldMessages {
  readonly list: SessionMessageRecord[];
  readonly ids: Set<string>;
}

/**
 * Sessions in memory. Each method's work is synchronous inside `run`, so a call is atomic: every check
 * comes before the first write, and a refused call leaves nothing behind.
 */
function createSessionStore(run: <T>(work: () => T) => Promise<T>): SessionStore {
  // Map iteration follows insertion order, which breaks `createdAt` ties the way SQL's rowid does.
  const sessions = new Map<string, SessionRecord>();
  const messages = new Map<string, HeldMessages>();
  // Ids are 1, 2, 3, … in the order events are stored, so the array is sorted by id.
  const events: SessionEventRecord[] = [];
  let lastEventId = 0;

  const recordEvent = (event: NewSessionEvent): SessionEventRecord => {
    const stored: SessionEventRecord = { ...snapshot(event), id: ++lastEventId };
    events.push(stored);
    return snapshot(stored);
  };

  /** The sessions in creation order, ties in insertion order, as the SQL adapters list them. */
  const byCreation = (records: SessionRecord[]): SessionRecord[] =>
    records.sort((a, b) => a.createdAt - b.createdAt);

  const page = <T extends object>(records: T[], limit: number | undefined): T[] =>
    (limit === undefined ? records : records.slice(0, limit)).map(snapshot);

  return {
    create: (session: SessionRecord, event: NewSessionEvent) =>
      run(() => {
        checkCreate(session, event);
        if (sessions.has(session.id)) throw sessionExists(session.id);
        sessions.set(session.id, snapshot(session));
        messages.set(session.id, { list: [], ids: new Set() });
        return recordEvent(event);
      }),
    get: (id: string) =>
      run(() => {
        const session = sessions.get(id);
        return session && snapshot(session);
      }),
    list: (query: SessionQuery = {}) =>
      run(() => {
        checkLimit(query.limit);
        const { status, mode, participant } = query;
        const found = [...sessions.values()].filter(
          (session) =>
            (status === undefined || session.status === status) &&
            (mode === undefined || session.mode === mode) &&
            (participant === undefined || session.participants.includes(participant)),
        );
        const ordered = byCreation(found);
        if (query.after === undefined) return page(ordered, query.limit);
        const cursor = sessions.get(query.after);
        if (cursor === undefined) throw unknownCursor();
        // Everything listed after the cursor in the full order (insertion order breaks ties).
        const all = byCreation([...sessions.values()]);
        const position = all.indexOf(cursor);
        const later = new Set(all.slice(position + 1));
        return page(
          ordered.filter((session) => later.has(session)),
          query.limit,
        );
      }),
    append: (
      message: SessionMessageRecord,
      next: SessionRecord,
      expectedCount: number,
      appended: readonly NewSessionEvent[],
    ) =>
      run(() => {
        checkAppend(message, next, expectedCount, appended);
        const stored = sessions.get(next.id);
        if (stored?.status !== "OPEN" || stored.messageCount !== expectedCount) {
          throw appendRefusal(next.id, stored, expectedCount);
        }
        const held = messages.get(next.id)!;
        if (held.ids.has(message.messageId)) throw duplicateMessage(next.id, message.messageId);

        held.list.push(snapshot(message));
        held.ids.add(message.messageId);
        // Only what a message can change; the fields fixed at creation stay as created.
        sessions.set(
          next.id,
          snapshot({
            ...stored,
            status: next.status,
            expiresAt: next.expiresAt,
            closedAt: next.closedAt,
            modeState: next.modeState,
            messageCount: next.messageCount,
            historyHash: next.historyHash,
            outcome: next.outcome,
            cancelledBy: next.cancelledBy,
          }),
        );
        return appended.map(recordEvent);
      }),
    close: (next: SessionRecord, event: NewSessionEvent) =>
      run(() => {
        checkClose(next, event);
        const stored = sessions.get(next.id);
        if (stored?.status !== "OPEN") return undefined;
        // Never the message history (count, hash, mode state): `next` may predate the last append.
        sessions.set(
          next.id,
          snapshot({
            ...stored,
            status: next.status,
            closedAt: next.closedAt,
            outcome: next.outcome,
            cancelledBy: next.cancelledBy,
          }),
        );
        return recordEvent(event);
      }),
    messages: (sessionId: string) => run(() => (messages.get(sessionId)?.list ?? []).map(snapshot)),
    prune: (closedBefore: number, limit: number) =>
      run(() => {
        checkNow(closedBefore);
        checkLimit(limit);
        const due = [...sessions.values()]
          .filter((session) => session.status !== "OPEN" && session.closedAt! < closedBefore)
          .sort((a, b) => a.closedAt! - b.closedAt!)
          .slice(0, limit);
        const gone = new Set(due.map((session) => session.id));
        for (const id of gone) {
          sessions.delete(id);
          messages.delete(id);
        }
        // Keeps the array sorted by id (a filter preserves order).
        const kept = events.filter((event) => !gone.has(event.sessionId));
        events.length = 0;
        events.push(...kept);
        return gone.size;
      }),
    expired: (now: number, limit: number) =>
      run(() => {
        checkNow(now);
        checkLimit(limit);
        const due = [...sessions.values()].filter(
          (session) => session.status === "OPEN" && session.expiresAt <= now,
        );
        // Soonest expiry first, ties in insertion order (the sort is stable).
        return page(
          due.sort((a, b) => a.expiresAt - b.expiresAt),
          limit,
        );
      }),
    lastEventId: () => run(() => events.at(-1)?.id ?? 0),
    events: (afterId: number, limit: number) =>
      run(() => {
        checkLimit(limit, afterId);
        // Binary search for the first event after the cursor.
        let low = 0;
        let high = events.length;
        while (low < high) {
          const middle = (low + high) >>> 1;
          if (events[middle]!.id <= afterId) low = middle + 1;
          else high = middle;
        }
        return events.slice(low, low + limit).map(snapshot);
      }),
  };
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
  const messages: BySender<HeldMessage> = new Map();
  const nonces: BySender<HeldNonce> = new Map();
  // Keyed by principal, then role: no separator for a crafted id to forge.
  const roleAssignments = new Map<string, Map<string, RoleAssignmentRecord>>();
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

    replay: {
      // Synchronous inside `run`, so no other call can slip between the checks and the inserts.
      admit: (request: AdmitRequest) =>
        run((): AdmitOutcome => {
          const { sender, id, hash, nonce, ts, now, windowMs } = request;
          const expiresAt = admitExpiresAt(request);
          // An expired record counts as gone whether or not prune has run yet, as in SQL.
          const message = held(messages, sender, id);
          if (message !== undefined && message.expiresAt >= now) {
            return message.hash === hash
              ? { kind: "duplicate", record: toMessage(message) }
              : { kind: "conflict" };
          }
          if (Math.abs(now - ts) > windowMs) return { kind: "stale" };
          const bound = held(nonces, sender, nonce);
          const live = bound !== undefined && bound.expiresAt >= now;
          if (live && bound.messageId !== id) return { kind: "replay" };

          hold(messages, sender, id, {
            sender,
            id,
            hash,
            nonce,
            ts,
            state: "pending",
            createdAt: now,
            expiresAt,
          });
          // A released message admitted again keeps its nonce at least as long as before.
          const nonceExpiresAt = live ? Math.max(bound.expiresAt, expiresAt) : expiresAt;
          hold(nonces, sender, nonce, { messageId: id, expiresAt: nonceExpiresAt });
          return { kind: "admitted" };
        }),
      complete: (sender: string, id: string, outcome: unknown) =>
        run(() => {
          const json = outcomeJson(outcome);
          const message = held(messages, sender, id);
          // The first outcome stands: a retry already answered with it must never see another.
          if (message?.state !== "pending") return;
          hold(messages, sender, id, { ...message, state: "done", outcomeJson: json });
        }),
      release: (sender: string, id: string) =>
        run(() => {
          // A done message has run; forgetting it would let the identical envelope run again.
          if (held(messages, sender, id)?.state === "pending") forget(messages, sender, id);
        }),
      getMessage: (sender: string, id: string) =>
        run(() => {
          const message = held(messages, sender, id);
          return message && toMessage(message);
        }),
      prune: (now: number) => run(() => pruneExpired(messages, now) + pruneExpired(nonces, now)),
    },

    roles: {
      assignRole: (assignment: RoleAssignmentRecord, _ctx: StoreContext) =>
        run(() => {
          let held = roleAssignments.get(assignment.principal);
          if (held === undefined) {
            held = new Map();
            roleAssignments.set(assignment.principal, held);
          }
          // The first assignment stands: assigning again changes neither its time nor its author.
          if (held.has(assignment.role)) return false;
          held.set(assignment.role, snapshot(assignment));
          return true;
        }),
      unassignRole: (principal: string, role: string, _ctx: StoreContext) =>
        run(() => {
          const held = roleAssignments.get(principal);
          if (held?.delete(role) !== true) return false;
          if (held.size === 0) roleAssignments.delete(principal);
          return true;
        }),
      listRoleAssignments: (query: RoleAssignmentQuery = {}) =>
        run(() => {
          const principals =
            query.principal === undefined
              ? [...roleAssignments.keys()]
              : roleAssignments.has(query.principal)
                ? [query.principal]
                : [];
          const byCodeUnit = (a: string, b: string) => (a < b ? -1 : a > b ? 1 : 0);
          return principals.sort(byCodeUnit).flatMap((principal) =>
            [...roleAssignments.get(principal)!.values()]
              .filter((assignment) => query.role === undefined || assignment.role === query.role)
              .sort((a, b) => byCodeUnit(a.role, b.role))
              .map(snapshot),
          );
        }),
    },

    sessions: createSessionStore(run),

    ping: () => Promise.resolve(open),
    close: () => {
      open = false;
      return Promise.resolve();
    },
  };
}
