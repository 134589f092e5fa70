// Walks every route registered on the runtime's Fastify instance and proves none is left open: without
// credentials each non-public route answers 401, and with a credential that holds no permissions each
// admin route answers 403 FORBIDDEN (recorded). A route added without a guard fails this test.
import type { FastifyInstance } from "fastify";
import { afterAll, beforeAll, describe, expect, it } from "vitest";
import { createApiKey } from "../../src/auth/api-keys.js";
import { type RegisteredRoute, registeredRoutes } from "../../src/http/server.js";
import { type RuntimeFixture, startRuntime } from "../helpers/runtime-fixture.js";

/** Routes anyone may call, with why. */
const PUBLIC_ROUTES: Readonly<Record<string, string>> = {
  "/v1/health": "liveness probe for load balancers and orchestrators (DESIGN: no credentials)",
  "/v1/ready": "readiness probe for load balancers and orchestrators (DESIGN: no credentials)",
};

/** Routes any authenticated principal may call, with why no permission is needed. */
const AUTHENTICATED_ROUTES: Readonly<Record<string, string>> = {
  "/v1/auth/whoami": "tells callers who they are and what they hold; it reveals nothing about anyone else",
  "/v1/envelopes":
    "agents submit signed envelopes; the pipeline binds sender to principal, checks the signature and applies policy to each",
  "/v1/connect":
    "agents connect to serve tools; the hello may only speak for the authenticated principal and the registry decides what it may serve",
  "/v1/sessions/messages":
    "agents submit signed session envelopes; the pipeline binds sender to principal, checks the signature and applies policy, and the session admits only its participants",
  "/v1/sessions":
    "lists only the caller's own sessions unless it holds session:read (asking for another agent's needs it: FORBIDDEN)",
  "/v1/sessions/:id":
    "answers only the session's participants and session:read holders; anyone else gets SESSION_NOT_FOUND",
  "/v1/sessions/:id/messages":
    "answers only the session's participants and session:read holders; anyone else gets SESSION_NOT_FOUND",
};

/**
 * A query that makes a route answer at once once past its guard: a stream never ends under `inject`,
 * so the watch stream is probed with a cursor it refuses (400) after the guard has let the caller in.
 */
const PROBE_QUERY: Readonly<Record<string, string>> = {
  "/v1/sessions/watch": "?from=not-an-event-id",
};

/** A concrete path for a route pattern: every `:param` becomes a harmless placeholder. */
function concrete(url: string): string {
  return url.replace(/:[A-Za-z_]+/g, "x");
}

interface Probe {
  readonly route: RegisteredRoute;
  readonly status: number;
  readonly code?: string;
}

async function probe(
  app: FastifyInstance,
  route: RegisteredRoute,
  headers: Record<string, string>,
): Promise<Probe> {
  const method = route.method as "GET" | "HEAD" | "POST" | "PUT" | "PATCH" | "DELETE" | "OPTIONS";
  const withBody = !["GET", "HEAD", "OPTIONS"].includes(method);
  const reply = await app.inject({
    method,
    url: concrete(route.url) + (PROBE_QUERY[route.url] ?? ""),
    headers: { ...headers, ...(withBody ? { "content-type": "application/json" } : {}) },
    ...(withBody ? { payload: "{}" } : {}),
  });
  let code: string | undefined;
  try {
    code = reply.json<{ error?: { code?: string } }>().error?.code;
  } catch {
    // HEAD replies and metrics have no JSON body; the status says enough.
  }
  return { route, status: reply.statusCode, ...(code === undefined ? {} : { code }) };
}

/**
 * Everything wrong with an app's route guards: each finding names the route and what is open. Empty
 * when every route is public by name, authenticated-only by name, or guarded by a permission that a
 * credential without permissions is refused and a credential with exactly that permission passes.
 */
async function findOpenRoutes(
  app: FastifyInstance,
  keys: { none: string; withPermission: (permission: string) => Promise<string> },
): Promise<string[]> {
  const findings: string[] = [];
  const auth = (key: string) => ({ authorization: `Bearer ${key}` });
  for (const route of registeredRoutes(app)) {
    const name = `${route.method} ${route.url}`;
    const guard = route.guard ?? {};
    if (PUBLIC_ROUTES[route.url] !== undefined) {
      if (guard.public !== true) findings.push(`${name}: listed as public but not marked public`);
      continue;
    }
    if (guard.public === true) {
      findings.push(`${name}: public without being listed (with a reason) in PUBLIC_ROUTES`);
      continue;
    }
    const anonymous = await probe(app, route, {});
    if (anonymous.status !== 401 || (route.method !== "HEAD" && anonymous.code !== "UNAUTHENTICATED")) {
      findings.push(`${name}: without credentials answered ${anonymous.status} ${anonymous.code ?? ""}`);
    }
    const powerless = await probe(app, route, auth(keys.none));
    if (AUTHENTICATED_ROUTES[route.url] !== undefined) {
      if (guard.permission !== undefined)
        findings.push(`${name}: listed as authenticated-only but needs a permission`);
      if (powerless.status === 401 || powerless.status === 403) {
        findings.push(
          `${name}: authenticated-only, yet refused an authenticated caller (${powerless.status})`,
        );
      }
      continue;
    }
    if (guard.permission === undefined) {
      findings.push(`${name}: no permission guard, and not listed in AUTHENTICATED_ROUTES`);
    }
    if (powerless.status !== 403 || (route.method !== "HEAD" && powerless.code !== "FORBIDDEN")) {
      findings.push(
        `${name}: a credential without permissions got ${powerless.status} ${powerless.code ?? ""}`,
      );
    }
    if (guard.permission !== undefined) {
      // The permission the route names is the one it checks: holding exactly it gets past the guard.
      const holder = await probe(app, route, auth(await keys.withPermission(guard.permission)));
      if (holder.status === 401 || holder.status === 403) {
        findings.push(`${name}: a credential holding ${guard.permission} was refused (${holder.status})`);
      }
    }
  }
  return findings;
}

