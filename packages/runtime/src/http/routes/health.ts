// Liveness, readiness and metrics: the first two need no credentials, metrics needs metrics:read.
import type { FastifyInstance } from "fastify";
import type { RuntimeMetrics } from "../../telemetry/metrics.js";

export function registerHealthRoutes(
  app: FastifyInstance,
  deps: { metrics: RuntimeMetrics; ready: () => Promise<boolean>; version: string },
): void {
  app.get("/v1/health", { config: { guard: { public: true } } }, async () => ({
    status: "ok",
    version: deps.version,
  }));

  app.get("/v1/ready", { config: { guard: { public: true } } }, async (_request, reply) => {
    const ready = await deps.ready().catch(() => false);
    return reply.code(ready ? 200 : 503).send({ status: ready ? "ready" : "not_ready" });
  });

  app.get("/metrics", { config: { guard: { permission: "metrics:read" } } }, async (_request, reply) =>
    reply.type(deps.metrics.registry.contentType).send(await deps.metrics.registry.metrics()),
  );
}
