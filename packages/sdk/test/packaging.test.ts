// The SDK's entry pulls in no server code: every module reachable from src/index.ts imports only the
// protocol package, the SDK's own declared dependencies and Node built-ins.
import { readFileSync } from "node:fs";
import { dirname, join, resolve } from "node:path";
import { fileURLToPath } from "node:url";
import { describe, expect, it } from "vitest";

const root = resolve(dirname(fileURLToPath(import.meta.url)), "..");
const manifest = JSON.parse(readFileSync(join(root, "package.json"), "utf8")) as {
  dependencies?: Record<string, string>;
  exports?: unknown;
  type?: string;
};
const ALLOWED = new Set(["@signet/protocol", "ajv", "undici", "ws"]);
const IMPORT =
  /(?:^|\n)\s*(?:import|export)\s[^;]*?from\s+"([^"]+)"|import\(\s*"([^"]+)"\s*\)|^\s*import\s+"([^"]+)"/gm;

/** Every bare specifier imported by modules reachable from `entry` (relative imports followed). */
function bareImports(entry: string): { modules: Set<string>; bare: Set<string> } {
  const modules = new Set<string>();
  const bare = new Set<string>();
  const queue = [entry];
  while (queue.length > 0) {
    const file = queue.pop()!;
    if (modules.has(file)) continue;
    modules.add(file);
    const text = readFileSync(file, "utf8");
    for (const match of text.matchAll(IMPORT)) {
      const specifier = match[1] ?? match[2] ?? match[3]!;
      if (specifier.startsWith(".")) queue.push(resolve(dirname(file), specifier.replace(/\.js$/, ".ts")));
      else bare.add(specifier);
    }
  }
  return { modules, bare };
}

describe("@signet/sdk packaging", () => {
  it("imports no server code from its entry", () => {
    const { modules, bare } = bareImports(join(root, "src", "index.ts"));
    expect(modules.size).toBeGreaterThan(5);
    const packages = [...bare].filter((specifier) => !specifier.startsWith("node:"));
    for (const specifier of packages) {
      const name = specifier.startsWith("@")
        ? specifier.split("/").slice(0, 2).join("/")
        : specifier.split("/")[0]!;
      expect(ALLOWED, `${specifier} is not an allowed SDK import`).toContain(name);
    }
    expect(packages.some((specifier) => specifier.includes("runtime"))).toBe(false);
    for (const server of ["fastify", "better-sqlite3", "pino", "pg", "ioredis", "@signet/runtime"]) {
      expect(packages).not.toContain(server);
    }
  });

  it("declares exactly what it imports, as ESM with type declarations", () => {
    expect(Object.keys(manifest.dependencies ?? {}).sort()).toEqual([...ALLOWED].sort());
    expect(manifest.type).toBe("module");
    expect(manifest.exports).toEqual({ ".": { types: "./dist/index.d.ts", default: "./dist/index.js" } });
  });
});
