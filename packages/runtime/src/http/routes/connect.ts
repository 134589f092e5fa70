// GET /v1/connect: agents that serve tools connect over WebSocket, declare what they serve, and
// receive signed deliveries. The upgrade is authenticated by the same hook as every other route.
import {
  type Delivery,
  type ErrorCode,
  type ServerFrame,
  SignetError,
  isSignetError,
  newMessageId,
  parseClientFrame,
  serializeFrame,
} from "@signet/protocol";
import "@fastify/websocket";
import type { FastifyInstance } from "fastify";
import type { WebSocket } from "ws";
import type { EventRecorder } from "../../audit/audit-recorder.js";
import type { AgentRegistry } from "../../registry/agent-registry.js";
import type { ExecutorConnection, Router } from "../../routing/router.js";
import { principalOf } from "../server.js";

export interface ConnectSettings {
  /** The most calls one connection takes at once; an agent may ask for fewer. */
  readonly maxInFlight: number;
  readonly heartbeatMs: number;
  /** How long a connection may take to say hello. */
  readonly helloTimeoutMs: number;
}

/** WebSocket close code for policy violations (RFC 6455). */
const POLICY_VIOLATION = 1008;

export function registerConnectRoute(
  app: FastifyInstance,
  deps: {
    registry: AgentRegistry;
    router: Router;
    events: EventRecorder;
    runtimeKid: string;
    runtimePublicKey: string;
    settings: ConnectSettings;
  },
): void {
  const { registry, router, events, settings } = deps;
  const live = new Set<WebSocket>();

  // Revocations reach every connected agent at once, so executors drop cached keys.
  registry.onKeyRevoked((agent, kid) => {
    const frame = serializeFrame({ type: "key_revoked", agent, kid });
    for (const socket of live) if (socket.readyState === socket.OPEN) socket.send(frame);
  });

  app.get("/v1/connect", { websocket: true }, (socket: WebSocket, request) => {
    const principal = principalOf(request);
    const connectionId = newMessageId();
    const send = (frame: ServerFrame) => {
      if (socket.readyState === socket.OPEN) socket.send(serializeFrame(frame));
    };
    const fail = (code: ErrorCode, message: string) => {
      send({ type: "error", error: { code, message } });
      socket.close(POLICY_VIOLATION, code);
    };
    let connection: ExecutorConnection | undefined;
    let lastSeen = Date.now();
    live.add(socket);

    const helloTimer = setTimeout(() => {
      if (connection === undefined) fail("INVALID_REQUEST", "No hello frame in time");
    }, settings.helloTimeoutMs);
    const heartbeat = setInterval(() => {
      if (Date.now() - lastSeen > 3 * settings.heartbeatMs) {
        socket.terminate();
        return;
      }
      send({ type: "ping", ts: Date.now() });
    }, settings.heartbeatMs);
    heartbeat.unref();

    socket.on("message", (data, isBinary) => {
      lastSeen = Date.now();
      void (async () => {
        if (isBinary) return fail("INVALID_REQUEST", "Frames are JSON text");
        const raw = Buffer.isBuffer(data)
          ? data
          : Buffer.concat(Array.isArray(data) ? data : [Buffer.from(data)]);
        let frame;
        try {
          frame = parseClientFrame(raw);
        } catch (error) {
          return fail("INVALID_REQUEST", isSignetError(error) ? error.message : "Invalid frame");
        }
        switch (frame.type) {
          case "hello": {
            if (connection !== undefined) return fail("INVALID_REQUEST", "A second hello");
            if (frame.agent !== principal.id) {
              await events.record({
                type: "connect_refused",
                actor: principal.id,
                target: `agent:${frame.agent}`,
                outcome: "deny",
                code: "FORBIDDEN",
                metadata: { reason: "hello_for_other_agent" },
              });
              return fail("FORBIDDEN", "A connection may only speak for its authenticated principal");
            }
            const agent = await registry.getAgent(principal.id);
            const capabilities = frame.capabilities ?? [];
            const refused = [
              ...frame.serves.filter((tool) => agent === undefined || !registry.mayServe(agent.id, tool)),
              ...capabilities
                .filter((name) => agent === undefined || !registry.mayProvide(agent.id, name))
                .map((name) => `capability:${name}`),
            ];
            if (agent === undefined || refused.length > 0) {
              await events.record({
                type: "connect_refused",
                actor: principal.id,
                outcome: "deny",
                code: "FORBIDDEN",
                metadata: {
                  reason: agent === undefined ? "unregistered" : "tool_not_allowed",
                  tools: refused,
                },
              });
              return fail("FORBIDDEN", "This agent may not serve these tools or capabilities");
            }
            clearTimeout(helloTimer);
            const maxInFlight = Math.min(settings.maxInFlight, frame.max_in_flight ?? settings.maxInFlight);
            const executor: ExecutorConnection = {
              id: connectionId,
              agentId: principal.id,
              targets: new Set([
                ...frame.serves.map((tool) => `tool:${tool}`),
                ...capabilities.map((name) => `capability:${name}`),
              ]),
              maxInFlight,
              sendInvoke(envelope: string, delivery: Delivery) {
                if (socket.readyState !== socket.OPEN) throw new SignetError("TARGET_UNAVAILABLE");
                socket.send(serializeFrame({ type: "invoke", envelope, delivery }));
              },
            };
            connection = executor;
            router.register(executor);
            send({
              type: "welcome",
              connection_id: connectionId,
              serves: frame.serves,
              ...(capabilities.length === 0 ? {} : { capabilities }),
              max_in_flight: maxInFlight,
              runtime_kid: deps.runtimeKid,
              runtime_public_key: deps.runtimePublicKey,
              heartbeat_ms: settings.heartbeatMs,
            });
            return undefined;
          }
          case "result":
            if (connection === undefined) return fail("INVALID_REQUEST", "hello first");
            // An unknown call id (late beyond the hold, or never ours) is dropped: it cannot be bound.
            router.resolveCall(connection, frame.call_id, frame.envelope);
            return undefined;
          case "error":
            if (connection === undefined) return fail("INVALID_REQUEST", "hello first");
            if (frame.call_id !== undefined) {
              router.rejectCall(connection, frame.call_id, frame.error.code, frame.error.message);
            }
            return undefined;
          case "ping":
            send({ type: "pong", ts: frame.ts });
            return undefined;
          case "pong":
            return undefined;
        }
      })().catch((error: unknown) => {
        request.log.error({ err: error }, "connect frame handling failed");
        fail("INTERNAL_ERROR", "Internal error");
      });
    });

    socket.on("close", () => {
      clearTimeout(helloTimer);
      clearInterval(heartbeat);
      live.delete(socket);
      if (connection !== undefined) router.unregister(connection);
    });
  });

  app.addHook("onClose", async () => {
    for (const socket of live) socket.close(1001, "shutting down");
  });
}
