// `signet sessions ...`: list, inspect, cancel and watch coordination sessions in a running runtime
// (docs/sessions.md). A resolved session's commitment is checked here, with the runtime public key and
// the message history, not taken on the runtime's word.
import { existsSync } from "node:fs";
import { type Command, Option } from "commander";
import {
  type ContentHash,
  type Ed25519PublicKey,
  isSignetError,
  verifySessionCommitment,
} from "@signet/protocol";
import {
  AuthConfig,
  SessionLifecycleWatcher,
  type SessionCommitment,
  type SessionEvent,
  type SessionMessage,
  type SessionMode,
  type SessionStatus,
  type SessionView,
  SignetClient,
  isProtocolError,
} from "@signet/sdk";
import { resolveAdminConnection } from "../client.js";
import { defaultRuntimeKeyPath, readRuntimePublicKey } from "./audit.js";
import {
  type RemoteOptions,
  adminClientOptions,
  nonNegativeInteger,
  positiveInteger,
  print,
  withAdminClient,
  withRemoteOptions,
} from "./remote.js";

const SESSION_STATUSES = [
  "OPEN",
  "RESOLVED",
  "EXPIRED",
  "CANCELLED",
] as const satisfies readonly SessionStatus[];
const SESSION_MODES = [
  "decision",
  "proposal",
  "task",
  "handoff",
  "quorum",
] as const satisfies readonly SessionMode[];
/** The runtime's page size when `--limit` is not given. */
const DEFAULT_LIST_LIMIT = 100;

// ---------------------------------------------------------------------------------------------------
// Wire shapes

type WireSession = { session: SessionView; commitment?: SessionCommitment };
type WireMessages = {
  session_id: string;
  start_hash: ContentHash;
  history_hash: ContentHash;
  messages: SessionMessage[];
};
type WireWhoami = { id: string };

/** What `sessions get` found when it checked a resolved session's commitment. */
type CommitmentCheck =
  | { readonly status: "verified"; readonly kid: string; readonly message_count: number }
  | { readonly status: "failed"; readonly message: string }
  | { readonly status: "unchecked"; readonly message: string };

// ---------------------------------------------------------------------------------------------------
// Human output

interface Column {
  readonly title: string;
  /** Right-aligned (numbers). */
  readonly right?: boolean;
}

/** Columns padded to their widest cell, two spaces apart. */
function table(columns: readonly Column[], rows: readonly (readonly string[])[]): string {
  const widths = columns.map((column, i) =>
    Math.max(column.title.length, ...rows.map((row) => (row[i] ?? "").length)),
  );
  const line = (cells: readonly string[]): string =>
    columns
      .map((column, i) => {
        const cell = cells[i] ?? "";
        return column.right === true ? cell.padStart(widths[i]!) : cell.padEnd(widths[i]!);
      })
      .join("  ")
      .trimEnd();
  return [line(columns.map((column) => column.title)), ...rows.map((row) => line(row))].join("\n");
}

function sessionTable(sessions: readonly SessionView[]): string {
  return table(
    [
      { title: "ID" },
      { title: "MODE" },
      { title: "STATUS" },
      { title: "INITIATOR" },
      { title: "PARTICIPANTS", right: true },
      { title: "MESSAGES", right: true },
      { title: "CREATED" },
      { title: "EXPIRES / CLOSED" },
    ],
    sessions.map((s) => [
      s.id,
      s.mode,
      s.status,
      s.initiator,
      String(s.participants.length),
      String(s.message_count),
      s.created_at,
      s.closed_at === undefined ? `expires ${s.expires_at}` : `closed ${s.closed_at}`,
    ]),
  );
}

function sessionText(session: SessionView): string {
  const fields: [string, string | undefined][] = [
    ["mode", session.mode],
    ["status", session.status],
    ["initiator", session.initiator],
    ["participants", session.participants.join(", ")],
    ["created", session.created_at],
    ["expires", session.expires_at],
    ["closed", session.closed_at],
    ["messages", String(session.message_count)],
    ["history", session.history_hash],
    ["policy_ref", session.policy_ref],
    ["config", JSON.stringify(session.config)],
    ["outcome", session.outcome === undefined ? undefined : JSON.stringify(session.outcome)],
  ];
  return [
    `session ${session.id}`,
    ...fields.flatMap(([name, value]) => (value === undefined ? [] : [`  ${name.padEnd(12)} ${value}`])),
  ].join("\n");
}

