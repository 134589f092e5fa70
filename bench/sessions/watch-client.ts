// The sessions bench's watchers: `watchers` SSE streams on GET /v1/sessions/watch, and a paced sender in
// the same process, so that "sent", "answered" and "received" are read off one clock. For each message
// it records when the POST was sent and answered, and when each watcher received its MESSAGE_ACCEPTED
// event (matched by data.message_id, the envelope's id). Forked by the sessions suite.
import { readFileSync } from "node:fs";
import { Agent, request } from "undici";
import type { AgentCredentials } from "../pipeline/data-dir.js";
import { announce, ownStats, serveCommands, withTimeout } from "../pipeline/ipc.js";
import {
  type DecisionSession,
  type SessionAgent,
  nextVote,
  openDecision,
  postSessionMessage,
  sessionAgent,
} from "./session-messages.js";

export interface WatchClientInit {
  readonly url: string;
  readonly caPath: string;
  /** A credential with session:watch and session:read (every session's events are visible). */
  readonly watcherApiKey: string;
  /** One triad: the senders of the paced messages. */
  readonly agents: readonly AgentCredentials[];
}

export interface WatchRunArgs {
  readonly watchers: number;
  readonly messages: number;
  readonly intervalMs: number;
  /** The messages go round these many sessions, so one answered late never holds up the next. */
  readonly sessions: number;
  /** How long to wait, after the last POST was answered, for every watcher to have every event. */
  readonly drainMs: number;
}

export interface WatchRunResult {
  readonly sent: number;
  readonly failures: number;
  readonly firstFailure?: string;
  /** Per (message, watcher): received − sent, received − answered, in ms. */
  readonly afterSentMs: number[];
  readonly afterAnsweredMs: number[];
  /** Per message: the POST's own latency. */
  readonly postMs: number[];
  /** (message, watcher) pairs never received within drainMs. */
  readonly missing: number;
  /** Watch streams that ended during the run (dropped as slow consumers, or closed). */
  readonly ended: number;
}

interface Stream {
  readonly controller: AbortController;
  /** Settles when the stream has ended, whatever ended it. */
  readonly done: Promise<void>;
  readonly ended: boolean;
}

/** Where each message stands: its send and answer times, and per watcher when it arrived. */
interface Tracked {
  sentAt: number;
  answeredAt: number;
  readonly receivedAt: Float64Array;
  received: number;
}

let init: WatchClientInit | undefined;

/** Opens `count` watch streams and resolves once each has sent its first line (so it is live). */
async function openStreams(
  dispatcher: Agent,
  count: number,
  onEvent: (watcher: number, event: { type: string; data?: { message_id?: string } }, at: number) => void,
): Promise<Stream[]> {
  const { url, watcherApiKey } = init!;
  return Promise.all(
    Array.from({ length: count }, async (_, watcher): Promise<Stream> => {
      const controller = new AbortController();
      const response = await request(`${url}/v1/sessions/watch`, {
        headers: { authorization: `Bearer ${watcherApiKey}`, accept: "text/event-stream" },
        dispatcher,
        signal: controller.signal,
      });
      if (response.statusCode !== 200) {
        throw new Error(`watch: ${response.statusCode} ${(await response.body.text()).slice(0, 300)}`);
      }
      let ended = false;
      let live!: () => void;
      const isLive = new Promise<void>((resolve) => (live = resolve));
      const done = (async () => {
        let buffer = "";
        try {
          for await (const chunk of response.body) {
            const at = performance.now();
            live();
            buffer += (chunk as Buffer).toString("utf8");
            let end: number;
            while ((end = buffer.indexOf("\n\n")) >= 0) {
              const frame = buffer.slice(0, end);
              buffer = buffer.slice(end + 2);
              // `id:`, `event:` and `data:` lines; comments (`: ping`) carry no data line.
              const data = frame.split("\n").find((line) => line.startsWith("data: "));
              if (data !== undefined) onEvent(watcher, JSON.parse(data.slice(6)), at);
            }
          }
        } catch {
          // Aborted at the end of the run.
        } finally {
          ended = true;
          live();
        }
      })();
      await isLive;
      return {
        controller,
        done,
        get ended() {
          return ended;
        },
      };
    }),
  );
}

