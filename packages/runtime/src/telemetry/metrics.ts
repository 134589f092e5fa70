// Prometheus metrics for the runtime: requests by route and code, refusals by code, latency.
import { Counter, Histogram, Registry, collectDefaultMetrics } from "prom-client";

export interface RuntimeMetrics {
  readonly registry: Registry;
  readonly requests: Counter<"route" | "method" | "status">;
  readonly refusals: Counter<"code">;
  readonly latency: Histogram<"route" | "method">;
}

/** A metrics set on its own registry (not prom-client's global one, so tests can run several runtimes). */
export function createRuntimeMetrics(): RuntimeMetrics {
  const registry = new Registry();
  collectDefaultMetrics({ register: registry, prefix: "signet_process_" });
  return {
    registry,
    requests: new Counter({
      name: "signet_http_requests_total",
      help: "HTTP requests by route, method and status code",
      labelNames: ["route", "method", "status"],
      registers: [registry],
    }),
    refusals: new Counter({
      name: "signet_refusals_total",
      help: "Refused requests and envelopes by error code",
      labelNames: ["code"],
      registers: [registry],
    }),
    latency: new Histogram({
      name: "signet_http_request_duration_seconds",
      help: "HTTP request latency",
      labelNames: ["route", "method"],
      buckets: [0.0005, 0.001, 0.0025, 0.005, 0.01, 0.025, 0.05, 0.1, 0.25, 0.5, 1, 2.5, 5],
      registers: [registry],
    }),
  };
}
