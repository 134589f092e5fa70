// The sessions bench's load: opens decision sessions among triads of agents, then sends votes in
// `sessions` of them at once, one message in flight per session (a session's messages are totally
// ordered, so its senders take turns and concurrency comes from many sessions). Forked by the sessions
// suite; `init`, `open`, then `run` as often as needed.
import { readFileSync } from "node:fs";
import { Agent } from "undici";
import type { AgentCredentials } from "../pipeline/data-dir.js";
import { announce, ownStats, serveCommands } from "../pipeline/ipc.js";
import {
  type DecisionSession,
  type SessionAgent,
  nextVote,
  openDecision,
  postSessionMessage,
  sessionAgent,
} from "./session-messages.js";

export interface SessionClientInit {
  readonly url: string;
  readonly caPath: string;
  /** Grouped in threes: session i is among triad i mod (agents / 3), its first member the initiator. */
  readonly agents: readonly AgentCredentials[];
  /** Connections to keep: the most sessions a run drives at once. */
  readonly connections: number;
}

export interface SessionRunResult {
  readonly count: number;
  readonly failures: number;
  readonly firstFailure?: string;
  readonly wallMs: number;
  /** Client-observed latency of every message, ms (request start to last byte of the answer). */
  readonly latenciesMs: number[];
}

let state:
  | {
      readonly endpoint: string;
      readonly dispatcher: Agent;
      readonly triads: readonly (readonly [SessionAgent, SessionAgent, SessionAgent])[];
      readonly sessions: DecisionSession[];
    }
  | undefined;

function ready(): NonNullable<typeof state> {
  if (state === undefined) throw new Error("init first");
  return state;
}

/** Opens sessions until there are `total`, `concurrency` at a time. */
async function open(args: { total: number; concurrency: number }): Promise<{ open: number }> {
  const s = ready();
  let next = s.sessions.length;
  const worker = async () => {
    while (next < args.total) {
      const triad = s.triads[next++ % s.triads.length]!;
      s.sessions.push(await openDecision(s.dispatcher, s.endpoint, triad));
    }
  };
  await Promise.all(Array.from({ length: args.concurrency }, worker));
  return { open: s.sessions.length };
}

/** Sends `count` votes across the first `sessions` sessions, one in flight in each. */
async function run(args: { sessions: number; count: number }): Promise<SessionRunResult> {
  const s = ready();
  if (args.sessions > s.sessions.length) throw new Error(`only ${s.sessions.length} sessions are open`);
  const latenciesMs: number[] = [];
  let issued = 0;
  let failures = 0;
  let firstFailure: string | undefined;
  const worker = async (session: DecisionSession) => {
    while (issued < args.count) {
      issued++;
      const vote = nextVote(session);
      const start = performance.now();
      try {
        const answer = await postSessionMessage(s.dispatcher, s.endpoint, vote.agent, vote.wire);
        latenciesMs.push(performance.now() - start);
        if (answer.status !== 200) {
          failures++;
          firstFailure ??= `${answer.status} ${answer.text.slice(0, 300)}`;
        }
      } catch (error) {
        failures++;
        firstFailure ??= String(error);
      }
    }
  };
  const started = performance.now();
  await Promise.all(s.sessions.slice(0, args.sessions).map(worker));
  const wallMs = performance.now() - started;
  return {
    count: args.count,
    failures,
    ...(firstFailure === undefined ? {} : { firstFailure }),
    wallMs,
    latenciesMs,
  };
}

serveCommands({
  init(init: SessionClientInit) {
    if (init.agents.length < 3 || init.agents.length % 3 !== 0) throw new Error("agents: triads");
    const agents = init.agents.map(sessionAgent);
    state = {
      endpoint: `${init.url}/v1/sessions/messages`,
      dispatcher: new Agent({
        connect: { ca: readFileSync(init.caPath, "utf8") },
        connections: init.connections,
        pipelining: 1,
        keepAliveTimeout: 120_000,
      }),
      triads: Array.from(
        { length: agents.length / 3 },
        (_, i) => [agents[3 * i]!, agents[3 * i + 1]!, agents[3 * i + 2]!] as const,
      ),
      sessions: [],
    };
    return true;
  },
  open: (args: { total: number; concurrency: number }) => open(args),
  run: (args: { sessions: number; count: number }) => run(args),
  stats: () => ownStats(),
  async close() {
    await state?.dispatcher.close();
    return true;
  },
});
announce("ready");
