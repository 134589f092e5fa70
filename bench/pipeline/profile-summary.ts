// Summarizes a V8 .cpuprofile (from `node --cpu-prof`): self time per function and per module.
import { readFileSync } from "node:fs";

interface ProfileNode {
  readonly id: number;
  readonly callFrame: {
    readonly functionName: string;
    readonly url: string;
    readonly lineNumber: number;
  };
  readonly children?: readonly number[];
}

interface CpuProfile {
  readonly nodes: readonly ProfileNode[];
  readonly samples: readonly number[];
  readonly timeDeltas: readonly number[];
}

export interface ProfileRow {
  readonly name: string;
  readonly selfMs: number;
  /** Share of the busy (non-idle) time. */
  readonly selfPct: number;
}

export interface ProfileSummary {
  readonly busyMs: number;
  readonly idleMs: number;
  readonly functions: readonly ProfileRow[];
  readonly modules: readonly ProfileRow[];
}

/** A short location: `node:internal/...`, `fastify/lib/x.js`, `protocol/src/json/x.ts`, or a V8 pseudo-frame. */
function moduleOf(url: string): string {
  const packageMatch = /\/packages\/([^/]+)\/src\/(.+)$/.exec(url);
  if (packageMatch) return `@signet/${packageMatch[1]}`;
  const nodeModules = /\/node_modules\/((?:@[^/]+\/)?[^/]+)\//.exec(url);
  if (nodeModules) return nodeModules[1]!;
  if (url.startsWith("node:")) return url.replace(/^node:internal\/([^/]+).*$/, "node:$1");
  if (url.includes("/bench/")) return "bench";
  return url;
}

function shortUrl(url: string): string {
  return url
    .replace(/^file:\/\/.*\/packages\/([^/]+)\/src\//, "$1/")
    .replace(/^file:\/\/.*\/node_modules\//, "")
    .replace(/^node:internal\//, "node:");
}

/** Reads a profile and ranks self time, by function (name + file:line) and by module. */
export function summarizeProfile(path: string, top = 15): ProfileSummary {
  const profile = JSON.parse(readFileSync(path, "utf8")) as CpuProfile;
  const timeByNode = new Map<number, number>();
  for (let i = 0; i < profile.samples.length; i++) {
    const id = profile.samples[i]!;
    timeByNode.set(id, (timeByNode.get(id) ?? 0) + (profile.timeDeltas[i] ?? 0));
  }
  const parentOf = new Map<number, ProfileNode>();
  for (const node of profile.nodes) {
    for (const child of node.children ?? []) parentOf.set(child, node);
  }
  const label = (node: ProfileNode): string => {
    const { functionName, url, lineNumber } = node.callFrame;
    return `${functionName || "(anonymous)"} ${shortUrl(url)}:${lineNumber + 1}`;
  };
  const byFunction = new Map<string, number>();
  const byModule = new Map<string, number>();
  let idleUs = 0;
  let busyUs = 0;
  for (const node of profile.nodes) {
    const us = timeByNode.get(node.id) ?? 0;
    if (us === 0) continue;
    const { functionName, url } = node.callFrame;
    if (functionName === "(idle)") {
      idleUs += us;
      continue;
    }
    busyUs += us;
    let name: string;
    let module: string;
    if (url !== "") {
      name = label(node);
      module = moduleOf(url);
    } else {
      // A native function (`run`, `writev`) or a V8 pseudo-frame. Natives share names (better-sqlite3's
      // Statement#run and node:crypto's SignJob#run are both `run`), so name the JS frame that called it.
      let caller = parentOf.get(node.id);
      while (caller !== undefined && caller.callFrame.url === "") caller = parentOf.get(caller.id);
      const pseudo = functionName.startsWith("(");
      name = pseudo || caller === undefined ? functionName : `${functionName} [native] ← ${label(caller)}`;
      module = pseudo || caller === undefined ? functionName : moduleOf(caller.callFrame.url);
    }
    byFunction.set(name, (byFunction.get(name) ?? 0) + us);
    byModule.set(module, (byModule.get(module) ?? 0) + us);
  }
  const rank = (map: Map<string, number>): ProfileRow[] =>
    [...map.entries()]
      .sort((a, b) => b[1] - a[1])
      .slice(0, top)
      .map(([name, us]) => ({ name, selfMs: us / 1000, selfPct: (100 * us) / busyUs }));
  return {
    busyMs: busyUs / 1000,
    idleMs: idleUs / 1000,
    functions: rank(byFunction),
    modules: rank(byModule),
  };
}

/** Prints a summary as two small tables. */
export function printProfileSummary(title: string, summary: ProfileSummary): void {
  console.log(
    `\n${title}: ${summary.busyMs.toFixed(0)} ms busy, ${summary.idleMs.toFixed(0)} ms idle (self time, % of busy)`,
  );
  for (const row of summary.functions) {
    console.log(
      `${row.selfPct.toFixed(1).padStart(6)}%  ${row.selfMs.toFixed(0).padStart(6)} ms  ${row.name}`,
    );
  }
  console.log("by module:");
  for (const row of summary.modules) {
    console.log(
      `${row.selfPct.toFixed(1).padStart(6)}%  ${row.selfMs.toFixed(0).padStart(6)} ms  ${row.name}`,
    );
  }
}
