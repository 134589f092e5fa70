// Routes invocations to connected executors: round-robin per tool, bounded in-flight calls, deadlines.
import { type Delivery, type ErrorCode, SignetError, newMessageId } from "@signet/protocol";

/** One executor connection as the router sees it (the WebSocket layer implements it). */
export interface ExecutorConnection {
  readonly id: string;
  readonly agentId: string;
  /** Targets this connection answers: `tool:NAME` and `capability:NAME`. */
  readonly targets: ReadonlySet<string>;
  readonly maxInFlight: number;
  /** Sends an invoke frame (the caller's envelope and the signed delivery); throws if the connection is gone. */
  sendInvoke(envelope: string, delivery: Delivery): void;
}

/** What an executor answered: its signed result's wire text, and which agent it is. */
export interface CallResult {
  readonly wire: string;
  readonly executor: string;
}

/**
 * Another runtime instance's executors, reached through the cluster link (routing/cluster.ts): used
 * when no local connection can take a call.
 */
export interface RemoteDispatcher {
  /** True when some live peer instance has an executor for `target`. */
  has(target: string): boolean;
  /** Sends the call to such a peer; settles like a local call's result. */
  forward(call: ForwardedCall): Promise<CallResult>;
}

/** A call as it travels to a peer instance: everything is data, nothing is a closure. */
export interface ForwardedCall {
  readonly callId: string;
  readonly target: string;
  readonly deadline: number;
  readonly envelope: string;
  readonly delivery: Delivery;
  /** Only executors of these agents may take it (a capability's allowed providers). */
  readonly allowedAgents?: readonly string[];
}

interface PendingCall {
  readonly connection: ExecutorConnection;
  readonly resolve: (result: CallResult) => void;
  readonly reject: (error: SignetError) => void;
  readonly timer: NodeJS.Timeout;
}

/** A dispatched call: which connection took it, and its result (the executor's wire text). */
export interface DispatchedCall {
  readonly callId: string;
  /**
   * Settles with the result whenever it arrives — even after the caller's deadline, up to the
   * router's hold time — or rejects when the executor refuses the call or disconnects.
   */
  readonly result: Promise<CallResult>;
}

export interface DispatchOptions {
  /** Only executors of these agents may take the call (a capability's allowed providers). */
  readonly allowedAgents?: ReadonlySet<string>;
  /** Use this call id (a call forwarded by a peer keeps the id its delivery was signed with). */
  readonly callId?: string;
  /** Never forward to a peer (the call already came from one). */
  readonly localOnly?: boolean;
}

export interface RouterOptions {
  /** How long after the deadline a late result is still accepted (so a retry can get it). */
  readonly lateResultHoldMs: number;
}

export class Router {
  private readonly byTool = new Map<string, ExecutorConnection[]>();
  private readonly cursor = new Map<string, number>();
  private readonly inFlight = new Map<string, number>();
  private readonly pending = new Map<string, PendingCall>();
  private remote: RemoteDispatcher | undefined;
  private readonly targetListeners: (() => void)[] = [];

  constructor(private readonly options: RouterOptions = { lateResultHoldMs: 60_000 }) {}

  /** Lets calls no local executor can take go to peer instances. */
  setRemote(remote: RemoteDispatcher | undefined): void {
    this.remote = remote;
  }

  /** Registers a listener told when the set of locally served targets may have changed. */
  onTargetsChanged(listener: () => void): void {
    this.targetListeners.push(listener);
  }

  /** Every target some local connection serves. */
  localTargets(): string[] {
    return [...this.byTool.keys()];
  }

  /** Adds a connection for every tool it serves. */
  register(connection: ExecutorConnection): void {
    this.inFlight.set(connection.id, 0);
    for (const tool of connection.targets) {
      const list = this.byTool.get(tool) ?? [];
      list.push(connection);
      this.byTool.set(tool, list);
    }
    for (const listener of this.targetListeners) listener();
  }

  /** Removes a connection; its calls in flight fail (the outcome is unknown, so never retried blindly). */
  unregister(connection: ExecutorConnection): void {
    for (const tool of connection.targets) {
      const list = (this.byTool.get(tool) ?? []).filter((c) => c !== connection);
      if (list.length === 0) this.byTool.delete(tool);
      else this.byTool.set(tool, list);
    }
    this.inFlight.delete(connection.id);
    for (const listener of this.targetListeners) listener();
    for (const [callId, call] of this.pending) {
      if (call.connection === connection) {
        this.settle(callId);
        call.reject(
          new SignetError("TIMEOUT", "The executor disconnected during the call", {
            reason: "connection_lost",
          }),
        );
      }
    }
  }