describe("every route is guarded", () => {
  let fx: RuntimeFixture;
  let extra: RuntimeFixture;
  const keysFor = (fixture: RuntimeFixture) => {
    const byPermission = new Map<string, string>();
    const make = async (principal: string, permissions: string[]) =>
      (
        await createApiKey(
          fixture.runtime.stores.apiKeys,
          { name: principal, principal, kind: "user", permissions },
          { actor: "test" },
        )
      ).key;
    return {
      make,
      async withPermission(permission: string) {
        const existing = byPermission.get(permission);
        if (existing !== undefined) return existing;
        const key = await make(`holder-${byPermission.size}`, [permission]);
        byPermission.set(permission, key);
        return key;
      },
    };
  };

  beforeAll(async () => {
    fx = await startRuntime({ listen: false });
    extra = await startRuntime({ listen: false });
  });
  afterAll(async () => {
    await fx?.close();
    await extra?.close();
  });

  it("the route table sees every route fastify serves", async () => {
    await fx.runtime.app.ready();
    const routes = registeredRoutes(fx.runtime.app);
    const printed = fx.runtime.app.printRoutes({ commonPrefix: false });
    const methods = [...printed.matchAll(/\(([A-Z, ]+)\)/g)].flatMap((match) => match[1]!.split(", "));
    expect(routes.length).toBe(methods.length);
    for (const route of routes) {
      expect(fx.runtime.app.hasRoute({ method: route.method, url: route.url }), route.url).toBe(true);
    }
    // The lists in this file name routes that exist, so they cannot go stale unnoticed.
    for (const url of [...Object.keys(PUBLIC_ROUTES), ...Object.keys(AUTHENTICATED_ROUTES)]) {
      expect(
        routes.some((route) => route.url === url),
        url,
      ).toBe(true);
    }
  });

  it("leaves no route open: 401 without credentials, 403 FORBIDDEN without the route's permission", async () => {
    const keys = keysFor(fx);
    const none = await keys.make("powerless", []);
    const before = await fx.runtime.audit.query({ eventType: "admin_action", limit: 10_000 });
    expect(await findOpenRoutes(fx.runtime.app, { ...keys, none })).toEqual([]);

    // Every refusal was recorded (before it was answered), naming the route and the permission it needs.
    const denials = (await fx.runtime.audit.query({ eventType: "admin_action", limit: 10_000 }))
      .slice(before.length)
      .filter((event) => event.actor === "powerless");
    const guarded = registeredRoutes(fx.runtime.app).filter((route) => route.guard?.permission !== undefined);
    expect(denials.map((event) => event.target).sort()).toEqual(
      guarded.map((route) => `route:${route.method} ${route.url}`).sort(),
    );
    for (const event of denials) {
      expect(event).toMatchObject({ outcome: "deny", code: "FORBIDDEN" });
      expect(typeof event.metadata?.permission).toBe("string");
    }
  });

  it("catches a route added without a guard", async () => {
    extra.runtime.app.get("/v1/debug/state", async () => ({ secrets: "everything" }));
    extra.runtime.app.post("/v1/debug/reset", { config: { guard: { public: true } } }, async () => ({}));
    const keys = keysFor(extra);
    const none = await keys.make("powerless", []);
    expect(await findOpenRoutes(extra.runtime.app, { ...keys, none })).toEqual([
      "GET /v1/debug/state: no permission guard, and not listed in AUTHENTICATED_ROUTES",
      "GET /v1/debug/state: a credential without permissions got 200 ",
      "HEAD /v1/debug/state: no permission guard, and not listed in AUTHENTICATED_ROUTES",
      "HEAD /v1/debug/state: a credential without permissions got 200 ",
      "POST /v1/debug/reset: public without being listed (with a reason) in PUBLIC_ROUTES",
    ]);
  });
});
