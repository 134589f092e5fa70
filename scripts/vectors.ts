// Locates the shared conformance vectors: $SIGNET_VECTORS_DIR, or ../shared/vectors beside the repository.
import { existsSync } from "node:fs";
import { fileURLToPath } from "node:url";
import { resolve } from "node:path";

/** The absolute path of the vectors folder; throws with a clear message when it is missing. */
export function vectorsDir(): string {
  const dir =
    process.env.SIGNET_VECTORS_DIR ??
    resolve(fileURLToPath(new URL("../../shared/vectors", import.meta.url)));
  if (!existsSync(dir)) {
    throw new Error(`Conformance vectors not found at ${dir}; set SIGNET_VECTORS_DIR`);
  }
  return dir;
}
