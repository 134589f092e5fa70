// Several runtime instances behind one load balancer, linked through Redis pub/sub.
//
// Each instance has a random id and three channels under the key prefix:
//   PREFIX:targets              every instance announces the targets its executors serve (on change,
//                               and every heartbeat); a peer not heard from for 3 heartbeats is gone
//   PREFIX:calls:ID             calls forwarded to instance ID
//   PREFIX:replies:ID           results and refusals for calls instance ID forwarded
//   PREFIX:registry             registry changes (deploys, rotations, revocations) to apply
//
// An invocation arrives at instance A. The pipeline decides, audits and signs the delivery as always;
// when no executor connected to A can take it, the router hands it to this link, which publishes it
// (envelope, signed delivery, deadline, allowed agents) to an instance B that announced the target.
// B dispatches it to its own executor under the same call id (the delivery was signed with it; every
// instance holds the same runtime key) and publishes the result back; A verifies the result, audits
// it and answers, exactly as for a local executor. A call nobody received (PUBLISH reached no
// subscriber, or Redis is down) is refused as TARGET_UNAVAILABLE with nothing executed, so it may be
// retried; one B received but never answered times out like a local call (its outcome is unknown).
import { SignetError, isErrorCode, isSignetError } from "@signet/protocol";
import { Redis } from "ioredis";
import type { Logger } from "pino";
import type { AgentRegistry, RegistryChange } from "../registry/agent-registry.js";
import type { CallResult, ForwardedCall, RemoteDispatcher, Router } from "./router.js";

export interface ClusterLinkOptions {
  readonly url: string;
  readonly keyPrefix?: string;
  readonly instanceId: string;
  readonly router: Router;
  readonly registry: AgentRegistry;
  readonly logger: Logger;
  /** How often targets are announced. Default 1000 ms; a peer silent for 3 heartbeats is dropped. */
  readonly heartbeatMs?: number;
  /** How long after its deadline a forwarded call's result is still accepted. Default 60 s. */
  readonly lateResultHoldMs?: number;
  readonly connectTimeoutMs?: number;
}

interface Peer {
  targets: Set<string>;
  seenAt: number;
}

interface Waiting {
  readonly resolve: (result: CallResult) => void;
  readonly reject: (error: SignetError) => void;
  readonly timer: NodeJS.Timeout;
}

type Reply =
  | { readonly kind: "result"; readonly call_id: string; readonly wire: string; readonly executor: string }
  | {
      readonly kind: "error";
      readonly call_id: string;
      readonly code: string;
      readonly message: string;
      readonly reason?: string;
    };

interface CallMessage extends ForwardedCall {
  readonly from: string;
}

function notDelivered(message: string): SignetError {
  // The call reached no executor: the pipeline releases the message id, so it may be retried.
  return new SignetError("TARGET_UNAVAILABLE", message, { reason: "not_delivered" });
}

/**
 * The link between this instance and its peers. `start()` subscribes and begins announcing; the
 * router then forwards what it cannot place locally.
 *
 * Example:
 * ```ts
 * const link = await ClusterLink.start({ url, instanceId, router, registry, logger });
 * // ...
 * await link.close();
 * ```
 */
export class ClusterLink implements RemoteDispatcher {
  readonly #options: Required<Omit<ClusterLinkOptions, "connectTimeoutMs">>;
  readonly #publisher: Redis;
  readonly #subscriber: Redis;
  readonly #peers = new Map<string, Peer>();
  readonly #waiting = new Map<string, Waiting>();
  readonly #cursor = new Map<string, number>();
  #heartbeat: NodeJS.Timeout | undefined;
  #announced = "";
  /** Registry changes not yet announced (Redis was down): sent when the connection is back. */
  #unannounced: RegistryChange[] = [];
  #closed = false;

