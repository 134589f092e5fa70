// POST /v1/envelopes: a signed envelope in, the receipt and the executor's signed result out.
import { SignetError } from "@signet/protocol";
import type { FastifyInstance } from "fastify";
import type { RateLimitStatus } from "../../pipeline/hooks.js";
import type { InvocationPipeline } from "../../pipeline/invocation-pipeline.js";
import { rateLimitHeaders } from "../../ratelimit/rate-limit-headers.js";
import { principalOf } from "../server.js";

export function registerEnvelopeRoutes(app: FastifyInstance, deps: { pipeline: InvocationPipeline }): void {
  // This route verifies the signature over the exact bytes received, so it takes the body as a
  // Buffer instead of the generic parser's object (no second parse, no re-serialization).
  void app.register(async (scope) => {
    scope.removeAllContentTypeParsers();
    scope.addContentTypeParser("application/json", { parseAs: "buffer" }, (_request, body: Buffer, done) =>
      done(null, body),
    );
    scope.post("/v1/envelopes", async (request, reply) => {
      if (!Buffer.isBuffer(request.body)) {
        throw new SignetError("INVALID_ENVELOPE", "The body must be a JSON envelope", { reason: "body" });
      }
      // Every answer from a call that reached the rate-limit step says where the sender's limit stands:
      // successes, refusals (RATE_LIMITED adds retry-after) and later failures alike.
      let limit: RateLimitStatus | undefined;
      try {
        return await deps.pipeline.submit(request.body, {
          principal: principalOf(request),
          sourceIp: request.ip,
          onRateLimit: (status) => (limit = status),
        });
      } finally {
        if (limit !== undefined) void reply.headers(rateLimitHeaders(limit));
      }
    });
  });
}
