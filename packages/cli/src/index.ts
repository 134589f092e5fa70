// Public API of @signet/cli: the program builder, so the bin and tests share one definition.
export { buildProgram } from "./program.js";
