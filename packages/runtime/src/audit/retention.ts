// Audit retention: entries older than `audit.retention_days` are pruned down to a checkpoint, and the
// prune is itself an audited event.
import type { Logger } from "pino";
import type { RuntimeConfig } from "../config/load-config.js";
import type { AuditLog, AuditPruneResult } from "./audit-log.js";
import type { EventRecorder } from "./audit-recorder.js";

const DAY_MICROS = 86_400_000_000;

/**
 * Prunes the entries recorded before `beforeMicros` and records an `audit_pruned` entry saying what
 * went. Resolves to what was pruned, or undefined when nothing could be (no checkpoint old enough).
 *
 * Example: `await pruneAudit(log, recorder, nowMicros - 90 * DAY_MICROS, "retention")`.
 */
export async function pruneAudit(
  log: AuditLog,
  events: EventRecorder,
  beforeMicros: number,
  actor: string,
): Promise<AuditPruneResult | undefined> {
  const result = await log.prune(beforeMicros);
  if (result === undefined) return undefined;
  await events.record({
    type: "audit_pruned",
    actor,
    target: "audit",
    outcome: "success",
    metadata: {
      anchor_size: result.anchorSize,
      removed: result.removed,
      checkpoints_removed: result.checkpointsRemoved,
      before: new Date(Math.floor(beforeMicros / 1000)).toISOString(),
    },
  });
  return result;
}

/** Runs retention now (after startup) and then every `pruneIntervalMs`; `stop()` ends it. */
export function startAuditRetention(
  log: AuditLog,
  events: EventRecorder,
  settings: RuntimeConfig["audit"],
  logger: Logger,
): { stop(): void } {
  if (settings.retentionDays === 0) return { stop() {} };
  const run = (): void => {
    const cutoff = Date.now() * 1000 - settings.retentionDays * DAY_MICROS;
    pruneAudit(log, events, cutoff, "signet:retention")
      .then((result) => {
        if (result !== undefined) logger.info({ ...result }, "audit retention pruned old entries");
      })
      .catch((error: unknown) => logger.warn({ err: error }, "audit retention failed; it runs again later"));
  };
  const first = setTimeout(run, 5_000);
  const timer = setInterval(run, settings.pruneIntervalMs);
  first.unref();
  timer.unref();
  return {
    stop() {
      clearTimeout(first);
      clearInterval(timer);
    },
  };
}
