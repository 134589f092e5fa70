// Coordination sessions over HTTP (docs/sessions.md).
//
//   POST /v1/sessions/messages        a signed session.* envelope (the pipeline guards it)
//   GET  /v1/sessions                 ?status=&mode=&participant=&after=&limit= (participants see theirs)
//   GET  /v1/sessions/watch           SSE lifecycle events (session:watch), resumable by Last-Event-ID
//   GET  /v1/sessions/:id             one session (its participants, or session:read)
//   GET  /v1/sessions/:id/messages    its accepted messages in order, to recompute the history hash
//   POST /v1/sessions/:id/cancel      an operator's cancel (session:cancel)
import { SignetError, sessionHistoryHash } from "@signet/protocol";
import type { FastifyInstance, FastifyReply, FastifyRequest } from "fastify";
import type { AuthRequest } from "../../auth/authenticator.js";
import { type Principal, hasPermission } from "../../auth/principal.js";
import type { RateLimitStatus } from "../../pipeline/hooks.js";
import type { InvocationPipeline } from "../../pipeline/invocation-pipeline.js";
import { rateLimitHeaders } from "../../ratelimit/rate-limit-headers.js";
import { type SessionService, sessionView } from "../../sessions/session-service.js";
import type { WatchHub } from "../../sessions/session-watch.js";
import {
  SESSION_MODES,
  type SessionEventRecord,
  type SessionQuery,
  type SessionRecord,
  type SessionStatus,
} from "../../sessions/types.js";
import { principalOf } from "../server.js";

export interface SessionRouteDependencies {
  readonly pipeline: InvocationPipeline;
  readonly sessions: SessionService;
  readonly hub: WatchHub;
  /** Heartbeat comment interval on watch streams. Default 15 s. */
  readonly heartbeatMs?: number;
  /**
   * Authenticates again what a request was authenticated from. A watch stream does so at every
   * heartbeat, and ends once its credential no longer authenticates or no longer holds session:watch
   * (a revoked API key, an expired token, a role taken away).
   */
  readonly authenticate?: (request: AuthRequest) => Promise<Principal>;
}

const STATUSES: readonly SessionStatus[] = ["OPEN", "RESOLVED", "EXPIRED", "CANCELLED"];
/** A watch stream further behind than this is dropped; its client resumes with Last-Event-ID. */
const MAX_BUFFERED_BYTES = 1 << 20;

type Query = Record<string, string | undefined>;

function invalid(message: string): never {
  throw new SignetError("INVALID_REQUEST", message, { reason: "query" });
}

function oneOf<T extends string>(query: Query, name: string, allowed: readonly T[]): T | undefined {
  const value = query[name];
  if (value === undefined) return undefined;
  if (!(allowed as readonly string[]).includes(value)) invalid(`${name}: one of ${allowed.join(", ")}`);
  return value as T;
}

function eventId(value: string | undefined, name: string): number | undefined {
  if (value === undefined) return undefined;
  if (!/^[0-9]{1,15}$/.test(value)) invalid(`${name}: a non-negative integer event id`);
  return Number(value);
}

/** Who may see a session: its participants, and principals holding session:read. */
function maySee(request: FastifyRequest, participants: readonly string[]): boolean {
  const principal = principalOf(request);
  return participants.includes(principal.id) || hasPermission(principal, "session:read");
}

/** The session, when the caller may see it; SESSION_NOT_FOUND otherwise (existence is not revealed). */
async function visibleSession(
  request: FastifyRequest,
  sessions: SessionService,
  id: string,
): Promise<SessionRecord> {
  const session = await sessions.get(id);
  if (session === undefined || !maySee(request, session.participants)) {
    throw new SignetError("SESSION_NOT_FOUND");
  }
  return session;
}

/** One SSE frame. Event data is JSON on one line, so it needs no `data:` continuation lines. */
export function sseFrame(event: SessionEventRecord): string {
  const data = JSON.stringify({
    id: event.id,
    session_id: event.sessionId,
    type: event.type,
    at: new Date(event.at).toISOString(),
    data: event.data,
  });
  return `id: ${event.id}\nevent: ${event.type}\ndata: ${data}\n\n`;
}

