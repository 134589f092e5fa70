// The bench harness: interleaved timing rounds, medians, ratios against in-run baselines, result files.
import { cpus } from "node:os";
import { mkdirSync, writeFileSync } from "node:fs";
import { fileURLToPath } from "node:url";

/** One reported figure. A metric with a `target` is a promise; the harness checks it. */
export interface Metric {
  readonly name: string;
  readonly value: number;
  readonly unit: string;
  /** `>= 0.85`, `<= 200`: compared against `value`. */
  readonly target?: string;
  /** What the figure is measured against, when it is not a ratio of two listed metrics. */
  readonly baseline?: string;
}

/** A suite's result file, `bench/results/SUITE.json`. */
export interface SuiteResult {
  readonly suite: string;
  readonly when: string;
  readonly machine: { cpus: number; model: string; node: string };
  readonly metrics: readonly Metric[];
}

/** Whether `value` meets `target` (`>= x`, `<= x`, `> x`, `< x`). */
export function meetsTarget(value: number, target: string): boolean {
  const match = /^(>=|<=|>|<)\s*(-?[0-9.]+)$/.exec(target.trim());
  if (!match) throw new Error(`Bad target ${target}`);
  const bound = Number(match[2]);
  switch (match[1]) {
    case ">=":
      return value >= bound;
    case "<=":
      return value <= bound;
    case ">":
      return value > bound;
    default:
      return value < bound;
  }
}

/** The median of a non-empty list. */
export function median(values: readonly number[]): number {
  const sorted = [...values].sort((a, b) => a - b);
  const middle = sorted.length >> 1;
  return sorted.length % 2 === 1 ? sorted[middle]! : (sorted[middle - 1]! + sorted[middle]!) / 2;
}

/** A percentile (0..100) of a non-empty list, nearest-rank. */
export function percentile(values: readonly number[], p: number): number {
  const sorted = [...values].sort((a, b) => a - b);
  const rank = Math.min(sorted.length - 1, Math.max(0, Math.ceil((p / 100) * sorted.length) - 1));
  return sorted[rank]!;
}

/** Runs `fn` `iterations` times and returns operations per second. */
export function opsPerSecond(fn: () => unknown, iterations: number): number {
  const start = process.hrtime.bigint();
  for (let i = 0; i < iterations; i++) fn();
  const seconds = Number(process.hrtime.bigint() - start) / 1e9;
  return iterations / seconds;
}

/**
 * Measures several functions in interleaved rounds (A, B, A, B, ...) so that noise from the rest of
 * the machine lands on all of them alike. Returns each one's per-round ops/s.
 */
export function interleaved(
  cases: Readonly<Record<string, () => unknown>>,
  options: { rounds: number; iterations: number; warmup?: number },
): Record<string, number[]> {
  const names = Object.keys(cases);
  for (const name of names) for (let i = 0; i < (options.warmup ?? options.iterations); i++) cases[name]!();
  const samples: Record<string, number[]> = Object.fromEntries(names.map((name) => [name, []]));
  for (let round = 0; round < options.rounds; round++) {
    for (const name of names) samples[name]!.push(opsPerSecond(cases[name]!, options.iterations));
  }
  return samples;
}

/** The median over rounds of `a[i] / b[i]`: a ratio that holds up on a noisy machine. */
export function medianRatio(a: readonly number[], b: readonly number[]): number {
  return median(a.map((value, index) => value / b[index]!));
}

/** Prints a suite's table and writes its result file. Returns false when a target does not hold. */
export function report(suite: string, metrics: readonly Metric[]): boolean {
  const cpuList = cpus();
  const result: SuiteResult = {
    suite,
    when: new Date().toISOString(),
    machine: { cpus: cpuList.length, model: cpuList[0]?.model ?? "unknown", node: process.version },
    metrics,
  };
  const dir = fileURLToPath(new URL("./results/", import.meta.url));
  mkdirSync(dir, { recursive: true });
  writeFileSync(`${dir}${suite}.json`, `${JSON.stringify(result, null, 2)}\n`);

  let allHold = true;
  console.log(
    `\n${suite} — ${result.machine.model}, ${result.machine.cpus} cpus, node ${result.machine.node}`,
  );
  console.log(`${"metric".padEnd(34)} ${"value".padStart(14)}  ${"unit".padEnd(8)} target`);
  for (const metric of metrics) {
    let verdict = "";
    if (metric.target !== undefined) {
      const holds = meetsTarget(metric.value, metric.target);
      allHold &&= holds;
      verdict = `${metric.target}  ${holds ? "holds" : "MISSED"}`;
    }
    const shown =
      metric.unit === "ratio" ? metric.value.toFixed(3) : metric.value.toFixed(metric.value < 100 ? 2 : 0);
    console.log(`${metric.name.padEnd(34)} ${shown.padStart(14)}  ${metric.unit.padEnd(8)} ${verdict}`);
  }
  return allHold;
}