function commitmentText(commitment: SessionCommitment, check: CommitmentCheck): string {
  const verdict =
    check.status === "verified"
      ? `verified with the runtime key ${check.kid} over the ${check.message_count} messages`
      : check.status === "failed"
        ? `FAILED: ${check.message}`
        : `not verified: ${check.message}`;
  return [
    `commitment: ${verdict}`,
    `  signed by    ${commitment.kid}`,
    `  history      ${commitment.history_hash}`,
    `  resolved at  ${show(commitment.resolved_at)}`,
    `  sig          ${commitment.sig}`,
  ].join("\n");
}

function messagesText(answer: WireMessages): string {
  const head = `session ${answer.session_id}: ${answer.messages.length} message(s); history ${answer.history_hash}`;
  if (answer.messages.length === 0) return `${head}\nno messages yet`;
  const rows = answer.messages.map((m) => [
    String(m.seq),
    m.accepted_at,
    m.sender,
    m.kind,
    JSON.stringify(m.body),
  ]);
  return `${head}\n${table(
    [
      { title: "SEQ", right: true },
      { title: "ACCEPTED" },
      { title: "SENDER" },
      { title: "KIND" },
      { title: "BODY" },
    ],
    rows,
  )}`;
}

/** A wire value as text: strings as they are, anything else as JSON. */
function show(value: unknown): string {
  return typeof value === "string" ? value : (JSON.stringify(value) ?? "-");
}

/** One line per event: id, time, type, session, then what the event says. */
function eventLine(event: SessionEvent): string {
  const data = event.data;
  const list = (value: unknown): string => (Array.isArray(value) ? value.map(show).join(", ") : show(value));
  let detail: string;
  switch (event.type) {
    case "CREATED":
      detail = `${show(data.mode)} by ${show(data.initiator)}; participants ${list(data.participants)}`;
      break;
    case "MESSAGE_ACCEPTED":
      detail = `#${show(data.seq)} ${show(data.kind)} from ${show(data.sender)} (message ${show(data.message_id)})`;
      break;
    case "RESOLVED":
      detail = `outcome ${JSON.stringify(data.outcome)}`;
      break;
    case "EXPIRED":
      detail = `expired at ${show(data.expires_at)}`;
      break;
    case "CANCELLED":
      detail = `by ${show(data.by)}${typeof data.reason === "string" ? `: ${data.reason}` : ""}`;
      break;
    default:
      detail = JSON.stringify(data);
  }
  return `${String(event.id).padStart(6)}  ${event.at}  ${event.type.padEnd(16)}  ${event.session_id}  ${detail}`;
}

// ---------------------------------------------------------------------------------------------------
// Checking a commitment

/**
 * Checks a resolved session's commitment with the runtime public key: its signature, that it covers
 * exactly the listed messages (from the start hash, in order), and that it is this session's.
 */
function checkCommitment(
  session: SessionView,
  commitment: SessionCommitment,
  history: WireMessages,
  key: Ed25519PublicKey,
): CommitmentCheck {
  try {
    verifySessionCommitment(commitment, key, {
      startHash: history.start_hash,
      envelopeHashes: history.messages.map((message) => message.envelope_hash),
    });
  } catch (error) {
    const message = isSignetError(error) ? `${error.code}: ${error.message}` : (error as Error).message;
    return { status: "failed", message };
  }
  if (commitment.session !== session.id || history.session_id !== session.id) {
    return { status: "failed", message: `the commitment is for session ${String(commitment.session)}` };
  }
  if (commitment.history_hash !== session.history_hash) {
    return { status: "failed", message: "the commitment's history hash is not the session's" };
  }
  return { status: "verified", kid: key.kid, message_count: history.messages.length };
}

