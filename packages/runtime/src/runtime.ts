// Assembles a runtime from its configuration: stores, registry, authentication, HTTPS, and shutdown.
import { randomUUID } from "node:crypto";
import { existsSync, readFileSync } from "node:fs";
import type { AddressInfo } from "node:net";
import { Ed25519PrivateKey } from "@signet/protocol";
import type { FastifyInstance } from "fastify";
import type { Logger } from "pino";
import type { AuditLog } from "./audit/audit-log.js";
import { type EventRecorder, createAuditRecorder } from "./audit/audit-recorder.js";
import { startAuditRetention } from "./audit/retention.js";
import { PostgresAuditLog } from "./audit/postgres-audit-log.js";
import { SqliteAuditLog } from "./audit/sqlite-audit-log.js";
import { registerAuditRoutes } from "./http/routes/audit.js";
import { type ApiKeyCacheOptions, DEFAULT_API_KEY_CACHE, createApiKeyCache } from "./auth/api-key-cache.js";
import { type Authenticator, createAuthenticator } from "./auth/authenticator.js";
import { createJwtVerifier } from "./auth/jwt.js";
import {
  DEFAULT_ROLE_ASSIGNMENT_CACHE,
  type RoleAssignments,
  createRoleAssignments,
} from "./auth/role-assignments.js";
import { loadRoleCatalogue } from "./auth/roles-file.js";
import { ConfigError, type RuntimeConfig } from "./config/load-config.js";
import { createHttpServer } from "./http/server.js";
import websocket from "@fastify/websocket";
import { MAX_FRAME_BYTES } from "@signet/protocol";
import { registerAgentRoutes } from "./http/routes/agents.js";
import { registerConnectRoute } from "./http/routes/connect.js";
import { registerEnvelopeRoutes } from "./http/routes/envelopes.js";
import { registerSessionRoutes } from "./http/routes/sessions.js";
import type { AuthRequest } from "./auth/authenticator.js";
import { SessionService } from "./sessions/session-service.js";
import { WatchHub } from "./sessions/session-watch.js";
import { registerPolicyRoutes } from "./http/routes/policy.js";
import { InvocationPipeline } from "./pipeline/invocation-pipeline.js";
import type { PolicyEngine } from "./pipeline/hooks.js";
import { compilePolicy } from "./policy/compile.js";
import { LivePolicy } from "./policy/live-policy.js";
import { createPipelinePolicy } from "./policy/pipeline-policy.js";
import { formatProblem, PolicyLoadError } from "./policy/policy-error.js";
import { loadPolicyDirectory } from "./policy/policy-file.js";
import { type PolicyWatcher, watchPolicyDirectory } from "./policy/watch.js";
import { ClusterLink } from "./routing/cluster.js";
import { Router } from "./routing/router.js";
import { registerAuthRoutes } from "./http/routes/auth-keys.js";
import { registerRoleRoutes } from "./http/routes/auth-roles.js";
import { registerHealthRoutes } from "./http/routes/health.js";
import { AgentRegistry } from "./registry/agent-registry.js";
import { agentPolicySources } from "./registry/agent-policy.js";
import { openStores } from "./store/open.js";
import { type SignetRateLimiter, createRateLimiter } from "./ratelimit/signet-rate-limiter.js";
import type { ApiKeyStore, Stores } from "./store/types.js";
import { createLogger } from "./telemetry/logger.js";
import { type RuntimeMetrics, createRuntimeMetrics } from "./telemetry/metrics.js";
import { buildTlsOptions } from "./tls/server-options.js";

export const RUNTIME_VERSION = "0.1.0";

/** A running (or ready to run) Signet runtime. */
export interface Runtime {
  readonly config: RuntimeConfig;
  readonly app: FastifyInstance;
  readonly stores: Stores;
  readonly registry: AgentRegistry;
  readonly pipeline: InvocationPipeline;
  /** Coordination sessions (docs/sessions.md). */
  readonly sessions: SessionService;
  readonly router: Router;
  readonly events: EventRecorder;
  /** The tamper-evident audit log the events are recorded in. */
  readonly audit: AuditLog;
  /** The link to peer instances through Redis, when `redis.url` is configured. */
  readonly cluster: ClusterLink | undefined;
  /** Role assignments (RBAC for the admin API), cached; changes through it apply to the next request. */
  readonly roles: RoleAssignments;
  readonly metrics: RuntimeMetrics;
  readonly logger: Logger;
  /** The runtime's own signing key (receipts, checkpoints). */
  readonly signingKey: Ed25519PrivateKey;
  /** Rate limits: pipeline step 8, session starts, unauthenticated requests per client address. */
  readonly limiter: SignetRateLimiter;
  /** Starts listening; resolves to the base URL (`https://127.0.0.1:8443`). */
  start(): Promise<string>;
  /** Stops accepting, drains in-flight requests, closes the stores. Safe to call twice. */
  stop(): Promise<void>;
}

