// The local error a store raises when its database was written by a newer Signet than this one.

/**
 * Raised on open when the database records a schema version this build does not know. Never sent on
 * the wire: it stops the runtime at startup, before any request is served.
 *
 * Example: `if (error instanceof SchemaVersionError && error.code === "SCHEMA_TOO_NEW") ...`.
 */
export class SchemaVersionError extends Error {
  override readonly name = "SchemaVersionError";
  readonly code = "SCHEMA_TOO_NEW";

  constructor(
    /** The highest schema version recorded in the database. */
    readonly found: number,
    /** The highest schema version this build can migrate to. */
    readonly supported: number,
    readonly database: string,
  ) {
    super(
      `The database ${database} has schema version ${found}, but this Signet knows versions up to ` +
        `${supported}. It was written by a newer Signet: upgrade Signet, or restore a backup taken ` +
        `before the upgrade. Refusing to open it rather than risk damaging data.`,
    );
  }
}
