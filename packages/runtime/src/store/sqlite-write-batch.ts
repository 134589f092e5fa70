// Group commit for the SQLite stores' hot writes (replay admission, stored outcomes, session changes).
//
// A commit in WAL mode writes every page the transaction dirtied to the log (and, with
// synchronous=FULL, syncs it). Under load many writes arrive in the same turn of the event loop and
// touch the same few B-tree pages: run together in one transaction, they write those pages once.
// Each write still runs in order and on its own savepoint, so one that throws is rolled back alone
// and rejects alone; every promise settles only after the shared transaction committed, so a write
// is as durable when its promise resolves as it was when it had a transaction of its own.
import type Database from "better-sqlite3";

interface Pending {
  readonly work: () => unknown;
  readonly resolve: (value: unknown) => void;
  readonly reject: (error: unknown) => void;
}

export class WriteBatch {
  readonly #db: Database.Database;
  // One savepoint name reused for every write: the writes of a batch run one after the other.
  readonly #savepoint: Database.Statement;
  readonly #release: Database.Statement;
  readonly #rollback: Database.Statement;
  #queue: Pending[] = [];
  #scheduled = false;

  constructor(db: Database.Database) {
    this.#db = db;
    this.#savepoint = db.prepare("SAVEPOINT signet_write");
    this.#release = db.prepare("RELEASE signet_write");
    this.#rollback = db.prepare("ROLLBACK TO signet_write");
  }

  /**
   * Runs `work` in a write transaction (BEGIN IMMEDIATE) shared with the other writes queued in this
   * turn of the event loop; resolves to what it returned once that transaction committed.
   *
   * Example: `admit: (request) => batch.write(() => admitMessage(request))`.
   */
  write<T>(work: () => T): Promise<T> {
    return new Promise<T>((resolve, reject) => {
      this.#queue.push({ work, resolve: resolve as (value: unknown) => void, reject });
      if (!this.#scheduled) {
        this.#scheduled = true;
        setImmediate(() => this.flush());
      }
    });
  }

  /** Commits what is queued now (the store calls it before closing the database). */
  flush(): void {
    this.#scheduled = false;
    const batch = this.#queue;
    this.#queue = [];
    if (batch.length === 0) return;
    if (batch.length === 1) {
      const only = batch[0]!;
      try {
        only.resolve(this.#db.transaction(only.work).immediate());
      } catch (error) {
        only.reject(error);
      }
      return;
    }
    const outcomes: ({ ok: true; value: unknown } | { ok: false; error: unknown })[] = [];
    try {
      this.#db
        .transaction(() => {
          outcomes.length = 0;
          for (const pending of batch) {
            this.#savepoint.run();
            try {
              outcomes.push({ ok: true, value: pending.work() });
            } catch (error) {
              // Undoes this write alone; the savepoint stays on the stack until released.
              this.#rollback.run();
              outcomes.push({ ok: false, error });
            }
            this.#release.run();
          }
        })
        .immediate();
    } catch (error) {
      // The shared commit failed: nothing of the batch was stored.
      for (const pending of batch) pending.reject(error);
      return;
    }
    batch.forEach((pending, i) => {
      const outcome = outcomes[i]!;
      if (outcome.ok) pending.resolve(outcome.value);
      else pending.reject(outcome.error);
    });
  }
}
