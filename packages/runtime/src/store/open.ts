// Chooses and opens the storage adapter the configuration names.
import { createMemoryStores } from "./memory.js";
import { type PostgresStoreOptions, openPostgresStores } from "./postgres.js";
import { type SqliteStoreOptions, openSqliteStores } from "./sqlite.js";
import type { Stores } from "./types.js";

/** Which adapter to open, with that adapter's settings. */
export type OpenStoresOptions =
  | { readonly kind: "memory" }
  | ({ readonly kind: "sqlite"; readonly path: string } & SqliteStoreOptions)
  | ({ readonly kind: "postgres" } & PostgresStoreOptions);

/**
 * Opens every store on the chosen adapter. Async because the networked adapters must connect first.
 *
 * Example: `const stores = await openStores({ kind: "sqlite", path: join(dataDir, "signet.db") });`, or
 * `await openStores({ kind: "postgres", url: "postgresql://signet@db.internal/signet", poolSize: 20 })`.
 */
export function openStores(options: OpenStoresOptions): Promise<Stores> {
  // The executor turns a synchronous throw (bad path, newer schema) into a rejection.
  return new Promise<Stores>((resolve) => resolve(openAdapter(options)));
}

function openAdapter(options: OpenStoresOptions): Stores | Promise<Stores> {
  switch (options.kind) {
    case "memory":
      return createMemoryStores();
    case "sqlite": {
      const { path, ...sqliteOptions } = options;
      return openSqliteStores(path, sqliteOptions);
    }
    case "postgres":
      return openPostgresStores(options);
    default: {
      // Reached only from untyped callers (a config file); the type system rules it out otherwise.
      const unknown: never = options;
      throw new TypeError(`Unknown store kind: ${String((unknown as { kind?: unknown }).kind)}`);
    }
  }
}
