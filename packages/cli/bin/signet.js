#!/usr/bin/env node
// The `signet` executable: a committed shim so npm can link it before the CLI is built.
import { existsSync } from "node:fs";
import { fileURLToPath } from "node:url";

const entry = new URL("../dist/main.js", import.meta.url);
if (!existsSync(fileURLToPath(entry))) {
  process.stderr.write("signet: the CLI is not built yet; run `npm run build` first\n");
  process.exit(1);
}
await import(entry.href);
