// Runs the store and session store contracts against every adapter that needs no outside service.
import { mkdtempSync, rmSync } from "node:fs";
import { tmpdir } from "node:os";
import { join } from "node:path";
import { afterAll } from "vitest";
import { createMemoryStores } from "../../src/store/memory.js";
import { openStores } from "../../src/store/open.js";
import { openSqliteStores } from "../../src/store/sqlite.js";
import { runStoreContract } from "./contract.js";
import { runSessionStoreContract } from "./sessions-contract.js";

// One directory for every SQLite file this run makes; the contract closes each store after its test.
const dir = mkdtempSync(join(tmpdir(), "signet-store-contract-"));
let files = 0;

afterAll(() => {
  rmSync(dir, { recursive: true, force: true });
});

runStoreContract("memory", () => Promise.resolve(createMemoryStores()));
runStoreContract("sqlite file", () => Promise.resolve(openSqliteStores(join(dir, `db-${++files}.sqlite`))));
runStoreContract("sqlite :memory:", () => Promise.resolve(openSqliteStores(":memory:")));
runStoreContract("openStores sqlite", () =>
  openStores({ kind: "sqlite", path: join(dir, `open-${++files}.sqlite`), synchronous: "FULL" }),
);

runSessionStoreContract("memory", () => Promise.resolve(createMemoryStores()));
runSessionStoreContract(
  "sqlite file",
  () => Promise.resolve(openSqliteStores(join(dir, `db-${++files}.sqlite`))),
  {
    durable: () => {
      const path = join(dir, `durable-${++files}.sqlite`);
      return Promise.resolve(() => Promise.resolve(openSqliteStores(path)));
    },
  },
);
runSessionStoreContract("sqlite :memory:", () => Promise.resolve(openSqliteStores(":memory:")));
runSessionStoreContract(
  "openStores sqlite",
  () => openStores({ kind: "sqlite", path: join(dir, `open-${++files}.sqlite`), synchronous: "FULL" }),
  {
    durable: () => {
      const path = join(dir, `open-durable-${++files}.sqlite`);
      return Promise.resolve(() => openStores({ kind: "sqlite", path }));
    },
  },
);