export interface RuntimeOptions {
  readonly logger?: Logger;
  /** Use these stores instead of opening the configured ones (tests). */
  readonly stores?: Stores;
  /** How long verified API key records are cached; defaults to DEFAULT_API_KEY_CACHE (5 s). */
  readonly apiKeyCache?: ApiKeyCacheOptions;
}

function loadSigningKey(path: string): Ed25519PrivateKey {
  let pem: string;
  try {
    pem = readFileSync(path, "utf8");
  } catch (error) {
    throw new ConfigError([
      `runtime.signing_key_path: cannot read ${path} (${(error as NodeJS.ErrnoException).code ?? "error"}); run \`signet init\``,
    ]);
  }
  try {
    return Ed25519PrivateKey.fromPem(pem);
  } catch {
    throw new ConfigError([`runtime.signing_key_path: ${path} is not an Ed25519 private key (PKCS#8 PEM)`]);
  }
}

async function openConfiguredStores(config: RuntimeConfig, logger: Logger): Promise<Stores> {
  const url = config.storage.databaseUrl;
  if (url === undefined) return openStores({ kind: "sqlite", path: config.storage.sqlitePath });
  if (!/^postgres(ql)?:\/\//.test(url))
    throw new ConfigError(["storage.database_url: must be a postgres:// URL"]);
  // The URL may carry a password: it never reaches a log line or an error message.
  return openStores({
    kind: "postgres",
    url,
    onIdleError: (error: Error) =>
      logger.warn({ err: { message: error.message } }, "database connection lost"),
  });
}

/** The audit log: in PostgreSQL beside the other stores when they are there, else its own SQLite file. */
async function openAuditLog(config: RuntimeConfig, key: Ed25519PrivateKey): Promise<AuditLog> {
  const settings = {
    key,
    checkpointEvery: config.audit.checkpointEvery,
    checkpointIntervalMs: config.audit.checkpointIntervalMs,
  };
  const url = config.storage.databaseUrl;
  if (url !== undefined) {
    return PostgresAuditLog.open({ url, ...settings, statementTimeoutMs: config.audit.busyTimeoutMs });
  }
  return new SqliteAuditLog({
    path: config.audit.path,
    ...settings,
    synchronous: config.audit.synchronous,
    busyTimeoutMs: config.audit.busyTimeoutMs,
  });
}

function readStaticKeys(paths: readonly string[]): string[] {
  return paths.map((path) => {
    try {
      return readFileSync(path, "utf8");
    } catch (error) {
      throw new ConfigError([
        `auth.jwt.static_keys: cannot read ${path} (${(error as NodeJS.ErrnoException).code ?? "error"})`,
      ]);
    }
  });
}

/** Builds the authenticator the configuration asks for; each failure is recorded as an event. */
function buildAuthenticator(
  config: RuntimeConfig,
  apiKeys: ApiKeyStore,
  events: EventRecorder,
  logger: Logger,
): Authenticator {
  const jwt = config.auth.jwt;
  return createAuthenticator({
    ...(config.auth.apiKeys ? { apiKeys } : {}),
    ...(jwt === undefined
      ? {}
      : {
          jwt: createJwtVerifier({
            issuer: jwt.issuer,
            audience: jwt.audience,
            algorithms: jwt.algorithms,
            ...(jwt.jwksUrl === undefined ? {} : { jwksUrl: jwt.jwksUrl }),
            ...(jwt.staticKeys.length === 0 ? {} : { staticKeys: readStaticKeys(jwt.staticKeys) }),
            clockToleranceSec: jwt.clockToleranceSec,
            principalKind: jwt.principalKind,
            permissionsClaim: jwt.permissionsClaim,
          }),
        }),
    // Client certificates count only when the TLS layer asks for them and checks them against a CA.
    ...(config.tls !== undefined && config.tls.clientAuth !== "none"
      ? { mtlsPrincipals: config.auth.mtls.principals }
      : {}),
    onFailure: async (reason, method, hints) => {
      try {
        await events.record({
          type: "auth_failure",
          outcome: "deny",
          code: "UNAUTHENTICATED",
          metadata: { reason, method, ...hints },
        });
      } catch (error) {
        logger.error({ err: error }, "could not record an authentication failure");
      }
    },
  });
}

/**
 * The policy step: the policy directory's files plus agent definitions' rules, or (development only,
 * without a directory) agent definitions' rules alone. Either way, default deny.
 */
function openPolicy(
  config: RuntimeConfig,
  logger: Logger,
  registry: AgentRegistry,
  events: EventRecorder,
): { live: LivePolicy; engine: PolicyEngine; watcher?: PolicyWatcher } {
  const dir = config.policy.dir;
  // Every reload, and every reload refused, is an audited event.
  const recordReload = (trigger: string, generation: number, problems?: readonly string[]): void => {
    events
      .record({
        type: "policy_reloaded",
        actor: `signet:${trigger}`,
        target: `policy:${dir}`,
        outcome: problems === undefined ? "success" : "failure",
        metadata: { generation, ...(problems === undefined ? {} : { problems }) },
      })
      .catch((error: unknown) => logger.error({ err: error }, "could not record a policy reload"));
  };
  if (!existsSync(dir)) {
    if (config.env === "production") {
      throw new ConfigError([
        `policy.dir: ${dir} does not exist; production needs explicit policy (signet init writes a development policy)`,
      ]);
    }
    // Default deny even without files: an empty policy allows nothing but what agent definitions grant.
    logger.warn(
      { dir },
      "no policy directory: every invocation is denied unless an agent definition allows it (run `signet init` for a development policy)",
    );
    const live = new LivePolicy(compilePolicy(agentPolicySources(registry.agentsSnapshot())));
    registry.onAgentDeployed(() => {
      try {
        live.replace(compilePolicy(agentPolicySources(registry.agentsSnapshot())));
        recordReload("agent_deployed", live.generation);
      } catch (error) {
        const problems =
          error instanceof PolicyLoadError ? error.problems.map(formatProblem) : [String(error)];
        logger.error({ problems }, "policy recompilation after a deploy failed; keeping the current policy");
        recordReload("agent_deployed", live.generation, problems);
      }
    });
    return { live, engine: createPipelinePolicy(live, { rolesOf: (principal) => principal.roles ?? [] }) };
  }
  let live: LivePolicy;
  try {
    live = new LivePolicy(loadPolicyDirectory(dir, agentPolicySources(registry.agentsSnapshot())));
  } catch (error) {
    if (error instanceof PolicyLoadError) throw new ConfigError(error.problems.map(formatProblem));
    throw error;
  }
  const watcher = config.policy.watch
    ? watchPolicyDirectory(dir, {
        debounceMs: config.policy.debounceMs,
        extraSources: () => agentPolicySources(registry.agentsSnapshot()),
        onChange: (next) => {
          live.replace(next);
          logger.info({ generation: live.generation }, "policy reloaded");
          recordReload("policy_watcher", live.generation);
        },
        onError: (error) => {
          const problems =
            error instanceof PolicyLoadError ? error.problems.map(formatProblem) : [String(error)];
          logger.error({ problems }, "policy reload failed; keeping the current policy");
          recordReload("policy_watcher", live.generation, problems);
        },
      })
    : undefined;
  // A deployed definition's rules apply from its next call on.
  registry.onAgentDeployed(() => {
    try {
      live.replace(loadPolicyDirectory(dir, agentPolicySources(registry.agentsSnapshot())));
      recordReload("agent_deployed", live.generation);
    } catch (error) {
      const problems = error instanceof PolicyLoadError ? error.problems.map(formatProblem) : [String(error)];
      logger.error({ problems }, "policy recompilation after a deploy failed; keeping the current policy");
      recordReload("agent_deployed", live.generation, problems);
    }
  });
  return {
    live,
    engine: createPipelinePolicy(live, { rolesOf: (principal) => principal.roles ?? [] }),
    ...(watcher === undefined ? {} : { watcher }),
  };
}

/**
 * Creates a runtime from a loaded configuration. Nothing listens until `start()`.
 *
 * Example:
 * ```ts
 * const runtime = await createRuntime(loadConfig({ dataDir: ".signet" }));
 * const url = await runtime.start();
 * ```
 */
export async function createRuntime(config: RuntimeConfig, options: RuntimeOptions = {}): Promise<Runtime> {
  const logger = options.logger ?? createLogger({ level: config.logging.level, redaction: config.redaction });
  const signingKey = loadSigningKey(config.runtimeKeyPath);
  const roleCatalogue = loadRoleCatalogue(config.rbac.rolesFile, { required: config.rbac.rolesFileRequired });
  const https =
    config.tls === undefined
      ? undefined
      : await buildTlsOptions({
          certPath: config.tls.certPath,
          keyPath: config.tls.keyPath,
          clientAuth: config.tls.clientAuth,
          ...(config.tls.clientCaPath === undefined ? {} : { clientCa: config.tls.clientCaPath }),
        }).catch((error: unknown) => {
          throw new ConfigError([(error as Error).message]);
        });
  const stores = options.stores ?? (await openConfiguredStores(config, logger));
  let audit: AuditLog;
  try {
    audit = await openAuditLog(config, signingKey);
  } catch (error) {
    if (options.stores === undefined) await stores.close();
    throw error;
  }
  const events = createAuditRecorder(audit, { redaction: config.redaction });
  let limiter: SignetRateLimiter | undefined;
  try {
    // One cache for verifying and revoking, so a revocation through this runtime applies at once.
    const apiKeys = createApiKeyCache(stores.apiKeys, options.apiKeyCache ?? DEFAULT_API_KEY_CACHE);
    const registry = await AgentRegistry.open(stores.agents, events, {
      keyRotationGraceMs: config.registry.keyRotationGraceMs,
    });
    const metrics = createRuntimeMetrics();
    // In this process, or shared through Redis (failing open to this process while Redis is down).
    limiter = await createRateLimiter({
      limits: config.rateLimits,
      ...(config.rateLimits.backend === "redis" && config.redis !== undefined
        ? { redis: { ...config.redis, keyPrefix: `${config.redis.keyPrefix}:rl` } }
        : {}),
      logger,
    });
    const rateLimiter = limiter;
    const authenticator = buildAuthenticator(config, apiKeys, events, logger);
    const roles = createRoleAssignments(stores.roles, roleCatalogue, {
      ...DEFAULT_ROLE_ASSIGNMENT_CACHE,
      ttlMs: config.rbac.cacheTtlMs,
    });
    // Every request runs with its credential's permissions and those of its principal's roles.
    const authenticate = async (request: AuthRequest) =>
      roles.resolve(await authenticator.authenticate(request));
    const app = createHttpServer({
      config,
      ...(https === undefined ? {} : { https: https as unknown as Record<string, unknown> }),
      logger,
      metrics,
      events,
      authenticate,
      clientLimits: rateLimiter,
    });
    registerHealthRoutes(app, { metrics, ready: () => stores.ping(), version: RUNTIME_VERSION });
    registerAgentRoutes(app, { registry });
    registerAuthRoutes(app, { apiKeys, events });
    registerRoleRoutes(app, {
      roles,
      apiKeys,
      events,
      ...(config.tls !== undefined && config.tls.clientAuth !== "none"
        ? { certificatePrincipals: config.auth.mtls.principals }
        : {}),
    });

    const router = new Router({ lateResultHoldMs: 60_000 });
    const policy = openPolicy(config, logger, registry, events);
    const sessions = new SessionService({
      store: stores.sessions,
      events,
      runtimeKey: signingKey,
      isAgent: (id) => registry.hasAgent(id),
      onError: (error, what) => logger.error({ err: error }, `sessions: ${what} failed`),
      settings: {
        defaultTtlMs: config.sessions.defaultTtlMs,
        maxTtlMs: config.sessions.maxTtlMs,
        maxParticipants: config.sessions.maxParticipants,
      },
    });
    // Watch streams: one reader of the session event log for every watcher on this instance.
    const hub = new WatchHub({
      store: stores.sessions,
      pollMs: config.sessions.watchPollMs,
      onError: (error) => logger.warn({ err: error }, "session watch read failed"),
    });
    sessions.subscribe(() => hub.poke());
    const pipeline = new InvocationPipeline({
      sessions,
      policy: policy.engine,
      limits: rateLimiter,
      registry,
      replay: stores.replay,
      events,
      router,
      runtimeKey: signingKey,
      metrics,
      settings: {
        maxBytes: config.envelopes.maxBytes,
        maxDepth: config.envelopes.maxDepth,
        freshnessWindowMs: config.envelopes.freshnessWindowMs,
        idempotencyRetentionMs: config.envelopes.idempotencyRetentionMs,
        callTimeoutMs: config.routing.callTimeoutMs,
      },
    });
    registerEnvelopeRoutes(app, { pipeline });
    registerSessionRoutes(app, {
      pipeline,
      sessions,
      hub,
      heartbeatMs: config.sessions.watchHeartbeatMs,
      authenticate,
    });
    registerPolicyRoutes(app, { live: policy.live });
    registerAuditRoutes(app, { log: audit, events });
    await app.register(websocket, { options: { maxPayload: MAX_FRAME_BYTES } });
    await app.register(async (scope) => {
      registerConnectRoute(scope, {
        registry,
        router,
        events,
        runtimeKid: signingKey.kid,
        runtimePublicKey: signingKey.publicKey.toBase64Url(),
        settings: {
          maxInFlight: config.routing.maxInFlight,
          heartbeatMs: config.routing.heartbeatMs,
          helloTimeoutMs: 10_000,
        },
      });
    });
    // Expired nonces and outcomes are pruned in the background; a failure here only delays pruning.
    const pruner = setInterval(() => {
      stores.replay
        .prune(Date.now())
        .catch((error: unknown) => logger.warn({ err: error }, "replay prune failed"));
    }, 60_000);
    pruner.unref();
    // Sessions past their TTL expire when next read, and here in the background; closed ones are
    // deleted once sessions.retention_days have passed.
    const retentionMs = config.sessions.retentionDays * 86_400_000;
    const sweeper = setInterval(() => {
      sessions
        .sweep()
        .then(() => (retentionMs > 0 ? sessions.prune(retentionMs) : 0))
        .catch((error: unknown) => logger.warn({ err: error }, "session sweep failed"));
    }, config.sessions.sweepIntervalMs);
    sweeper.unref();
    const retention = startAuditRetention(audit, events, config.audit, logger);
    // Several instances: executors anywhere serve calls arriving anywhere, and registry changes
    // (deploys, rotations, revocations) reach every instance at once through Redis; on a shared
    // database a periodic reload is the backstop when a change announcement was missed.
    const cluster =
      config.redis === undefined
        ? undefined
        : await ClusterLink.start({
            url: config.redis.url,
            keyPrefix: `${config.redis.keyPrefix}:cluster`,
            instanceId: randomUUID(),
            router,
            registry,
            logger,
          });
    const registryReload =
      config.storage.databaseUrl === undefined
        ? undefined
        : setInterval(() => {
            registry
              .reload()
              .catch((error: unknown) => logger.warn({ err: error }, "registry reload failed"));
          }, 10_000);
    registryReload?.unref();

    let stopping: Promise<void> | undefined;
    return {
      config,
      app,
      stores,
      registry,
      pipeline,
      sessions,
      router,
      events,
      audit,
      cluster,
      roles,
      metrics,
      logger,
      signingKey,
      limiter: rateLimiter,
      async start() {
        await app.listen({ host: config.server.host, port: config.server.port });
        const address = app.server.address() as AddressInfo;
        const host = address.family === "IPv6" ? `[${address.address}]` : address.address;
        const url = `${config.server.insecure ? "http" : "https"}://${host}:${address.port}`;
        if (config.server.insecure) {
          logger.warn(
            { url },
            "INSECURE MODE: plaintext HTTP, no TLS, dev identities accepted. Never use this outside local development.",
          );
        }
        logger.info(
          { url, env: config.env, client_auth: config.tls?.clientAuth ?? "none" },
          "signet runtime listening",
        );
        return url;
      },
      stop() {
        stopping ??= (async () => {
          clearInterval(pruner);
          clearInterval(sweeper);
          // Watch streams end first: an open stream would keep the server from closing.
          hub.close();
          if (registryReload !== undefined) clearInterval(registryReload);
          retention.stop();
          policy.watcher?.close();
          await cluster?.close();
          router.close();
          await app.close();
          await rateLimiter.close();
          // Queued entries are written, and a last checkpoint signed, before the log closes.
          await audit.close();
          await stores.close();
        })();
        return stopping;
      },
    };
  } catch (error) {
    await limiter?.close();
    await audit.close();
    if (options.stores === undefined) await stores.close();
    throw error;
  }
}
