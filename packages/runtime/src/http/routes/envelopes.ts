// POST /v1/envelopes: a signed envelope in, the receipt and the executor's signed result out.
import { SignetError } from "@signet/protocol";
import type { FastifyInstance } from "fastify";
import type { InvocationPipeline } from "../../pipeline/invocation-pipeline.js";
import { principalOf } from "../server.js";

export function registerEnvelopeRoutes(app: FastifyInstance, deps: { pipeline: InvocationPipeline }): void {
  // This route verifies the signature over the exact bytes received, so it takes the body as a
  // Buffer instead of the generic parser's object (no second parse, no re-serialization).
  void app.register(async (scope) => {
    scope.removeAllContentTypeParsers();
    scope.addContentTypeParser("application/json", { parseAs: "buffer" }, (_request, body: Buffer, done) =>
      done(null, body),
    );
    scope.post("/v1/envelopes", async (request) => {
      if (!Buffer.isBuffer(request.body)) {
        throw new SignetError("INVALID_ENVELOPE", "The body must be a JSON envelope", { reason: "body" });
      }
      return deps.pipeline.submit(request.body, { principal: principalOf(request), sourceIp: request.ip });
    });
  });
}