/** The runtime key to check commitments with: `--key`, else DATA_DIR/keys/runtime.pub when it exists. */
function commitmentKey(options: {
  readonly key?: string;
  readonly dataDir: string;
}): Ed25519PublicKey | undefined {
  if (options.key !== undefined) return readRuntimePublicKey(options.key);
  const file = defaultRuntimeKeyPath(options.dataDir);
  return existsSync(file) ? readRuntimePublicKey(file) : undefined;
}

// ---------------------------------------------------------------------------------------------------
// Watching

/** An SDK failure as the CLI reports errors: `CODE: message` when the runtime refused. */
function reportable(error: unknown): unknown {
  return isProtocolError(error) ? new Error(`${error.code}: ${error.message}`, { cause: error }) : error;
}

/**
 * Calls `stop` on the first SIGINT or SIGTERM (the watch then ends and exits 0); a second one exits at
 * once. Returns the function that removes the handlers.
 */
function onInterrupt(stop: () => void): () => void {
  let interrupts = 0;
  const handler = (): void => {
    interrupts += 1;
    if (interrupts > 1) process.exit(130);
    stop();
  };
  process.on("SIGINT", handler);
  process.on("SIGTERM", handler);
  return () => {
    process.off("SIGINT", handler);
    process.off("SIGTERM", handler);
  };
}

async function watchSessions(
  options: RemoteOptions & { session?: string; from?: number },
  write: (line: string) => void,
): Promise<void> {
  const connection = resolveAdminConnection(adminClientOptions(options));
  // Who the key authenticates as: the SDK binds every credential to its principal. This also fails
  // fast, with the runtime's code, when the runtime is unreachable or refuses the key.
  const me = await withAdminClient(options, (client) => client.call<WireWhoami>("GET", "/v1/auth/whoami"));
  const client = new SignetClient({
    target: connection.url.href,
    // The admin client takes an http:// URL the user gave on purpose; the SDK wants that said twice.
    ...(connection.url.protocol === "http:" ? { secure: false, allowInsecure: true } : {}),
    ...(connection.ca === undefined ? {} : { rootCertificates: connection.ca }),
    auth: AuthConfig.forApiKey(connection.apiKey, { expectedSender: me.id }),
    agentId: me.id,
  });
  let removeHandlers: (() => void) | undefined;
  try {
    const watcher = new SessionLifecycleWatcher(client, {
      ...(options.session === undefined ? {} : { sessionId: options.session }),
      ...(options.from === undefined ? {} : { lastEventId: options.from }),
    });
    removeHandlers = onInterrupt(() => watcher.close());
    const where = options.from === undefined ? "from now" : `after event ${options.from}`;
    const which = options.session === undefined ? "" : ` of ${options.session}`;
    process.stderr.write(`watching session events${which} ${where}; Ctrl-C to stop\n`);
    for await (const event of watcher) write(options.json ? JSON.stringify(event) : eventLine(event));
  } catch (error) {
    throw reportable(error);
  } finally {
    removeHandlers?.();
    await client.close();
  }
}

// ---------------------------------------------------------------------------------------------------
// Commands

