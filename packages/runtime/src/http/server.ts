// The HTTP layer: a thin Fastify adapter that authenticates, checks permissions and calls services.
import type { TLSSocket } from "node:tls";
import { SignetError, parseStrictJson } from "@signet/protocol";
import Fastify, {
  type FastifyInstance,
  type FastifyReply,
  type FastifyRequest,
  LogController,
} from "fastify";
import type { Logger } from "pino";
import type { EventRecorder } from "../audit/audit-recorder.js";
import type { AuthRequest } from "../auth/authenticator.js";
import { type Permission, type Principal, hasPermission } from "../auth/principal.js";
import type { RuntimeConfig } from "../config/load-config.js";
import type { RuntimeMetrics } from "../telemetry/metrics.js";
import { peerPrincipal } from "../tls/peer-identity.js";
import { rateLimitHeaders } from "../ratelimit/rate-limit-headers.js";
import type { ClientRateLimiter } from "../ratelimit/signet-rate-limiter.js";
import { installErrorHandling, sendError } from "./errors.js";

/**
 * Per-route options: public routes skip authentication; every other route authenticates, and an admin
 * route names the permission it needs. A route that needs only an authenticated principal (whoami, the
 * envelope and connect routes, which the pipeline guards itself) may say so with `authenticated`.
 * test/http/route-guards.test.ts walks every registered route, so a new route without a guard fails it.
 */
export interface RouteGuard {
  readonly public?: boolean;
  readonly permission?: Permission;
  readonly authenticated?: boolean;
}

/** A route as registered, with its guard: what the route-guard test walks. */
export interface RegisteredRoute {
  readonly method: string;
  readonly url: string;
  readonly guard?: RouteGuard;
  readonly websocket: boolean;
}

// Filled by an onRoute hook installed before any route exists, so it sees routes registered in
// encapsulated plugins too.
const routeTables = new WeakMap<FastifyInstance, RegisteredRoute[]>();

/**
 * Every route registered on an app built by createHttpServer, in registration order (HEAD routes
 * fastify adds for GET routes included).
 *
 * Example: `for (const route of registeredRoutes(runtime.app)) console.log(route.method, route.url)`.
 */
export function registeredRoutes(app: FastifyInstance): readonly RegisteredRoute[] {
  return routeTables.get(app) ?? [];
}

declare module "fastify" {
  interface FastifyRequest {
    principal: Principal | null;
    rawBody: Buffer | null;
    /** What the principal was authenticated from: long-lived streams check it again. */
    authRequest: AuthRequest | null;
  }
  interface FastifyContextConfig {
    guard?: RouteGuard;
  }
}

export interface HttpServerOptions {
  readonly config: RuntimeConfig;
  readonly https?: Record<string, unknown>;
  readonly logger: Logger;
  readonly metrics: RuntimeMetrics;
  readonly events: EventRecorder;
  readonly authenticate: (request: AuthRequest) => Promise<Principal>;
  /** Limits requests that fail authentication per client address (`request.ip`). */
  readonly clientLimits?: ClientRateLimiter;
}

/** The principal of a request that passed authentication. */
export function principalOf(request: FastifyRequest): Principal {
  if (request.principal === null) throw new SignetError("UNAUTHENTICATED");
  return request.principal;
}

/**
 * Builds the Fastify instance with authentication, permission checks, strict JSON bodies, metrics
 * and error mapping. Routes are registered by the caller.
 */