export function registerSessionRoutes(app: FastifyInstance, deps: SessionRouteDependencies): void {
  const { pipeline, sessions, hub } = deps;
  const authenticated = { config: { guard: { authenticated: true } } } as const;

  // The envelope is verified over the exact bytes received, as on POST /v1/envelopes.
  void app.register(async (scope) => {
    scope.removeAllContentTypeParsers();
    scope.addContentTypeParser("application/json", { parseAs: "buffer" }, (_request, body: Buffer, done) =>
      done(null, body),
    );
    scope.post("/v1/sessions/messages", authenticated, async (request, reply) => {
      if (!Buffer.isBuffer(request.body)) {
        throw new SignetError("INVALID_ENVELOPE", "The body must be a JSON envelope", { reason: "body" });
      }
      let limit: RateLimitStatus | undefined;
      try {
        return await pipeline.submitSession(request.body, {
          principal: principalOf(request),
          sourceIp: request.ip,
          onRateLimit: (status) => (limit = status),
        });
      } finally {
        if (limit !== undefined) void reply.headers(rateLimitHeaders(limit));
      }
    });
  });

  app.get<{ Querystring: Query }>("/v1/sessions", authenticated, async (request) => {
    const { query } = request;
    const principal = principalOf(request);
    const limitText = query.limit;
    if (limitText !== undefined && !/^[0-9]{1,4}$/.test(limitText)) invalid("limit: 1..1000");
    const limit = limitText === undefined ? 100 : Number(limitText);
    if (limit < 1 || limit > 1000) invalid("limit: 1..1000");
    let participant = query.participant;
    if (!hasPermission(principal, "session:read")) {
      // Without session:read a principal lists only the sessions it takes part in.
      if (participant !== undefined && participant !== principal.id) {
        throw new SignetError("FORBIDDEN", "Listing another agent's sessions needs session:read", {
          reason: "participant",
        });
      }
      participant = principal.id;
    }
    const after = query.after;
    if (after !== undefined && (after.length === 0 || after.length > 128)) invalid("after: a session id");
    const filter: SessionQuery = {
      limit,
      ...(participant === undefined ? {} : { participant }),
      ...(after === undefined ? {} : { after }),
      ...optional("status", oneOf(query, "status", STATUSES)),
      ...optional("mode", oneOf(query, "mode", SESSION_MODES)),
    };
    const found = await sessions.list(filter);
    // A full page may have more after it: `next` is the cursor for the following page.
    return {
      sessions: found.map(sessionView),
      ...(found.length === limit ? { next: found.at(-1)!.id } : {}),
    };
  });

  app.get<{ Querystring: Query }>(
    "/v1/sessions/watch",
    { config: { guard: { permission: "session:watch" } } },
    async (request, reply) => {
      const { query } = request;
      const header = request.headers["last-event-id"];
      const resumeFrom =
        eventId(typeof header === "string" ? header.trim() : undefined, "Last-Event-ID") ??
        eventId(query.from, "from");
      const sessionId = query.session;
      if (sessionId !== undefined) {
        // A filter on one session: the caller must be allowed to see it.
        await visibleSession(request, sessions, sessionId);
      }
      const after = resumeFrom ?? (await hub.head());
      const principal = principalOf(request);
      const readsAll = hasPermission(principal, "session:read");
      const authRequest = request.authRequest;
      const reauthenticate = deps.authenticate;
      watchStream(request, reply, {
        hub,
        after,
        heartbeatMs: deps.heartbeatMs ?? 15_000,
        ...(reauthenticate === undefined || authRequest === null
          ? {}
          : {
              stillAllowed: async () => {
                const now = await reauthenticate(authRequest).catch(() => undefined);
                return now !== undefined && now.id === principal.id && hasPermission(now, "session:watch");
              },
            }),
        ...(sessionId === undefined ? {} : { sessionId }),
        visible: ({ participants }) => readsAll || participants.includes(principal.id),
      });
      return reply;
    },
  );

  app.get<{ Params: { id: string } }>("/v1/sessions/:id", authenticated, async (request) => {
    const session = await visibleSession(request, sessions, request.params.id);
    // A resolved session's commitment, re-made from the stored session (it is deterministic).
    return {
      session: sessionView(session),
      ...(session.status === "RESOLVED" ? { commitment: sessions.commitmentOf(session) } : {}),
    };
  });

  app.get<{ Params: { id: string } }>("/v1/sessions/:id/messages", authenticated, async (request) => {
    const session = await visibleSession(request, sessions, request.params.id);
    const messages = await sessions.messages(session.id);
    return {
      session_id: session.id,
      start_hash: session.startHash,
      // Of exactly the messages listed (one read), so the two always agree while the session goes on.
      history_hash: sessionHistoryHash(
        session.startHash,
        messages.map((message) => message.envelopeHash),
      ),
      messages: messages.map((message) => ({
        seq: message.seq,
        message_id: message.messageId,
        sender: message.sender,
        kind: message.kind,
        envelope_hash: message.envelopeHash,
        body: message.body,
        accepted_at: new Date(message.acceptedAt).toISOString(),
      })),
    };
  });

  app.post<{ Params: { id: string }; Body: { reason?: unknown } | undefined }>(
    "/v1/sessions/:id/cancel",
    { config: { guard: { permission: "session:cancel" } } },
    async (request) => {
      const reason = request.body?.reason;
      if (reason !== undefined && (typeof reason !== "string" || reason.length > 1024)) {
        throw new SignetError("INVALID_REQUEST", "reason: text up to 1024 characters", { reason: "reason" });
      }
      const principal = principalOf(request);
      return sessions.cancel(request.params.id, principal.id, {
        operator: true,
        ...(reason === undefined ? {} : { reason }),
      });
    },
  );
}

