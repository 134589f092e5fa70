// The `signet` command tree.
import { Command } from "commander";

/** Builds the `signet` program. Example: `await buildProgram().parseAsync(process.argv)`. */
export function buildProgram(): Command {
  const program = new Command("signet").description("Signet: zero-trust runtime for multi-agent systems");
  return program;
}