export function registerSessionsCommands(program: Command): void {
  const sessions = program
    .command("sessions")
    .description("List, inspect, cancel and watch coordination sessions in a running runtime");

  withRemoteOptions(
    sessions
      .command("list")
      .description("List sessions matching every filter given (oldest first)")
      .addOption(new Option("--status <status>", "only sessions in this state").choices(SESSION_STATUSES))
      .addOption(new Option("--mode <mode>", "only sessions of this mode").choices(SESSION_MODES))
      .option("--participant <agent>", "only sessions this agent takes part in")
      .option("--after <id>", "only sessions listed after this one (the next page)")
      .option(
        "--limit <n>",
        `at most this many sessions (1..1000, default ${DEFAULT_LIST_LIMIT})`,
        positiveInteger,
      ),
  ).action(
    async (
      options: RemoteOptions & {
        status?: string;
        mode?: string;
        participant?: string;
        after?: string;
        limit?: number;
      },
    ) => {
      const params = new URLSearchParams();
      const filters: [string, string | number | undefined][] = [
        ["status", options.status],
        ["mode", options.mode],
        ["participant", options.participant],
        ["after", options.after],
        ["limit", options.limit],
      ];
      for (const [name, value] of filters) if (value !== undefined) params.set(name, String(value));
      const query = params.toString();
      const { sessions: found, next } = await withAdminClient(options, (client) =>
        client.call<{ sessions: SessionView[]; next?: string }>(
          "GET",
          `/v1/sessions${query === "" ? "" : `?${query}`}`,
        ),
      );
      print(options, found, () => (found.length === 0 ? "no sessions match" : sessionTable(found)));
      if (!options.json && next !== undefined) {
        process.stderr.write(`(${found.length} shown; more may match: the next page is --after ${next})\n`);
      }
    },
  );

  withRemoteOptions(
    sessions
      .command("get <id>")
      .description(
        "Show a session; for a resolved one, its commitment, checked with the runtime public key over the message history (exits 1 when it does not verify)",
      )
      .option(
        "--key <file>",
        "the runtime public key, PEM, JWK or base64url (default DATA_DIR/keys/runtime.pub, when it exists)",
      ),
  ).action(async (id: string, options: RemoteOptions & { key?: string }) => {
    const key = commitmentKey(options);
    const path = `/v1/sessions/${encodeURIComponent(id)}`;
    const { answer, history } = await withAdminClient(options, async (client) => {
      const answer = await client.call<WireSession>("GET", path);
      const history =
        answer.commitment === undefined || key === undefined
          ? undefined
          : await client.call<WireMessages>("GET", `${path}/messages`);
      return { answer, history };
    });
    const { session, commitment } = answer;
    if (commitment === undefined) {
      print(options, answer, () => sessionText(session));
      return;
    }
    const check: CommitmentCheck =
      key === undefined || history === undefined
        ? {
            status: "unchecked",
            message: `no runtime public key (${defaultRuntimeKeyPath(options.dataDir)} does not exist): pass --key FILE`,
          }
        : checkCommitment(session, commitment, history, key);
    print(
      options,
      { ...answer, verification: check },
      () => `${sessionText(session)}\n${commitmentText(commitment, check)}`,
    );
    if (check.status === "failed") process.exitCode = 1;
  });

  withRemoteOptions(
    sessions.command("messages <id>").description("List a session's accepted messages, in order"),
  ).action(async (id: string, options: RemoteOptions) => {
    const answer = await withAdminClient(options, (client) =>
      client.call<WireMessages>("GET", `/v1/sessions/${encodeURIComponent(id)}/messages`),
    );
    print(options, answer, () => messagesText(answer));
  });

  withRemoteOptions(
    sessions
      .command("cancel <id>")
      .description("Cancel an open session as an operator (needs session:cancel)")
      .option("--reason <text>", "why (recorded with the CANCELLED event, up to 1024 characters)"),
  ).action(async (id: string, options: RemoteOptions & { reason?: string }) => {
    const answer = await withAdminClient(options, (client) =>
      client.call<{ session: SessionView }>(
        "POST",
        `/v1/sessions/${encodeURIComponent(id)}/cancel`,
        options.reason === undefined ? undefined : { reason: options.reason },
      ),
    );
    const { session } = answer;
    print(
      options,
      answer,
      () => `cancelled ${session.id} (${session.mode}, ${session.message_count} message(s))`,
    );
  });

  withRemoteOptions(
    sessions
      .command("watch")
      .description(
        "Print session lifecycle events as they happen, one a line (--json: one JSON object a line), until Ctrl-C; reconnects and resumes after a dropped connection (needs session:watch)",
      )
      .option("--session <id>", "only this session's events")
      .option(
        "--from <event-id>",
        "start after this event id (0 replays every event kept)",
        nonNegativeInteger,
      ),
  ).action(async (options: RemoteOptions & { session?: string; from?: number }) => {
    await watchSessions(options, (line) => process.stdout.write(`${line}\n`));
  });
}
