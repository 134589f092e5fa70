// What the sessions bench's clients send: signed session.* envelopes from registered agents, POSTed to
// /v1/sessions/messages over keep-alive HTTPS, and the decision sessions they are sent in.
import { randomUUID } from "node:crypto";
import { Ed25519PrivateKey, type JsonValue, fromBase64Url, signEnvelope } from "@signet/protocol";
import { type Agent, request } from "undici";
import type { AgentCredentials } from "../pipeline/data-dir.js";

/** An agent able to sign and send: its key, and the headers carrying its API key. */
export interface SessionAgent {
  readonly id: string;
  readonly key: Ed25519PrivateKey;
  readonly headers: Readonly<Record<string, string>>;
}

export function sessionAgent(credentials: AgentCredentials): SessionAgent {
  return {
    id: credentials.id,
    key: Ed25519PrivateKey.fromSeed(fromBase64Url(credentials.seed)!),
    headers: { authorization: `Bearer ${credentials.apiKey}`, "content-type": "application/json" },
  };
}

/** A signed `session.<verb>` envelope to `session:<id>`. */
export function sessionEnvelope(
  agent: SessionAgent,
  session: string,
  verb: string,
  body: Record<string, JsonValue>,
): { wire: string; id: string } {
  const signed = signEnvelope(
    { type: `session.${verb}`, from: agent.id, to: `session:${session}`, session, body },
    agent.key,
  );
  return { wire: signed.wire, id: signed.envelope.id };
}

/** POSTs one envelope; resolves with the status and the answer's text (read to the end). */
export async function postSessionMessage(
  dispatcher: Agent,
  endpoint: string,
  agent: SessionAgent,
  wire: string,
): Promise<{ status: number; text: string }> {
  const response = await request(endpoint, {
    method: "POST",
    headers: agent.headers,
    body: wire,
    dispatcher,
  });
  return { status: response.statusCode, text: await response.body.text() };
}

/** An open decision session among three agents (the first is the initiator) with one proposal, `p1`. */
export interface DecisionSession {
  readonly id: string;
  readonly members: readonly [SessionAgent, SessionAgent, SessionAgent];
  /** Messages sent in it so far: picks the next sender and vote. */
  sent: number;
}

/** Long enough to outlive any run: a session that expires mid-round would refuse its votes. */
const SESSION_TTL_MS = 3_600_000;
export const PROPOSAL_ID = "p1";
const VOTES = ["APPROVE", "REJECT", "ABSTAIN"] as const;

/**
 * Starts a decision session and proposes `p1` in it, so that votes can follow. With three participants
 * and `min_approvals` 3, no vote resolves it: votes can be changed until a commit, and nobody commits.
 */
export async function openDecision(
  dispatcher: Agent,
  endpoint: string,
  members: readonly [SessionAgent, SessionAgent, SessionAgent],
): Promise<DecisionSession> {
  const id = randomUUID();
  const [initiator, ...others] = members;
  const steps: [string, Record<string, JsonValue>][] = [
    [
      "start",
      {
        mode: "decision",
        participants: others.map((agent) => agent.id),
        ttl_ms: SESSION_TTL_MS,
        config: { min_approvals: 3 },
      },
    ],
    ["propose", { proposal_id: PROPOSAL_ID, title: "bench proposal" }],
  ];
  for (const [verb, body] of steps) {
    const { wire } = sessionEnvelope(initiator, id, verb, body);
    const answer = await postSessionMessage(dispatcher, endpoint, initiator, wire);
    if (answer.status !== 200)
      throw new Error(`session.${verb}: ${answer.status} ${answer.text.slice(0, 300)}`);
  }
  return { id, members, sent: 0 };
}

/** The session's next vote: the participants take turns, each changing its vote every time. */
export function nextVote(session: DecisionSession): { agent: SessionAgent; wire: string; id: string } {
  const turn = session.sent++;
  const agent = session.members[turn % 3]!;
  const vote = VOTES[Math.floor(turn / 3) % VOTES.length]!;
  return { agent, ...sessionEnvelope(agent, session.id, "vote", { proposal_id: PROPOSAL_ID, vote }) };
}