function optional<K extends string, V>(key: K, value: V | undefined): { [P in K]?: V } {
  return (value === undefined ? {} : { [key]: value }) as { [P in K]?: V };
}

interface StreamOptions {
  readonly hub: WatchHub;
  readonly after: number;
  readonly sessionId?: string;
  readonly heartbeatMs: number;
  readonly visible: Parameters<WatchHub["watch"]>[0]["visible"];
  /** Checked at every heartbeat: false ends the stream. */
  readonly stillAllowed?: () => Promise<boolean>;
}

/** Takes over the response as an SSE stream fed by the hub until the client goes away. */
function watchStream(request: FastifyRequest, reply: FastifyReply, options: StreamOptions): void {
  const raw = reply.raw;
  reply.hijack();
  raw.writeHead(200, {
    "content-type": "text/event-stream; charset=utf-8",
    "cache-control": "no-store",
    "x-accel-buffering": "no",
    connection: "keep-alive",
  });
  // The stream opens with an id-only event naming where it starts: a client that loses the connection
  // before the first event resumes from there (an SSE event with an id and no data sets the last
  // event id without dispatching anything).
  raw.write(`: watching after ${options.after}\nid: ${options.after}\nretry: 1000\n\n`);
  let ended = false;
  const end = (reason: string): void => {
    if (ended) return;
    ended = true;
    clearInterval(heartbeat);
    watcher.close();
    // A last comment says why, for a client reading the stream by hand; the SDK sees the close.
    raw.end(`: closed: ${reason}\n\n`);
  };
  const heartbeat = setInterval(() => {
    raw.write(": ping\n\n");
    void options.stillAllowed?.().then((allowed) => {
      if (!allowed) end("credential no longer allows session:watch");
    });
  }, options.heartbeatMs);
  heartbeat.unref();
  const watcher = options.hub.watch({
    after: options.after,
    ...(options.sessionId === undefined ? {} : { sessionId: options.sessionId }),
    visible: options.visible,
    deliver: (events) => {
      raw.write(events.map(sseFrame).join(""));
      return raw.writableLength <= MAX_BUFFERED_BYTES;
    },
    onClose: () => {
      clearInterval(heartbeat);
      raw.end();
    },
  });
  const stop = (): void => {
    clearInterval(heartbeat);
    watcher.close();
  };
  request.raw.on("close", stop);
  raw.on("close", stop);
}