export function createHttpServer(options: HttpServerOptions): FastifyInstance {
  const { config, metrics, events } = options;
  const app = Fastify({
    loggerInstance: options.logger,
    bodyLimit: config.server.bodyLimitBytes,
    trustProxy: config.server.trustProxy as boolean | string[],
    // The error handler logs what matters; request/response logging would include client addresses only.
    logController: new LogController({ disableRequestLogging: true }),
    return503OnClosing: true,
    forceCloseConnections: "idle",
    ...(options.https === undefined ? {} : { https: options.https }),
  }) as unknown as FastifyInstance;

  const routes: RegisteredRoute[] = [];
  routeTables.set(app, routes);
  app.addHook("onRoute", (route) => {
    const methods = Array.isArray(route.method) ? route.method : [route.method];
    const guard = route.config?.guard;
    for (const method of methods) {
      routes.push({
        method: String(method),
        url: route.url,
        ...(guard === undefined ? {} : { guard }),
        websocket: (route as { websocket?: boolean }).websocket === true,
      });
    }
  });

  app.decorateRequest("principal", null);
  app.decorateRequest("rawBody", null);
  app.decorateRequest("authRequest", null);

  // One strict parser for every JSON body: duplicate keys and __proto__ are refused everywhere,
  // and the exact bytes stay available to routes that verify signatures over them.
  app.removeContentTypeParser(["application/json", "text/plain"]);
  app.addContentTypeParser("application/json", { parseAs: "buffer" }, (request, body: Buffer, done) => {
    request.rawBody = body;
    try {
      done(
        null,
        parseStrictJson(body, {
          maxBytes: config.server.bodyLimitBytes,
          maxDepth: config.envelopes.maxDepth,
        }),
      );
    } catch (error) {
      const signetError = error as SignetError;
      done(
        new SignetError("INVALID_REQUEST", signetError.message, {
          reason: signetError.details.reason ?? "json",
        }),
      );
    }
  });

  installErrorHandling(app, metrics);

  /** A client address over its unauthenticated limit: 429 with retry-after, and the connection closed. */
  const refuseClient = (reply: FastifyReply, refusal: SignetError): FastifyReply => {
    metrics.refusals.inc({ code: refusal.code });
    void reply.header("connection", "close");
    void reply.headers(
      rateLimitHeaders({
        limit: options.clientLimits?.limits.unauthenticatedPerMinute ?? 0,
        remaining: 0,
        resetMs: refusal.details.retry_after_ms ?? 0,
      }),
    );
    return sendError(reply, refusal);
  };

  app.addHook("onRequest", async (request, reply) => {
    const guard = request.routeOptions.config.guard;
    if (guard?.public === true || request.routeOptions.url === undefined) return;
    // Rate limit per client address. request.ip is the socket's peer address; X-Forwarded-For counts
    // only when server.trust_proxy says which proxies to believe, so a client cannot pick its own key.
    const limits = options.clientLimits;
    const blocked = limits?.refuseBlockedClient(request.ip);
    if (blocked !== undefined) return refuseClient(reply, blocked);
    try {
      const peer = config.server.insecure
        ? undefined
        : peerPrincipal(request.raw.socket as TLSSocket, config.auth.mtls.spiffe);
      request.authRequest = {
        headers: request.headers,
        ...(peer === undefined ? {} : { peer }),
        insecure: config.server.insecure,
      };
      request.principal = await options.authenticate(request.authRequest);
    } catch (error) {
      // UNAUTHENTICATED, or UNAVAILABLE when keys, JWKS or role assignments could not be read.
      const refusal = error instanceof SignetError ? error : new SignetError("UNAUTHENTICATED");
      if (refusal.code === "UNAUTHENTICATED" && limits !== undefined) {
        const limited = await limits.countUnauthenticated(request.ip).catch(() => undefined);
        if (limited !== undefined) {
          // Audited once per address and window: later requests are refused before authentication.
          await events
            .record({
              type: "rate_limited",
              target: `route:${request.method} ${request.routeOptions.url}`,
              outcome: "deny",
              code: "RATE_LIMITED",
              metadata: {
                reason: "unauthenticated_limit",
                source_ip: request.ip,
                limit: limits.limits.unauthenticatedPerMinute,
              },
            })
            .catch(() => undefined);
          return refuseClient(reply, limited);
        }
      }
      metrics.refusals.inc({ code: refusal.code });
      // A refused upgrade (or any refused request) must not keep its connection: close it.
      void reply.header("connection", "close");
      return sendError(reply, refusal);
    }
    if (guard?.permission !== undefined && !hasPermission(request.principal, guard.permission)) {
      metrics.refusals.inc({ code: "FORBIDDEN" });
      await events.record({
        type: "admin_action",
        actor: request.principal.id,
        target: `route:${request.method} ${request.routeOptions.url}`,
        outcome: "deny",
        code: "FORBIDDEN",
        metadata: { permission: guard.permission },
      });
      return sendError(reply, new SignetError("FORBIDDEN", `This needs the ${guard.permission} permission`));
    }
    return undefined;
  });

  app.addHook("onResponse", async (request, reply) => {
    const route = request.routeOptions.url ?? "unmatched";
    metrics.requests.inc({ route, method: request.method, status: String(reply.statusCode) });
    metrics.latency.observe({ route, method: request.method }, reply.elapsedTime / 1000);
  });

  return app;
}