  private constructor(options: ClusterLinkOptions, publisher: Redis, subscriber: Redis) {
    this.#options = {
      keyPrefix: "signet",
      heartbeatMs: 1000,
      lateResultHoldMs: 60_000,
      ...options,
    };
    this.#publisher = publisher;
    this.#subscriber = subscriber;
  }

  static async start(options: ClusterLinkOptions): Promise<ClusterLink> {
    const connection = {
      connectTimeout: options.connectTimeoutMs ?? 2000,
      // Publishing fails at once while Redis is down (the call is refused, not queued).
      enableOfflineQueue: false,
      maxRetriesPerRequest: 0,
      retryStrategy: (attempt: number) => Math.min(50 * 2 ** Math.min(attempt, 6), 2000),
      lazyConnect: true,
    };
    const publisher = new Redis(options.url, connection);
    // The subscriber queues its SUBSCRIBE until connected and re-subscribes after a reconnect.
    const subscriber = new Redis(options.url, { ...connection, enableOfflineQueue: true });
    for (const client of [publisher, subscriber]) client.on("error", () => undefined);
    const link = new ClusterLink(options, publisher, subscriber);
    await Promise.all([
      publisher.connect().catch(() => undefined),
      subscriber.connect().catch(() => undefined),
    ]);
    const prefix = link.#options.keyPrefix;
    subscriber.on("message", (channel: string, message: string) => link.#receive(channel, message));
    await subscriber
      .subscribe(
        `${prefix}:targets`,
        `${prefix}:registry`,
        `${prefix}:calls:${options.instanceId}`,
        `${prefix}:replies:${options.instanceId}`,
      )
      .catch((error: unknown) =>
        options.logger.warn({ err: { message: String(error) } }, "cluster link: Redis unavailable; retrying"),
      );
    options.registry.onChange((change) => link.#announceChange(change));
    // Back from an outage: send what could not be announced, and reload what peers announced while
    // this instance could not hear them (their messages are not replayed by Redis).
    let subscribedOnce = false;
    subscriber.on("ready", () => {
      if (subscribedOnce) {
        options.registry
          .reload()
          .catch((error: unknown) =>
            options.logger.warn({ err: { message: String(error) } }, "cluster link: registry reload failed"),
          );
      }
      subscribedOnce = true;
      link.#announce(true);
    });
    publisher.on("ready", () => link.#flushUnannounced());
    options.router.onTargetsChanged(() => link.#announce(false));
    link.#heartbeat = setInterval(() => link.#announce(true), link.#options.heartbeatMs);
    link.#heartbeat.unref();
    link.#announce(true);
    options.router.setRemote(link);
    return link;
  }

  get instanceId(): string {
    return this.#options.instanceId;
  }

  /** True while both Redis connections are up. */
  get connected(): boolean {
    return this.#publisher.status === "ready" && this.#subscriber.status === "ready";
  }

  /** Peers alive now, with what they serve (for /ready and tests). */
  peers(): Map<string, readonly string[]> {
    this.#expire();
    return new Map([...this.#peers].map(([id, peer]) => [id, [...peer.targets]]));
  }

  has(target: string): boolean {
    this.#expire();
    for (const peer of this.#peers.values()) if (peer.targets.has(target)) return true;
    return false;
  }

  forward(call: ForwardedCall): Promise<CallResult> {
    this.#expire();
    const candidates = [...this.#peers].filter(([, peer]) => peer.targets.has(call.target)).map(([id]) => id);
    if (candidates.length === 0 || this.#closed) {
      return Promise.reject(notDelivered("No instance has an executor for this target"));
    }
    const index = (this.#cursor.get(call.target) ?? 0) % candidates.length;
    this.#cursor.set(call.target, index + 1);
    const peer = candidates[index]!;
    const result = new Promise<CallResult>((resolve, reject) => {
      const hold = Math.max(0, call.deadline - Date.now()) + this.#options.lateResultHoldMs;
      const timer = setTimeout(() => {
        if (this.#waiting.delete(call.callId)) {
          reject(new SignetError("TIMEOUT", undefined, { reason: "no_result" }));
        }
      }, hold);
      timer.unref();
      this.#waiting.set(call.callId, { resolve, reject, timer });
    });
    const message: CallMessage = { ...call, from: this.#options.instanceId };
    this.#publisher.publish(`${this.#options.keyPrefix}:calls:${peer}`, JSON.stringify(message)).then(
      (receivers) => {
        if (receivers === 0)
          this.#settle(call.callId, notDelivered("The instance holding the executor is gone"));
      },
      () => this.#settle(call.callId, notDelivered("Redis is unavailable: the call could not be forwarded")),
    );
    return result;
  }

  async close(): Promise<void> {
    if (this.#closed) return;
    this.#closed = true;
    if (this.#heartbeat !== undefined) clearInterval(this.#heartbeat);
    this.#options.router.setRemote(undefined);
    // Peers drop this instance at once rather than after three heartbeats.
    await this.#publisher
      .publish(
        `${this.#options.keyPrefix}:targets`,
        JSON.stringify({ instance: this.#options.instanceId, targets: [], leaving: true }),
      )
      .catch(() => undefined);
    for (const [callId] of this.#waiting) {
      this.#settle(
        callId,
        new SignetError("UNAVAILABLE", "The runtime is shutting down", { reason: "shutdown" }),
      );
    }
    this.#subscriber.disconnect();
    this.#publisher.disconnect();
  }

  #settle(callId: string, outcome: CallResult | SignetError): void {
    const waiting = this.#waiting.get(callId);
    if (waiting === undefined) return;
    this.#waiting.delete(callId);
    clearTimeout(waiting.timer);
    if (outcome instanceof SignetError) waiting.reject(outcome);
    else waiting.resolve(outcome);
  }

  #expire(): void {
    const cutoff = Date.now() - 3 * this.#options.heartbeatMs;
    for (const [id, peer] of this.#peers) if (peer.seenAt < cutoff) this.#peers.delete(id);
  }

  #announce(always: boolean): void {
    if (this.#closed) return;
    const targets = this.#options.router.localTargets().sort();
    const text = JSON.stringify({ instance: this.#options.instanceId, targets });
    if (!always && text === this.#announced) return;
    this.#announced = text;
    this.#publisher.publish(`${this.#options.keyPrefix}:targets`, text).catch(() => undefined);
  }

  #announceChange(change: RegistryChange): void {
    this.#publisher
      .publish(
        `${this.#options.keyPrefix}:registry`,
        JSON.stringify({ instance: this.#options.instanceId, change }),
      )
      .catch(() => {
        this.#unannounced.push(change);
        this.#options.logger.warn(
          { change: change.kind },
          "cluster link: Redis unavailable; the registry change is announced when it is back",
        );
      });
  }

  #flushUnannounced(): void {
    const pending = this.#unannounced.splice(0);
    for (const change of pending) this.#announceChange(change);
  }

  #receive(channel: string, text: string): void {
    const prefix = this.#options.keyPrefix;
    let message: unknown;
    try {
      message = JSON.parse(text);
    } catch {
      return;
    }
    if (channel === `${prefix}:targets`)
      this.#onTargets(message as { instance: string; targets: string[]; leaving?: boolean });
    else if (channel === `${prefix}:registry`)
      this.#onRegistry(message as { instance: string; change: RegistryChange });
    else if (channel === `${prefix}:calls:${this.#options.instanceId}`) this.#onCall(message as CallMessage);
    else if (channel === `${prefix}:replies:${this.#options.instanceId}`) this.#onReply(message as Reply);
  }

  #onTargets(message: { instance: string; targets: string[]; leaving?: boolean }): void {
    if (typeof message.instance !== "string" || message.instance === this.#options.instanceId) return;
    if (message.leaving === true || !Array.isArray(message.targets)) {
      this.#peers.delete(message.instance);
      return;
    }
    this.#peers.set(message.instance, {
      targets: new Set(message.targets.filter((target) => typeof target === "string")),
      seenAt: Date.now(),
    });
  }

  #onRegistry(message: { instance: string; change: RegistryChange }): void {
    if (message.instance === this.#options.instanceId || typeof message.change?.kind !== "string") return;
    this.#options.registry
      .applyRemoteChange(message.change)
      .catch((error: unknown) =>
        this.#options.logger.error(
          { err: { message: String(error) } },
          "cluster link: could not apply a peer's registry change; the next reload will",
        ),
      );
  }

  #onCall(call: CallMessage): void {
    const reply = (body: Reply): void => {
      this.#publisher
        .publish(`${this.#options.keyPrefix}:replies:${call.from}`, JSON.stringify(body))
        .catch(() => undefined);
    };
    let dispatched;
    try {
      dispatched = this.#options.router.dispatch(
        call.target,
        call.deadline,
        call.envelope,
        () => call.delivery,
        {
          callId: call.callId,
          localOnly: true,
          ...(call.allowedAgents === undefined ? {} : { allowedAgents: new Set(call.allowedAgents) }),
        },
      );
    } catch (error) {
      const refusal = isSignetError(error) ? error : notDelivered("The call could not be placed");
      reply({
        kind: "error",
        call_id: call.callId,
        code: refusal.code,
        message: refusal.message,
        reason: "not_delivered",
      });
      return;
    }
    dispatched.result.then(
      (result) =>
        reply({ kind: "result", call_id: call.callId, wire: result.wire, executor: result.executor }),
      (error: unknown) => {
        const failure = isSignetError(error) ? error : new SignetError("INTERNAL_ERROR");
        const reason = failure.details.reason;
        reply({
          kind: "error",
          call_id: call.callId,
          code: failure.code,
          message: failure.message,
          ...(typeof reason === "string" ? { reason } : {}),
        });
      },
    );
  }

  #onReply(reply: Reply): void {
    if (typeof reply.call_id !== "string") return;
    if (reply.kind === "result") {
      if (typeof reply.wire === "string" && typeof reply.executor === "string") {
        this.#settle(reply.call_id, { wire: reply.wire, executor: reply.executor });
      }
      return;
    }
    const code = isErrorCode(reply.code) ? reply.code : "INTERNAL_ERROR";
    const message = typeof reply.message === "string" ? reply.message : undefined;
    this.#settle(
      reply.call_id,
      new SignetError(code, message, typeof reply.reason === "string" ? { reason: reply.reason } : {}),
    );
  }
}
