// WriteBatch on a real SQLite database: writes queued in one turn share a transaction, each on its own
// savepoint (one that throws is undone and rejects alone), nothing resolves before the commit, and a
// commit that fails rejects the whole batch with nothing stored.
import Database from "better-sqlite3";
import { afterEach, beforeEach, describe, expect, it } from "vitest";
import { WriteBatch } from "../../src/store/sqlite-write-batch.js";

let db: Database.Database;

beforeEach(() => {
  db = new Database(":memory:");
  db.pragma("foreign_keys = ON");
  db.exec(`
    CREATE TABLE parents (id INTEGER PRIMARY KEY);
    CREATE TABLE rows (
      id INTEGER PRIMARY KEY,
      parent INTEGER REFERENCES parents (id) DEFERRABLE INITIALLY DEFERRED,
      value TEXT NOT NULL UNIQUE
    );
    INSERT INTO parents (id) VALUES (1);
  `);
});

afterEach(() => db.close());

const insert =
  (value: string, parent = 1) =>
  () =>
    db.prepare("INSERT INTO rows (parent, value) VALUES (?, ?)").run(parent, value).lastInsertRowid;
const values = () =>
  db
    .prepare<[], { value: string }>("SELECT value FROM rows ORDER BY id")
    .all()
    .map((r) => r.value);

describe("WriteBatch", () => {
  it("runs writes of one turn in order in one transaction; a failing write is undone alone", async () => {
    const batch = new WriteBatch(db);
    const settled = await Promise.allSettled([
      batch.write(insert("a")),
      batch.write(() => {
        insert("b")();
        throw new Error("refused after writing");
      }),
      batch.write(insert("a")), // UNIQUE: fails alone
      batch.write(() => db.prepare<[], { n: number }>("SELECT count(*) AS n FROM rows").get()!.n),
      batch.write(insert("c")),
    ]);
    expect(settled.map((s) => s.status)).toEqual([
      "fulfilled",
      "rejected",
      "rejected",
      "fulfilled",
      "fulfilled",
    ]);
    // The fourth write saw the first (its own transaction's earlier write), not the undone ones.
    expect((settled[3] as PromiseFulfilledResult<number>).value).toBe(1);
    expect(values()).toEqual(["a", "c"]);
  });

  it("rejects every write of a batch whose commit fails, with nothing stored", async () => {
    const batch = new WriteBatch(db);
    const first = batch.write(insert("x"));
    // A deferred foreign key is checked at COMMIT: this write makes the whole commit fail.
    const second = batch.write(insert("orphan", 99));
    const results = await Promise.allSettled([first, second]);
    expect(results.map((r) => r.status)).toEqual(["rejected", "rejected"]);
    expect(String((results[0] as PromiseRejectedResult).reason)).toMatch(/FOREIGN KEY/);
    expect(values()).toEqual([]);
    // The database is usable afterwards.
    await batch.write(insert("after"));
    expect(values()).toEqual(["after"]);
  });

  it("commits what is queued when flushed by hand (as before closing)", async () => {
    const batch = new WriteBatch(db);
    const pending = batch.write(insert("late"));
    batch.flush();
    expect(values()).toEqual(["late"]);
    await expect(pending).resolves.toBeDefined();
  });
});
