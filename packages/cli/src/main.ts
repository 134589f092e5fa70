// Entry point of the `signet` executable.
import { buildProgram } from "./program.js";

try {
  await buildProgram().parseAsync(process.argv);
} catch (error) {
  process.stderr.write(`signet: ${error instanceof Error ? error.message : String(error)}\n`);
  process.exitCode = 1;
}
