// Example decision: three agents, each with its own credential and key, in one process. `planner` opens a
// decision with `reviewer` and `security` (two approvals needed) and proposes a change; both evaluate it
// and vote; the planner commits it. A watcher prints the session's lifecycle as the runtime records it,
// and the runtime-signed commitment is verified before it is printed. On the way, the reviewer's client
// refuses to send a vote in mallory's name.
//
//   SIGNET_PLANNER_KEY=<planner's API key> SIGNET_REVIEWER_KEY=<reviewer's> SIGNET_SECURITY_KEY=<security's> \
//     npx tsx examples/decision.ts --data-dir .signet
import { setTimeout as delay } from "node:timers/promises";
import {
  DecisionSession,
  ForbiddenError,
  IdentityMismatchError,
  SdkError,
  type SessionLifecycleWatcher,
  type SessionResponse,
  SignetClient,
  SignetProtocolError,
  verifySessionCommitment,
} from "@signet/sdk";
import { type ExampleAgent, readMultiAgentConfig } from "./example-config.js";

const config = readMultiAgentConfig(process.argv.slice(2), ["planner", "reviewer", "security"]);
const CALL = { timeoutMs: 15_000 };
const FINAL_EVENTS: readonly string[] = ["RESOLVED", "EXPIRED", "CANCELLED"];

function clientFor(agent: ExampleAgent): SignetClient {
  return new SignetClient({
    target: config.url,
    rootCertificates: config.ca,
    auth: agent.auth,
    agentId: agent.agentId,
    signingKey: agent.keyPath,
    runtimePublicKey: config.runtimePublicKey,
  });
}

function step(who: string, what: string, answer: SessionResponse): void {
  console.log(`${who}: ${what} (seq ${answer.seq ?? "-"})`);
}

/** Prints each lifecycle event until the session ends; a refusal ends the watch, not the decision. */
async function printEvents(watcher: SessionLifecycleWatcher): Promise<void> {
  try {
    for await (const event of watcher) {
      console.log(`[watch] #${event.id} ${event.type} ${JSON.stringify(event.data)}`);
      if (FINAL_EVENTS.includes(event.type)) break;
    }
  } catch (error) {
    if (error instanceof ForbiddenError) {
      console.error("[watch] refused: FORBIDDEN (the planner's API key needs the session:watch permission)");
    } else if (error instanceof SignetProtocolError || error instanceof SdkError) {
      console.error(`[watch] stopped: ${error.name} (${error.reason ?? "-"})`);
    } else {
      throw error;
    }
  }
}

function resultOf(outcome: unknown): unknown {
  return typeof outcome === "object" && outcome !== null && "result" in outcome ? outcome.result : undefined;
}

const planner = clientFor(config.agents.planner);
const reviewer = clientFor(config.agents.reviewer);
const security = clientFor(config.agents.security);
const decision = new DecisionSession(planner);
let watcher: SessionLifecycleWatcher | undefined;
let watching: Promise<void> = Promise.resolve();

try {
  const started = await decision.start(
    { participants: ["reviewer", "security"], minApprovals: 2, ttlMs: 10 * 60_000 },
    CALL,
  );
  console.log(
    `planner: opened decision ${decision.id} among ${started.session.participants.join(", ")} (2 approvals to commit)`,
  );

  // From the session's first event: CREATED was recorded before the watcher connected.
  watcher = decision.watch({ lastEventId: 0 });
  watching = printEvents(watcher);

  // The others join with the id the planner shares; each speaks with its own client, credential and key.
  const asReviewer = new DecisionSession(reviewer, { id: decision.id });
  const asSecurity = new DecisionSession(security, { id: decision.id });

  step(
    "planner",
    'proposes p1 "rotate the payments API key"',
    await decision.propose(
      "p1",
      {
        title: "rotate the payments API key",
        detail: "issue a new key, switch the gateway, revoke the old one",
      },
      CALL,
    ),
  );
  step(
    "reviewer",
    "evaluates p1: APPROVE, confidence 0.9",
    await asReviewer.evaluate(
      "p1",
      { recommendation: "APPROVE", confidence: 0.9, rationale: "the gateway reloads keys without downtime" },
      CALL,
    ),
  );
  // Any case is accepted and sent as the runtime requires ("approve" → "APPROVE").
  step(
    "security",
    "evaluates p1: approve, confidence 0.95",
    await asSecurity.evaluate(
      "p1",
      { recommendation: "approve", confidence: 0.95, rationale: "the old key is revoked once traffic moves" },
      CALL,
    ),
  );

  // The reviewer's credential expects `reviewer` as the sender: a message in anyone else's name is
  // refused before it is signed, let alone sent.
  const spoofed = await asReviewer.vote("p1", "approve", { ...CALL, sender: "mallory" }).then(
    () => undefined,
    (error: unknown) => error,
  );
  if (!(spoofed instanceof IdentityMismatchError)) throw new Error("The SDK sent a vote in mallory's name");
  const { message_count: count } = await asReviewer.get(CALL);
  console.log(
    `reviewer: vote as mallory refused locally: ${spoofed.name} ${spoofed.code} ` +
      `(expected "${spoofed.expected ?? "-"}", actual "${spoofed.actual ?? "-"}"); nothing was sent, ` +
      `the session still has ${count} messages`,
  );

  step("reviewer", "votes approve on p1", await asReviewer.vote("p1", "approve", CALL));
  step("security", "votes Approve on p1", await asSecurity.vote("p1", "Approve", CALL));
  const committed = await decision.commit("p1", CALL);
  step("planner", `commits p1: session ${committed.session.status}`, committed);

  // The client has verified the commitment against the pinned runtime key already. Verify it once more
  // against the history the session lists: it must cover exactly these messages, in this order.
  const { commitment } = committed;
  if (commitment === undefined) throw new Error("The commit resolved no session");
  const view = await decision.get(CALL);
  const messages = await decision.messages(CALL);
  if (view.start_hash === undefined) throw new Error("The runtime did not give the session's start hash");
  verifySessionCommitment(commitment, config.runtimePublicKey, {
    session: decision.id,
    historyHash: view.history_hash,
    history: { startHash: view.start_hash, envelopeHashes: messages.map((message) => message.envelope_hash) },
  });
  // Let the watcher print the last events (RESOLVED) first; it is closed below either way.
  await Promise.race([watching, delay(10_000, undefined, { ref: false })]);
  console.log("history, as signed by each sender:");
  for (const message of messages) {
    console.log(`  ${message.seq} ${message.sender} ${message.kind} ${JSON.stringify(message.body)}`);
  }
  console.log(
    `commitment verified: ${JSON.stringify({
      session: commitment.session,
      outcome: commitment.outcome,
      history_hash: commitment.history_hash,
    })}`,
  );
  process.exitCode = resultOf(commitment.outcome) === "committed" ? 0 : 1;
} catch (error) {
  // Typed errors: match on the stable code (or, for local errors, the reason), never the message.
  if (error instanceof SignetProtocolError) console.error(`refused: ${error.code} (${error.reason ?? "-"})`);
  else if (error instanceof SdkError) console.error(`local error: ${error.reason ?? "-"}: ${error.message}`);
  else throw error;
  process.exitCode = 1;
} finally {
  watcher?.close();
  await watching;
  await Promise.all([planner.close(), reviewer.close(), security.close()]);
}
