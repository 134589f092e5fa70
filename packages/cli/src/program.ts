// The `signet` command tree.
import { Command } from "commander";
import { registerAuditCommands } from "./commands/audit.js";
import { registerDemoCommand } from "./commands/demo.js";
import { registerInitCommands } from "./commands/init.js";
import { registerKeysCommands } from "./commands/keys.js";
import { registerPolicyCommands } from "./commands/policy.js";
import { registerRemoteCommands } from "./commands/remote.js";
import { registerServeCommand } from "./commands/serve.js";
import { registerSessionsCommands } from "./commands/sessions.js";

/** Builds the `signet` program. Example: `await buildProgram().parseAsync(process.argv)`. */
export function buildProgram(): Command {
  const program = new Command("signet")
    .description("Signet: zero-trust runtime for multi-agent systems")
    .version("0.1.0");
  registerInitCommands(program);
  registerServeCommand(program);
  registerDemoCommand(program);
  registerKeysCommands(program);
  registerRemoteCommands(program);
  registerPolicyCommands(program);
  registerAuditCommands(program);
  registerSessionsCommands(program);
  return program;
}
