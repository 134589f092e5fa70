// Child processes of the pipeline bench: forked with tsx, driven by request/reply messages over IPC.
import { type ChildProcess, fork } from "node:child_process";
import { fileURLToPath } from "node:url";

/** The repository root: children run from it so `--import tsx` and the tsconfig paths resolve. */
export const REPO_ROOT = fileURLToPath(new URL("../../", import.meta.url));

/** What a server child reports about itself on request. */
export interface ProcessStats {
  /** process.cpuUsage(): user and system CPU of the whole process, in µs. */
  readonly userUs: number;
  readonly systemUs: number;
  /** process.memoryUsage().rss, in bytes. */
  readonly rss: number;
  readonly heapUsed: number;
}

/** Reads this process's stats (children answer the `stats` command with it). */
export function ownStats(): ProcessStats {
  const cpu = process.cpuUsage();
  const memory = process.memoryUsage();
  return { userUs: cpu.user, systemUs: cpu.system, rss: memory.rss, heapUsed: memory.heapUsed };
}

interface Request {
  readonly id: number;
  readonly cmd: string;
  readonly args?: unknown;
}

type Reply =
  | { readonly id: number; readonly ok: true; readonly result: unknown }
  | { readonly id: number; readonly ok: false; readonly error: string };

/** An unsolicited message from a child: `{ type: "ready", ... }` once it is up. */
interface Announcement {
  readonly type: string;
  readonly [key: string]: unknown;
}

const isReply = (message: Reply | Announcement): message is Reply =>
  typeof (message as { id?: unknown }).id === "number";

/** A forked child and the ways to talk to it. */
export class Child {
  private nextId = 1;
  private readonly pending = new Map<number, { resolve: (v: unknown) => void; reject: (e: Error) => void }>();
  private readonly announced: Announcement[] = [];
  private readonly waiters: { type: string; resolve: (m: Announcement) => void }[] = [];
  private exitError: Error | undefined;
  private stdoutTail = "";
  readonly exited: Promise<number | null>;

  constructor(
    readonly name: string,
    readonly process: ChildProcess,
  ) {
    process.stdout?.setEncoding("utf8");
    process.stdout?.on("data", (chunk: string) => {
      // Children print a line or two (their URL); keep the end for error messages.
      this.stdoutTail = (this.stdoutTail + chunk).slice(-2000);
    });
    process.on("message", (message: Reply | Announcement) => {
      if (isReply(message)) {
        const waiter = this.pending.get(message.id);
        if (waiter === undefined) return;
        this.pending.delete(message.id);
        if (message.ok) waiter.resolve(message.result);
        else waiter.reject(new Error(`${name}: ${message.error}`));
        return;
      }
      const announcement = message;
      const index = this.waiters.findIndex((w) => w.type === announcement.type);
      if (index >= 0) this.waiters.splice(index, 1)[0]!.resolve(announcement);
      else this.announced.push(announcement);
    });
    this.exited = new Promise((resolve) => {
      process.once("exit", (code, signal) => {
        this.exitError = new Error(
          `${name} exited (code ${String(code)}, signal ${String(signal)})${this.stdoutTail === "" ? "" : `; stdout: ${this.stdoutTail.trim()}`}`,
        );
        for (const waiter of this.pending.values()) waiter.reject(this.exitError);
        this.pending.clear();
        resolve(code);
      });
    });
  }

  /** Waits for the child's `{ type }` announcement (e.g. "ready"), failing on exit or timeout. */
  waitFor<T extends Announcement>(type: string, timeoutMs: number): Promise<T> {
    const index = this.announced.findIndex((m) => m.type === type);
    if (index >= 0) return Promise.resolve(this.announced.splice(index, 1)[0] as T);
    return withTimeout(
      Promise.race([
        new Promise<T>((resolve) =>
          this.waiters.push({ type, resolve: resolve as (m: Announcement) => void }),
        ),
        this.exited.then(() => Promise.reject(this.exitError!)),
      ]),
      timeoutMs,
      `${this.name}: no ${type} within ${timeoutMs} ms`,
    );
  }

