// Runs the `signet` program in this process, the way a user's shell would run the bin, capturing what it
// writes and the exit code it sets: for tests of admin commands against a runtime started by the test.
import { vi } from "vitest";
import { buildProgram } from "../../src/program.js";

export interface CliRun {
  readonly stdout: string;
  readonly stderr: string;
  readonly exitCode: number;
}

/**
 * `signet ARGS --data-dir DATA_DIR` with SIGNET_URL and SIGNET_API_KEY set for the call.
 *
 * Example: `const { stdout } = await runSignet(["audit", "query", "--json"], { url, apiKey, dataDir });`
 */
export async function runSignet(
  args: readonly string[],
  target: { readonly url: string; readonly apiKey: string; readonly dataDir: string },
): Promise<CliRun> {
  vi.stubEnv("SIGNET_URL", target.url);
  vi.stubEnv("SIGNET_API_KEY", target.apiKey);
  let stdout = "";
  let stderr = "";
  const out = vi.spyOn(process.stdout, "write").mockImplementation((chunk: string | Uint8Array) => {
    stdout += chunk.toString();
    return true;
  });
  const err = vi.spyOn(process.stderr, "write").mockImplementation((chunk: string | Uint8Array) => {
    stderr += chunk.toString();
    return true;
  });
  try {
    process.exitCode = undefined;
    await buildProgram()
      .exitOverride()
      .parseAsync([...args, "--data-dir", target.dataDir], { from: "user" });
    return { stdout, stderr, exitCode: Number(process.exitCode ?? 0) };
  } finally {
    out.mockRestore();
    err.mockRestore();
    process.exitCode = undefined;
  }
}
