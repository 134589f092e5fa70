// `signet demo`: shows the protocol's guarantees step by step, each outcome with its wire code.
//
// Until the runtime lands, this demo runs the protocol layer alone: two agents sign and verify
// envelopes against an in-memory registry, and every attack is refused with its stable code.
import type { Command } from "commander";
import {
  Ed25519PrivateKey,
  type JsonValue,
  type ResolvedKey,
  SignetError,
  assertFresh,
  assertResultAnswers,
  canonicalize,
  hashJson,
  signEnvelope,
  verifyEnvelope,
} from "@signet/protocol";

interface Step {
  readonly title: string;
  readonly expected: string;
  readonly run: () => void;
}

function outcome(run: () => void): string {
  try {
    run();
    return "OK";
  } catch (error) {
    if (error instanceof SignetError) return error.code;
    throw error;
  }
}

/** Runs the demo; returns true when every step ended as expected. */
export function runProtocolDemo(write: (line: string) => void): boolean {
  const alice = Ed25519PrivateKey.generate();
  const bob = Ed25519PrivateKey.generate();
  const registry = new Map<string, ResolvedKey>([
    [alice.kid, { key: alice.publicKey, owner: "alice" }],
    [bob.kid, { key: bob.publicKey, owner: "bob" }],
  ]);
  const resolveKey = (kid: string): ResolvedKey | undefined => registry.get(kid);
  const verify = (wire: string) => verifyEnvelope(wire, { resolveKey });
  const tamper = (wire: string, change: (e: Record<string, JsonValue>) => void): string => {
    const envelope = JSON.parse(wire) as Record<string, JsonValue>;
    change(envelope);
    return canonicalize(envelope);
  };

  const request = signEnvelope(
    { type: "invoke", from: "alice", to: "tool:database/query", body: { query: "select 1" } },
    alice,
  );
  write(`alice (${alice.kid}) and bob (${bob.kid}) are registered.`);

  const steps: Step[] = [
    {
      title: "alice signs an invocation; it verifies",
      expected: "OK",
      run: () => void verify(request.wire),
    },
    {
      title: "bob answers with a signed result bound to the request; alice verifies it",
      expected: "OK",
      run: () => {
        const result = signEnvelope(
          {
            type: "result",
            from: "bob",
            to: "agent:alice",
            body: { rows: [[1]] },
            re: { id: request.envelope.id, hash: request.hash },
            status: "ok",
          },
          bob,
        );
        assertResultAnswers(verify(result.wire).envelope, { id: request.envelope.id, hash: request.hash });
      },
    },
    {
      title: "bob claims to be alice (spoofed sender)",
      expected: "SIGNATURE_INVALID",
      run: () =>
        void verify(signEnvelope({ type: "invoke", from: "alice", to: "tool:x", body: {} }, bob).wire),
    },
    {
      title: "the body is changed in transit",
      expected: "HASH_MISMATCH",
      run: () => void verify(tamper(request.wire, (e) => (e.body = { query: "drop table orders" }))),
    },
    {
      title: "the body and its hash are changed in transit",
      expected: "SIGNATURE_INVALID",
      run: () =>
        void verify(
          tamper(request.wire, (e) => {
            e.body = { query: "drop table orders" };
            e.body_hash = hashJson(e.body);
          }),
        ),
    },
    {
      title: "a duplicate JSON key smuggles a second sender",
      expected: "INVALID_ENVELOPE",
      run: () => void verify(request.wire.replace('"from":"alice"', '"from":"alice","from":"bob"')),
    },
    {
      title: "an envelope from two minutes ago",
      expected: "STALE_MESSAGE",
      run: () => {
        const old = signEnvelope(
          { type: "invoke", from: "alice", to: "tool:x", body: {}, ts: Date.now() - 120_000 },
          alice,
        );
        assertFresh(verify(old.wire).envelope.ts);
      },
    },
    {
      title: "alice's key is revoked, then she signs again",
      expected: "KEY_REVOKED",
      run: () => {
        registry.set(alice.kid, { key: alice.publicKey, owner: "alice", revoked: true });
        verify(signEnvelope({ type: "invoke", from: "alice", to: "tool:x", body: {} }, alice).wire);
      },
    },
  ];

  let allAsExpected = true;
  for (const [index, step] of steps.entries()) {
    const got = outcome(step.run);
    const asExpected = got === step.expected;
    allAsExpected &&= asExpected;
    write(`${index + 1}. ${step.title}: ${got}${asExpected ? "" : `  (expected ${step.expected})`}`);
  }
  write(allAsExpected ? "every step ended as expected" : "SOME STEPS DID NOT END AS EXPECTED");
  return allAsExpected;
}

export function registerDemoCommand(program: Command): void {
  program
    .command("demo")
    .description("Show Signet's checks step by step, each outcome with its wire code")
    .action(() => {
      const ok = runProtocolDemo((line) => process.stdout.write(`${line}\n`));
      if (!ok) process.exitCode = 1;
    });
}
