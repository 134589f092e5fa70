// `signet policy check` (offline) and `signet policy explain` (asks the running runtime).
import type { Command } from "commander";
import { checkPolicyFiles, formatProblem } from "@signet/runtime";
import { createAdminClient } from "../client.js";
import { DEFAULT_DATA_DIR } from "./init.js";

function parseJsonOption(name: string, text: string | undefined): unknown {
  if (text === undefined) return undefined;
  try {
    return JSON.parse(text) as unknown;
  } catch {
    throw new Error(`--${name} must be JSON`);
  }
}

export function registerPolicyCommands(program: Command): void {
  const policy = program.command("policy").description("Check policy files and explain decisions");

  policy
    .command("check <files...>")
    .description("Validate policy files together; errors name the file, line and rule")
    .option("--json", "machine-readable output", false)
    .action((files: string[], options: { json: boolean }) => {
      const result = checkPolicyFiles(files);
      if (options.json) {
        process.stdout.write(`${JSON.stringify(result, null, 2)}\n`);
      } else {
        for (const problem of result.problems) process.stdout.write(`${formatProblem(problem)}\n`);
        process.stdout.write(
          `${result.ok ? "ok" : "INVALID"}: ${result.files} file(s), ${result.rules} valid rule(s), ${result.problems.length} problem(s)\n`,
        );
      }
      if (!result.ok) process.exitCode = 1;
    });

  policy
    .command("explain")
    .description("Ask the running runtime how its policy decides a request, rule by rule")
    .requiredOption("--principal <id>", "who asks (a bare id)")
    .requiredOption("--action <action>", "e.g. invoke")
    .requiredOption("--resource <resource>", "e.g. tool:database/query")
    .option("--kind <kind>", "agent, user or service")
    .option("--roles <list>", "comma-separated roles")
    .option("--params <json>", "the parameters (the invocation's body)")
    .option("--intent <json>", 'declared intent, e.g. {"permissions":["invoke:tool:database/query"]}')
    .option("--url <url>", "runtime URL (default SIGNET_URL or https://127.0.0.1:8443)")
    .option("--data-dir <dir>", "data directory whose certs/ca.crt verifies the runtime", DEFAULT_DATA_DIR)
    .option("--ca <file>", "CA certificate that verifies the runtime")
    .option("--json", "machine-readable output", false)
    .action(
      async (options: {
        principal: string;
        action: string;
        resource: string;
        kind?: string;
        roles?: string;
        params?: string;
        intent?: string;
        url?: string;
        dataDir: string;
        ca?: string;
        json: boolean;
      }) => {
        const body = {
          principal: options.principal,
          action: options.action,
          resource: options.resource,
          ...(options.kind === undefined ? {} : { kind: options.kind }),
          ...(options.roles === undefined
            ? {}
            : { roles: options.roles.split(",").map((role) => role.trim()) }),
          ...(options.params === undefined ? {} : { params: parseJsonOption("params", options.params) }),
          ...(options.intent === undefined ? {} : { intent: parseJsonOption("intent", options.intent) }),
        };
        const client = createAdminClient({
          dataDir: options.dataDir,
          ...(options.url === undefined ? {} : { url: options.url }),
          ...(options.ca === undefined ? {} : { caPath: options.ca }),
        });
        try {
          const answer = await client.call<{ decision: unknown; text: string }>(
            "POST",
            "/v1/policy/explain",
            body,
          );
          process.stdout.write(options.json ? `${JSON.stringify(answer, null, 2)}\n` : `${answer.text}\n`);
        } finally {
          await client.close();
        }
      },
    );
}
