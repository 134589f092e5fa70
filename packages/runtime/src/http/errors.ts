// Maps every failure to the registry's wire shape, and records refusals; internals never reach clients.
import { type ErrorCode, SignetError, isSignetError } from "@signet/protocol";
import type { FastifyError, FastifyInstance, FastifyReply, FastifyRequest } from "fastify";
import type { RuntimeMetrics } from "../telemetry/metrics.js";

/** Translates fastify's own errors (body limits, parser failures) into registry codes. */
export function toSignetError(error: unknown): SignetError {
  if (isSignetError(error)) return error;
  const fastifyError = error as Partial<FastifyError>;
  const code = fastifyError.code;
  if (code === "FST_ERR_CTP_BODY_TOO_LARGE") return new SignetError("PAYLOAD_TOO_LARGE");
  if (code === "FST_ERR_CTP_INVALID_MEDIA_TYPE") {
    return new SignetError("INVALID_REQUEST", "Content-Type must be application/json", {
      reason: "content_type",
    });
  }
  if (code === "FST_ERR_CTP_EMPTY_JSON_BODY" || code === "FST_ERR_CTP_INVALID_CONTENT_LENGTH") {
    return new SignetError("INVALID_REQUEST", "The request body is empty or malformed", { reason: "body" });
  }
  if (fastifyError.validation !== undefined) {
    return new SignetError(
      "INVALID_REQUEST",
      `Invalid request: ${fastifyError.message ?? "validation failed"}`,
      {
        reason: "validation",
      },
    );
  }
  if (typeof fastifyError.statusCode === "number" && fastifyError.statusCode === 404) {
    return new SignetError("NOT_FOUND");
  }
  return new SignetError("INTERNAL_ERROR");
}

/** Sends a SignetError in the wire shape, with Retry-After for rate limits. */
export function sendError(reply: FastifyReply, error: SignetError): FastifyReply {
  if (error.details.retry_after_ms !== undefined) {
    void reply.header("retry-after", Math.max(1, Math.ceil(error.details.retry_after_ms / 1000)));
  }
  return reply.code(error.status).type("application/json").send(error.toWire());
}

/** Installs the error and not-found handlers. Unexpected errors are logged with detail, sent as INTERNAL_ERROR. */
export function installErrorHandling(app: FastifyInstance, metrics: RuntimeMetrics): void {
  app.setErrorHandler((error: unknown, request: FastifyRequest, reply: FastifyReply) => {
    const signetError = toSignetError(error);
    if (signetError.code === "INTERNAL_ERROR" && !isSignetError(error)) {
      request.log.error({ err: error }, "unexpected error");
    }
    metrics.refusals.inc({ code: signetError.code });
    return sendError(reply, signetError);
  });
  app.setNotFoundHandler((_request, reply) => {
    const code: ErrorCode = "NOT_FOUND";
    metrics.refusals.inc({ code });
    return sendError(reply, new SignetError(code, "No such route"));
  });
}
