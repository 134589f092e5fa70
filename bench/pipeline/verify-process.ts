// The efficiency baseline: the CPU time of one Ed25519 verification, in a process of the runtime's
// kind (node with tsx, nothing else running in it). It verifies the signing inputs of a real invoke
// envelope and of a real result envelope, alternately, with prepared KeyObjects, and reads
// process.cpuUsage around each round. Forked by the pipeline bench; answers `measure`.
import { verify } from "node:crypto";
import { Ed25519PrivateKey, newMessageId, signEnvelope, signingInput } from "@signet/protocol";
import { announce, serveCommands } from "./ipc.js";

interface Prepared {
  readonly input: Buffer;
  readonly signature: Buffer;
  readonly key: Ed25519PrivateKey;
}

function prepare(): Prepared[] {
  const caller = Ed25519PrivateKey.generate();
  const executor = Ed25519PrivateKey.generate();
  const body = {
    query: "SELECT id, total, status FROM orders WHERE customer_id = $1 AND created_at > $2 LIMIT $3",
    params: ["cus_8f2a91", "2026-11-01T00:00:00Z", 50],
    options: { timeout_ms: 2500, read_only: true, consistency: "strong" },
    trace: { sequence: 1, span: "bench-load" },
  };
  const request = signEnvelope({ type: "invoke", from: "bench-caller", to: "tool:bench/echo", body }, caller);
  const result = signEnvelope(
    {
      type: "result",
      from: "bench-executor",
      to: "agent:bench-caller",
      body,
      re: { id: request.envelope.id, hash: request.hash },
      status: "ok",
      decision: { audit_id: newMessageId(), rules: ["registered-tool"] },
    },
    executor,
  );
  return [
    { envelope: request.envelope, key: caller },
    { envelope: result.envelope, key: executor },
  ].map(({ envelope, key }) => {
    const input = signingInput(envelope);
    return { input, signature: Buffer.from(envelope.sig, "base64url"), key };
  });
}

function measure(args: { rounds: number; iterations: number }) {
  const prepared = prepare();
  const keys = prepared.map((p) => p.key.publicKey.keyObject);
  const once = (i: number) => {
    const p = prepared[i & 1]!;
    if (!verify(null, p.input, keys[i & 1]!, p.signature)) throw new Error("verification failed");
  };
  for (let i = 0; i < args.iterations; i++) once(i);
  const usPerVerify: number[] = [];
  for (let round = 0; round < args.rounds; round++) {
    const before = process.cpuUsage();
    for (let i = 0; i < args.iterations; i++) once(i);
    const spent = process.cpuUsage(before);
    usPerVerify.push((spent.user + spent.system) / args.iterations);
  }
  return { usPerVerify, inputBytes: prepared.map((p) => p.input.length) };
}

serveCommands({ measure });
announce("ready");