  /** Sends a command and waits for its reply. */
  call<T>(cmd: string, args?: unknown, timeoutMs = 30_000): Promise<T> {
    if (this.exitError !== undefined) return Promise.reject(this.exitError);
    const id = this.nextId++;
    const reply = new Promise<unknown>((resolve, reject) => {
      this.pending.set(id, { resolve, reject });
      this.process.send({ id, cmd, args } satisfies Request, (error) => {
        if (error !== null) {
          this.pending.delete(id);
          reject(error);
        }
      });
    });
    return withTimeout(reply, timeoutMs, `${this.name}: ${cmd} took over ${timeoutMs} ms`) as Promise<T>;
  }

  /** Kills the child at once (SIGKILL) if it is still running. */
  kill(): void {
    if (this.process.exitCode === null && this.process.signalCode === null) this.process.kill("SIGKILL");
  }
}

/** Forks `script` (a .ts file under bench/pipeline/) with `node --import tsx`, from the repository root. */
export function startChild(
  name: string,
  script: string,
  options: { args?: readonly string[]; env?: NodeJS.ProcessEnv } = {},
): Child {
  const path = fileURLToPath(new URL(`./${script}`, import.meta.url));
  const child = fork(path, [...(options.args ?? [])], {
    cwd: REPO_ROOT,
    execArgv: ["--import", "tsx"],
    env: { ...process.env, ...options.env },
    stdio: ["ignore", "pipe", "inherit", "ipc"],
    serialization: "advanced",
  });
  return new Child(name, child);
}

/** Rejects with `message` if `promise` has not settled within `ms`. */
export function withTimeout<T>(promise: Promise<T>, ms: number, message: string): Promise<T> {
  let timer: NodeJS.Timeout | undefined;
  return Promise.race([
    promise,
    new Promise<never>((_, reject) => {
      timer = setTimeout(() => reject(new Error(message)), ms);
    }),
  ]).finally(() => clearTimeout(timer));
}

/**
 * The child side: answers the parent's commands with `handlers`, and exits when the parent goes away
 * (so no child outlives a crashed bench).
 */
export function serveCommands(handlers: Readonly<Record<string, (args: any) => unknown>>): void {
  if (process.send === undefined) throw new Error("This script runs as a child of the pipeline bench");
  process.on("disconnect", () => process.exit(0));
  process.on("message", (message: Request) => {
    const handler = handlers[message.cmd];
    void (async () => {
      try {
        if (handler === undefined) throw new Error(`unknown command ${message.cmd}`);
        const result = await handler(message.args);
        process.send!({ id: message.id, ok: true, result } satisfies Reply);
      } catch (error) {
        process.send!({
          id: message.id,
          ok: false,
          error: error instanceof Error ? (error.stack ?? error.message) : String(error),
        } satisfies Reply);
      }
    })();
  });
}

/** The child side: tells the parent something happened (`ready` with a URL, usually). */
export function announce(type: string, fields: Record<string, unknown> = {}): void {
  process.send?.({ type, ...fields });
}

/** The child processes a suite started: each is SIGKILLed, and awaited, when the suite ends. */
export class ProcessGroup {
  private readonly children: Child[] = [];

  start(...args: Parameters<typeof startChild>): Child {
    const child = startChild(...args);
    this.children.push(child);
    return child;
  }

  /** SIGKILLs what is still running and waits (bounded) until every child has exited. */
  async killAll(): Promise<void> {
    for (const child of this.children) child.kill();
    await Promise.all(
      this.children.map((child) =>
        withTimeout(child.exited, 5000, `${child.name} survived SIGKILL`).catch((error: unknown) =>
          console.error(String(error)),
        ),
      ),
    );
  }
}
