// Runs the public conformance vectors in ../shared/vectors against Signet's own functions.
//
// Prints one line per suite, `SUITE: N passed, M failed`, then a total line `N passed, M failed`,
// and exits non-zero if any case fails.
import { readFileSync } from "node:fs";
import { join } from "node:path";
import { Ed25519PrivateKey, Ed25519PublicKey, canonicalize, parseStrictJson } from "@signet/protocol";
import { vectorsDir } from "./vectors.js";

interface SuiteResult {
  name: string;
  passed: number;
  failed: number;
  failures: string[];
}

function suite(name: string, run: (check: (ok: boolean, label: string) => void) => void): SuiteResult {
  const result: SuiteResult = { name, passed: 0, failed: 0, failures: [] };
  run((ok, label) => {
    if (ok) result.passed++;
    else {
      result.failed++;
      result.failures.push(label);
    }
  });
  return result;
}

function readJson(path: string): unknown {
  return JSON.parse(readFileSync(path, "utf8"));
}

const dir = vectorsDir();

interface WycheproofEd25519 {
  testGroups: {
    publicKey: { pk: string };
    tests: { tcId: number; msg: string; sig: string; result: "valid" | "invalid" | "acceptable" }[];
  }[];
}

/** Verifies with the project's key import and strict verify; a refused key fails every signature. */
function verifyWithProject(publicHex: string, message: string, signature: string): boolean {
  let key: Ed25519PublicKey;
  try {
    key = Ed25519PublicKey.fromRaw(Buffer.from(publicHex, "hex"));
  } catch {
    return false;
  }
  return key.verify(Buffer.from(message, "hex"), Buffer.from(signature, "hex"));
}

const results: SuiteResult[] = [
  suite("wycheproof-ed25519", (check) => {
    const data = readJson(join(dir, "wycheproof/ed25519_test.json")) as WycheproofEd25519;
    for (const group of data.testGroups) {
      for (const test of group.tests) {
        const verified = verifyWithProject(group.publicKey.pk, test.msg, test.sig);
        // No case in this file is "acceptable"; treat one as passing either way if it ever appears.
        const ok = test.result === "acceptable" || verified === (test.result === "valid");
        check(ok, `tcId ${test.tcId} (${test.result})`);
      }
    }
  }),
  suite("rfc8032-section-7.1", (check) => {
    const data = readJson(join(dir, "rfc8032/ed25519_rfc8032_section7_1.json")) as {
      cases: { secretKey: string; publicKey: string; message: string; signature: string }[];
    };
    for (const [index, c] of data.cases.entries()) {
      const key = Ed25519PrivateKey.fromSeed(Buffer.from(c.secretKey, "hex"));
      const signature = key.sign(Buffer.from(c.message, "hex")).toString("hex");
      check(
        key.publicKey.raw.toString("hex") === c.publicKey &&
          signature === c.signature &&
          verifyWithProject(c.publicKey, c.message, c.signature),
        `case ${index}`,
      );
    }
  }),
  suite("rfc8032-sign.input", (check) => {
    const lines = readFileSync(join(dir, "rfc8032/ed25519-dalek_TESTVECTORS.txt"), "utf8").split("\n");
    for (const [index, line] of lines.entries()) {
      if (line.trim() === "") continue;
      const [secret = "", publicHex = "", message = "", signed = ""] = line.split(":");
      const key = Ed25519PrivateKey.fromSeed(Buffer.from(secret.slice(0, 64), "hex"));
      const signature = key.sign(Buffer.from(message, "hex")).toString("hex");
      check(
        key.publicKey.raw.toString("hex") === publicHex &&
          signature === signed.slice(0, 128) &&
          verifyWithProject(publicHex, message, signature),
        `line ${index + 1}`,
      );
    }
  }),
  suite("rfc8785-jcs", (check) => {
    const base = join(dir, "json-canonicalization/testdata");
    for (const name of ["arrays", "french", "structures", "unicode", "values", "weird"]) {
      const input = readFileSync(join(base, "input", `${name}.json`));
      const expected = readFileSync(join(base, "output", `${name}.json`));
      const expectedHex = readFileSync(join(base, "outhex", `${name}.txt`), "utf8")
        .trim()
        .split(/\s+/)
        .join("");
      const actual = Buffer.from(canonicalize(parseStrictJson(input)), "utf8");
      check(actual.equals(expected) && actual.toString("hex") === expectedHex, name);
    }
  }),
];

let passed = 0;
let failed = 0;
for (const result of results) {
  passed += result.passed;
  failed += result.failed;
  console.log(`${result.name}: ${result.passed} passed, ${result.failed} failed`);
  for (const failure of result.failures) console.log(`  FAILED ${failure}`);
}
console.log(`${passed} passed, ${failed} failed`);
if (failed > 0 || passed === 0) process.exitCode = 1;
