// Policy suite: decisions per second and latency at 10, 1,000 and 10,000 generated rules, side by side
// in the same process with Cedar (cedar-wasm, prepared policy set, statefulIsAuthorized) and with the
// Agent Governance Toolkit's PolicyEngine.evaluatePolicy on the same rules (bench/policy/generate.ts
// states the mix; bench/policy/translate.ts says what each translation cannot express).
//
//   policy_decisions_per_s_N_rules   Signet, cycling over 1,000 requests (60% aimed at a rule)
//   policy_p50_us / p99_us_N_rules   one timed call per decision (the timer's own cost included)
//   cedar_* / agt_*                  the same requests through each baseline
//   policy_vs_cedar_throughput       the smallest of the per-size ratios (median over rounds)
//   *_same_effect_share_N_rules      how often a baseline reached Signet's effect: the translations
//                                    are close, not exact (no layers in either; see translate.ts)
import * as cedar from "@cedar-policy/cedar-wasm/nodejs";
import { ConflictResolutionStrategy, PolicyEngine } from "@microsoft/agent-governance-sdk";
import { compilePolicy } from "../../packages/runtime/src/policy/compile.js";
import type { CompiledPolicy } from "../../packages/runtime/src/policy/engine.js";
import { type Metric, median, medianRatio, opsPerSecond, percentile, report } from "../harness.js";
import { type GeneratedPolicy, generatePolicy } from "../policy/generate.js";
import { toAgtContext, toAgtRules, toCedar, toCedarRequest } from "../policy/translate.js";

const SIZES = [10, 1000, 10_000] as const;
const ROUNDS = 7;
/** Wall time each engine gets per round. */
const ROUND_MS = 120;
/** AGT at 10,000 rules takes tens of milliseconds a call: it gets fewer, shorter rounds. */
const AGT_ROUNDS_10000 = 3;
const LATENCY_PASSES = 20;

interface Engine {
  readonly name: "policy" | "cedar" | "agt";
  readonly decide: (index: number) => boolean;
}

/** Calls per round so that a round lasts about `ROUND_MS`. */
function calibrate(decide: (index: number) => boolean): number {
  let calls = 0;
  const start = performance.now();
  while (performance.now() - start < 30) decide(calls++);
  const perCall = (performance.now() - start) / calls;
  return Math.max(3, Math.round(ROUND_MS / perCall));
}

/** Per-call latencies in µs over `passes` passes of the requests (or `limit` calls). */
function latencies(decide: (index: number) => boolean, count: number, limit: number): number[] {
  const samples: number[] = [];
  for (let i = 0; i < limit; i++) {
    const start = process.hrtime.bigint();
    decide(i % count);
    samples.push(Number(process.hrtime.bigint() - start) / 1000);
  }
  return samples;
}

function buildEngines(
  generated: GeneratedPolicy,
  size: number,
): { engines: Engine[]; signet: CompiledPolicy; setup: Metric[] } {
  const requests = generated.requests;
  const count = requests.length;
  const setup: Metric[] = [];

  let start = performance.now();
  const signet = compilePolicy(generated.sources);
  setup.push({ name: `policy_compile_ms_${size}_rules`, value: performance.now() - start, unit: "ms" });
  const signetRequests = requests.map((r) => r.request);

  start = performance.now();
  const setId = `bench-${size}`;
  const parsed = cedar.preparsePolicySet(setId, { staticPolicies: toCedar(generated.rules) });
  if (parsed.type !== "success")
    throw new Error(`Cedar refused the policies: ${JSON.stringify(parsed.errors[0])}`);
  setup.push({ name: `cedar_prepare_ms_${size}_rules`, value: performance.now() - start, unit: "ms" });
  const cedarCalls = requests.map((r) => ({
    ...toCedarRequest(r),
    preparsedPolicySetId: setId,
    entities: [],
  }));

  start = performance.now();
  const agt = new PolicyEngine([], ConflictResolutionStrategy.DenyOverrides);
  agt.loadPolicy({ name: "bench", rules: toAgtRules(generated.rules) });
  setup.push({ name: `agt_load_ms_${size}_rules`, value: performance.now() - start, unit: "ms" });
  const agtContexts = requests.map(toAgtContext);

  const engines: Engine[] = [
    { name: "policy", decide: (i) => signet.decide(signetRequests[i % count]!).effect === "allow" },
    {
      name: "cedar",
      decide: (i) => {
        const answer = cedar.statefulIsAuthorized(cedarCalls[i % count]!);
        if (answer.type !== "success") throw new Error(`Cedar failed: ${JSON.stringify(answer.errors[0])}`);
        return answer.response.decision === "allow";
      },
    },
    {
      name: "agt",
      decide: (i) => agt.evaluatePolicy(`did:bench:${i % count}`, agtContexts[i % count]!).allowed,
    },
  ];
  return { engines, signet, setup };
}