  /** Connections serving a tool right now. */
  connectionsFor(tool: string): readonly ExecutorConnection[] {
    return this.byTool.get(tool) ?? [];
  }

  /** Number of live connections. */
  get connectionCount(): number {
    return this.inFlight.size;
  }

  /**
   * Picks the next local connection for `tool` with room (round-robin) and sends it the call; when
   * none can take it, forwards it to a peer instance that has one. Throws `TARGET_UNAVAILABLE`
   * synchronously, before anything is sent, when no executor anywhere can take it.
   */
  dispatch(
    tool: string,
    deadline: number,
    envelope: string,
    makeDelivery: (callId: string) => Delivery,
    options: DispatchOptions = {},
  ): DispatchedCall {
    const { allowedAgents } = options;
    const list = this.byTool
      .get(tool)
      ?.filter((connection) => allowedAgents === undefined || allowedAgents.has(connection.agentId));
    let chosen: ExecutorConnection | undefined;
    if (list !== undefined && list.length > 0) {
      const start = (this.cursor.get(tool) ?? 0) % list.length;
      for (let i = 0; i < list.length; i++) {
        const candidate = list[(start + i) % list.length]!;
        if ((this.inFlight.get(candidate.id) ?? 0) < candidate.maxInFlight) {
          chosen = candidate;
          this.cursor.set(tool, (start + i + 1) % list.length);
          break;
        }
      }
    }
    const callId = options.callId ?? newMessageId();
    if (chosen === undefined) {
      const remote = options.localOnly === true ? undefined : this.remote;
      if (remote?.has(tool) === true) {
        const delivery = makeDelivery(callId);
        return {
          callId,
          result: remote.forward({
            callId,
            target: tool,
            deadline,
            envelope,
            delivery,
            ...(allowedAgents === undefined ? {} : { allowedAgents: [...allowedAgents] }),
          }),
        };
      }
      throw list === undefined || list.length === 0
        ? new SignetError("TARGET_UNAVAILABLE", "No executor for this target is connected", {
            reason: "none",
          })
        : new SignetError("TARGET_UNAVAILABLE", "Every executor for this tool is at capacity", {
            reason: "busy",
          });
    }
    const connection = chosen;
    const delivery = makeDelivery(callId);
    const result = new Promise<CallResult>((resolve, reject) => {
      const hold = Math.max(0, deadline - Date.now()) + this.options.lateResultHoldMs;
      const timer = setTimeout(() => {
        if (this.settle(callId)) reject(new SignetError("TIMEOUT", undefined, { reason: "no_result" }));
      }, hold);
      timer.unref();
      this.pending.set(callId, { connection, resolve, reject, timer });
    });
    this.inFlight.set(connection.id, (this.inFlight.get(connection.id) ?? 0) + 1);
    try {
      connection.sendInvoke(envelope, delivery);
    } catch {
      this.settle(callId);
      throw new SignetError("TARGET_UNAVAILABLE", "The executor connection closed", { reason: "closed" });
    }
    return { callId, result };
  }

  /** A result frame arrived on `connection`. Returns false for unknown calls or the wrong connection. */
  resolveCall(connection: ExecutorConnection, callId: string, wire: string): boolean {
    const call = this.pending.get(callId);
    if (call === undefined || call.connection !== connection) return false;
    this.settle(callId);
    call.resolve({ wire, executor: connection.agentId });
    return true;
  }

  /** An error frame for a call arrived on `connection`. */
  rejectCall(connection: ExecutorConnection, callId: string, code: ErrorCode, message: string): boolean {
    const call = this.pending.get(callId);
    if (call === undefined || call.connection !== connection) return false;
    this.settle(callId);
    call.reject(new SignetError(code, message, { reason: "executor" }));
    return true;
  }

  /** Removes a pending call and frees its slot; true when it was still pending. */
  private settle(callId: string): boolean {
    const call = this.pending.get(callId);
    if (call === undefined) return false;
    clearTimeout(call.timer);
    this.pending.delete(callId);
    const count = this.inFlight.get(call.connection.id);
    if (count !== undefined) this.inFlight.set(call.connection.id, Math.max(0, count - 1));
    return true;
  }

  /** Fails every pending call (shutdown). */
  close(): void {
    for (const [callId, call] of [...this.pending]) {
      this.settle(callId);
      call.reject(new SignetError("UNAVAILABLE", "The runtime is shutting down", { reason: "shutdown" }));
    }
  }
}
