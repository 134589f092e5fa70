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

interface PendingCall {
  readonly connection: ExecutorConnection;
  readonly resolve: (wire: string) => void;
  readonly reject: (error: SignetError) => void;
  readonly timer: NodeJS.Timeout;
}

/** A dispatched call: which connection took it, and its result (the executor's wire text). */
export interface DispatchedCall {
  readonly callId: string;
  readonly connection: ExecutorConnection;
  /**
   * Settles with the result wire text whenever it arrives — even after the caller's deadline, up to
   * the router's hold time — or rejects when the executor refuses the call or disconnects.
   */
  readonly result: Promise<string>;
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

  constructor(private readonly options: RouterOptions = { lateResultHoldMs: 60_000 }) {}

  /** Adds a connection for every tool it serves. */
  register(connection: ExecutorConnection): void {
    this.inFlight.set(connection.id, 0);
    for (const tool of connection.targets) {
      const list = this.byTool.get(tool) ?? [];
      list.push(connection);
      this.byTool.set(tool, list);
    }
  }

  /** Removes a connection; its calls in flight fail (the outcome is unknown, so never retried blindly). */
  unregister(connection: ExecutorConnection): void {
    for (const tool of connection.targets) {
      const list = (this.byTool.get(tool) ?? []).filter((c) => c !== connection);
      if (list.length === 0) this.byTool.delete(tool);
      else this.byTool.set(tool, list);
    }
    this.inFlight.delete(connection.id);
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
   * Picks the next connection for `tool` with room (round-robin) and sends it the call. Throws
   * `TARGET_UNAVAILABLE` synchronously, before anything is sent, when none is connected or all are full.
   */
  dispatch(
    tool: string,
    deadline: number,
    envelope: string,
    makeDelivery: (callId: string) => Delivery,
    eligible: (connection: ExecutorConnection) => boolean = () => true,
  ): DispatchedCall {
    const list = this.byTool.get(tool)?.filter(eligible);
    if (list === undefined || list.length === 0) {
      throw new SignetError("TARGET_UNAVAILABLE", "No executor for this target is connected", {
        reason: "none",
      });
    }
    const start = (this.cursor.get(tool) ?? 0) % list.length;
    let chosen: ExecutorConnection | undefined;
    for (let i = 0; i < list.length; i++) {
      const candidate = list[(start + i) % list.length]!;
      if ((this.inFlight.get(candidate.id) ?? 0) < candidate.maxInFlight) {
        chosen = candidate;
        this.cursor.set(tool, (start + i + 1) % list.length);
        break;
      }
    }
    if (chosen === undefined) {
      throw new SignetError("TARGET_UNAVAILABLE", "Every executor for this tool is at capacity", {
        reason: "busy",
      });
    }
    const connection = chosen;
    const callId = newMessageId();
    const delivery = makeDelivery(callId);
    const result = new Promise<string>((resolve, reject) => {
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
    return { callId, connection, result };
  }

  /** A result frame arrived on `connection`. Returns false for unknown calls or the wrong connection. */
  resolveCall(connection: ExecutorConnection, callId: string, wire: string): boolean {
    const call = this.pending.get(callId);
    if (call === undefined || call.connection !== connection) return false;
    this.settle(callId);
    call.resolve(wire);
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
