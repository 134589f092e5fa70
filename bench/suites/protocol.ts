// Protocol suite: envelope sign/verify against raw Ed25519, canonicalization against JSON.stringify.
import { sign as nodeSign, verify as nodeVerify } from "node:crypto";
import canonicalizePackage from "canonicalize";
import {
  Ed25519PrivateKey,
  type JsonValue,
  type KeyResolver,
  type ResolvedKey,
  canonicalize,
  parseStrictJson,
  signEnvelope,
  signingInput,
  verifyEnvelope,
} from "@signet/protocol";
import { type Metric, interleaved, median, medianRatio, report } from "../harness.js";

/** A realistic body whose canonical JSON is exactly 1 KiB. */
export function oneKibBody(): JsonValue {
  const body: { [key: string]: JsonValue } = {
    query: "SELECT id, total, status FROM orders WHERE customer_id = $1 AND created_at > $2",
    params: ["cus_8f2a91", "2026-11-01T00:00:00Z"],
    options: { limit: 50, timeout_ms: 2500, read_only: true, consistency: "strong" },
    items: [],
    note: "",
  };
  for (let i = 0; i < 6; i++) {
    (body.items as JsonValue[]).push({
      sku: `SKU-${1000 + i}`,
      qty: i + 1,
      price: 9.99 * (i + 1),
      tags: ["a", "é"],
    });
  }
  const size = Buffer.byteLength(canonicalize(body));
  body.note = "n".repeat(1024 - size);
  if (Buffer.byteLength(canonicalize(body)) !== 1024) throw new Error("body is not 1 KiB");
  return body;
}

export function run(): Promise<boolean> {
  const key = Ed25519PrivateKey.generate();
  const body = oneKibBody();
  const draft = { type: "invoke" as const, from: "alice", to: "tool:database/query", body };
  const signed = signEnvelope(draft, key);
  const wire = Buffer.from(signed.wire, "utf8");
  const input = signingInput(signed.envelope);
  const signature = key.sign(input);
  // The registry view a runtime keeps in memory: a prepared map from key id to key.
  const registry = new Map<string, ResolvedKey>([[key.kid, { key: key.publicKey, owner: "alice" }]]);
  const resolveKey: KeyResolver = (kid) => registry.get(kid);
  const publicKeyObject = key.publicKey.keyObject;
  const privateKeyObject = key.keyObject;
  const bodyText = canonicalize(body);

  const crypto = interleaved(
    {
      raw_verify: () => nodeVerify(null, input, publicKeyObject, signature),
      envelope_verify: () => verifyEnvelope(wire, { resolveKey }),
      raw_sign: () => nodeSign(null, input, privateKeyObject),
      envelope_sign: () => signEnvelope(draft, key),
    },
    { rounds: 9, iterations: 1500, warmup: 1500 },
  );
  const json = interleaved(
    {
      canonicalize: () => canonicalize(body),
      canonicalize_package: () => canonicalizePackage(body),
      json_stringify: () => JSON.stringify(body),
      strict_parse: () => parseStrictJson(bodyText),
      json_parse: () => JSON.parse(bodyText) as unknown,
    },
    { rounds: 9, iterations: 20000, warmup: 20000 },
  );

  const metrics: Metric[] = [
    {
      name: "envelope_verify_vs_raw",
      value: medianRatio(crypto.envelope_verify!, crypto.raw_verify!),
      unit: "ratio",
      target: ">= 0.85",
    },
    { name: "envelope_verify_ops", value: median(crypto.envelope_verify!), unit: "ops/s" },
    { name: "raw_verify_ops", value: median(crypto.raw_verify!), unit: "ops/s" },
    {
      name: "envelope_sign_vs_raw",
      value: medianRatio(crypto.envelope_sign!, crypto.raw_sign!),
      unit: "ratio",
      target: ">= 0.70",
    },
    { name: "envelope_sign_ops", value: median(crypto.envelope_sign!), unit: "ops/s" },
    { name: "raw_sign_ops", value: median(crypto.raw_sign!), unit: "ops/s" },
    { name: "canonicalize_1kib_ops", value: median(json.canonicalize!), unit: "ops/s" },
    { name: "canonicalize_package_1kib_ops", value: median(json.canonicalize_package!), unit: "ops/s" },
    { name: "json_stringify_1kib_ops", value: median(json.json_stringify!), unit: "ops/s" },
    {
      name: "canonicalize_vs_json_stringify",
      value: medianRatio(json.canonicalize!, json.json_stringify!),
      unit: "ratio",
    },
    {
      name: "canonicalize_vs_package",
      value: medianRatio(json.canonicalize!, json.canonicalize_package!),
      unit: "ratio",
    },
    { name: "strict_parse_1kib_ops", value: median(json.strict_parse!), unit: "ops/s" },
    { name: "json_parse_1kib_ops", value: median(json.json_parse!), unit: "ops/s" },
    {
      name: "strict_parse_vs_json_parse",
      value: medianRatio(json.strict_parse!, json.json_parse!),
      unit: "ratio",
    },
  ];
  return Promise.resolve(report("protocol", metrics));
}