export async function run(): Promise<boolean> {
  const metrics: Metric[] = [];
  const cedarRatios: number[] = [];
  console.log(`policy suite — cedar-wasm ${cedar.getCedarVersion()}, sizes ${SIZES.join(", ")}`);
  for (const size of SIZES) {
    const generated = generatePolicy(size);
    const { engines, signet, setup } = buildEngines(generated, size);
    const count = generated.requests.length;
    metrics.push(...setup);

    // Agreement and the share of allows, over every request once.
    const effects = Object.fromEntries(
      engines.map((engine) => [
        engine.name,
        generated.requests.map((_, i) =>
          engine.name === "agt" && size === 10_000 && i >= 100 ? undefined : engine.decide(i),
        ),
      ]),
    );
    const signetEffects = effects.policy!;
    const allows = signetEffects.filter(Boolean).length;
    metrics.push({ name: `policy_allow_share_${size}_rules`, value: allows / count, unit: "ratio" });
    for (const baseline of ["cedar", "agt"] as const) {
      const compared = effects[baseline]!.map((effect, i) =>
        effect === undefined ? undefined : effect === signetEffects[i],
      );
      const known = compared.filter((same) => same !== undefined);
      metrics.push({
        name: `${baseline}_same_effect_share_${size}_rules`,
        value: known.filter(Boolean).length / known.length,
        unit: "ratio",
      });
    }

    // Throughput: interleaved rounds (policy, cedar, agt, policy, ...), each about ROUND_MS long.
    const calls = Object.fromEntries(engines.map((engine) => [engine.name, calibrate(engine.decide)]));
    const samples: Record<string, number[]> = { policy: [], cedar: [], agt: [] };
    let offset = 0;
    for (let round = 0; round < ROUNDS; round++) {
      for (const engine of engines) {
        if (engine.name === "agt" && size === 10_000 && round >= AGT_ROUNDS_10000) continue;
        const base = offset;
        let i = 0;
        samples[engine.name]!.push(opsPerSecond(() => engine.decide(base + i++), calls[engine.name]!));
      }
      offset += 97;
    }
    const policyOps = samples.policy!;
    metrics.push({ name: `policy_decisions_per_s_${size}_rules`, value: median(policyOps), unit: "ops/s" });
    metrics.push({
      name: `cedar_decisions_per_s_${size}_rules`,
      value: median(samples.cedar!),
      unit: "ops/s",
    });
    metrics.push({ name: `agt_decisions_per_s_${size}_rules`, value: median(samples.agt!), unit: "ops/s" });

    // Latency: one timed call per decision, every request in turn.
    const policyLatency = latencies(engines[0]!.decide, count, count * LATENCY_PASSES);
    const cedarLatency = latencies(
      engines[1]!.decide,
      count,
      Math.min(count * 3, Math.max(300, calls.cedar! * 3)),
    );
    metrics.push(
      {
        name: `policy_p50_us_${size}_rules`,
        value: percentile(policyLatency, 50),
        unit: "µs",
        baseline: `cedar_p50_us_${size}_rules`,
      },
      {
        name: `policy_p99_us_${size}_rules`,
        value: percentile(policyLatency, 99),
        unit: "µs",
        ...(size === 1000 ? { target: "<= 10" } : {}),
        baseline: `cedar_p99_us_${size}_rules`,
      },
      { name: `cedar_p50_us_${size}_rules`, value: percentile(cedarLatency, 50), unit: "µs" },
      { name: `cedar_p99_us_${size}_rules`, value: percentile(cedarLatency, 99), unit: "µs" },
    );

    const cedarRatio = medianRatio(policyOps, samples.cedar!);
    cedarRatios.push(cedarRatio);
    metrics.push({ name: `policy_vs_cedar_throughput_${size}_rules`, value: cedarRatio, unit: "ratio" });
    const agtSamples = samples.agt!;
    metrics.push({
      name: `policy_vs_agt_throughput_${size}_rules`,
      value: medianRatio(policyOps.slice(0, agtSamples.length), agtSamples),
      unit: "ratio",
      ...(size === 1000 ? { target: ">= 100" } : {}),
    });
    metrics.push({ name: `policy_rules_${size}`, value: signet.rules.length, unit: "rules" });
  }
  metrics.push({
    name: "policy_vs_cedar_throughput",
    value: Math.min(...cedarRatios),
    unit: "ratio",
    target: ">= 20",
    baseline: "the smallest of policy_vs_cedar_throughput_N_rules",
  });
  return Promise.resolve(report("policy", metrics));
}