async function run(args: WatchRunArgs): Promise<WatchRunResult> {
  if (init === undefined) throw new Error("init first");
  const { url, caPath, agents } = init;
  const ca = readFileSync(caPath, "utf8");
  const endpoint = `${url}/v1/sessions/messages`;
  // The watch streams hold their connections for the whole run: a pool of their own.
  const watchDispatcher = new Agent({ connect: { ca }, connections: args.watchers, pipelining: 1 });
  const postDispatcher = new Agent({
    connect: { ca },
    connections: args.sessions,
    pipelining: 1,
    keepAliveTimeout: 120_000,
  });
  const tracked = new Map<string, Tracked>();
  let streams: Stream[] = [];
  try {
    const members = agents.slice(0, 3).map(sessionAgent) as [SessionAgent, SessionAgent, SessionAgent];
    const sessions: DecisionSession[] = [];
    for (let i = 0; i < args.sessions; i++) {
      sessions.push(await openDecision(postDispatcher, endpoint, members));
    }
    streams = await openStreams(watchDispatcher, args.watchers, (watcher, event, at) => {
      if (event.type !== "MESSAGE_ACCEPTED") return;
      const entry = tracked.get(event.data?.message_id ?? "");
      if (entry === undefined || entry.receivedAt[watcher]! > 0) return;
      entry.receivedAt[watcher] = at;
      entry.received++;
    });

    let failures = 0;
    let firstFailure: string | undefined;
    const posts: Promise<void>[] = [];
    const started = performance.now();
    for (let i = 0; i < args.messages; i++) {
      // Paced against the start, not the previous send, so a slow turn does not stretch the run.
      const wait = started + i * args.intervalMs - performance.now();
      if (wait > 0) await new Promise((resolve) => setTimeout(resolve, wait));
      const vote = nextVote(sessions[i % sessions.length]!);
      const entry: Tracked = {
        sentAt: 0,
        answeredAt: 0,
        receivedAt: new Float64Array(args.watchers),
        received: 0,
      };
      tracked.set(vote.id, entry);
      entry.sentAt = performance.now();
      posts.push(
        postSessionMessage(postDispatcher, endpoint, vote.agent, vote.wire).then(
          (answer) => {
            entry.answeredAt = performance.now();
            if (answer.status !== 200) {
              failures++;
              firstFailure ??= `${answer.status} ${answer.text.slice(0, 300)}`;
            }
          },
          (error: unknown) => {
            failures++;
            firstFailure ??= String(error);
          },
        ),
      );
    }
    await Promise.all(posts);
    const expected = args.messages * args.watchers;
    const deadline = performance.now() + args.drainMs;
    const receivedAll = () => [...tracked.values()].reduce((sum, entry) => sum + entry.received, 0);
    while (receivedAll() < expected && performance.now() < deadline) {
      await new Promise((resolve) => setTimeout(resolve, 20));
    }

    const afterSentMs: number[] = [];
    const afterAnsweredMs: number[] = [];
    const postMs: number[] = [];
    for (const entry of tracked.values()) {
      if (entry.answeredAt > 0) postMs.push(entry.answeredAt - entry.sentAt);
      for (const at of entry.receivedAt) {
        if (at === 0) continue;
        afterSentMs.push(at - entry.sentAt);
        if (entry.answeredAt > 0) afterAnsweredMs.push(at - entry.answeredAt);
      }
    }
    return {
      sent: args.messages,
      failures,
      ...(firstFailure === undefined ? {} : { firstFailure }),
      afterSentMs,
      afterAnsweredMs,
      postMs,
      missing: expected - receivedAll(),
      ended: streams.filter((stream) => stream.ended).length,
    };
  } finally {
    for (const stream of streams) stream.controller.abort();
    await withTimeout(
      Promise.all(streams.map((stream) => stream.done)),
      5000,
      "watch streams did not close",
    ).catch(() => undefined);
    await Promise.allSettled([watchDispatcher.destroy(), postDispatcher.close()]);
  }
}

serveCommands({
  init(args: WatchClientInit) {
    init = args;
    return true;
  },
  run: (args: WatchRunArgs) => run(args),
  stats: () => ownStats(),
});
announce("ready");
