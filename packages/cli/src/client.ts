// The CLI's HTTPS client for a running runtime: TLS verified against the data dir's CA, admin key from env.
import { existsSync, readFileSync } from "node:fs";
import { type FileHandle, open, rm } from "node:fs/promises";
import { join, resolve } from "node:path";
import { Transform, type TransformCallback } from "node:stream";
import { pipeline } from "node:stream/promises";
import { fromWireError } from "@signet/protocol";
import { Agent, request } from "undici";

export interface ClientOptions {
  readonly url?: string;
  readonly dataDir: string;
  readonly caPath?: string;
  readonly env?: NodeJS.ProcessEnv;
}

/** Response headers as undici gives them. */
export type ResponseHeaders = Readonly<Record<string, string | string[] | undefined>>;

export interface DownloadOptions {
  /** Replace `file` when it exists; by default an existing file is refused and left untouched. */
  readonly overwrite?: boolean;
  /**
   * Called once the response is known to be a success, with its headers; the function it returns
   * (if any) sees every chunk of the body as it is written, e.g. to count records for a progress bar.
   */
  readonly onResponse?: (headers: ResponseHeaders) => ((chunk: Buffer) => void) | undefined;
}

export interface DownloadResult {
  readonly headers: ResponseHeaders;
  /** Bytes written to the file. */
  readonly bytes: number;
}

export interface AdminClient {
  call<T = unknown>(method: "GET" | "POST" | "DELETE", path: string, body?: unknown): Promise<T>;
  /**
   * GETs `path` and streams the response body into `file` (created 0600) with backpressure, never
   * holding the whole body in memory. An error response throws before the file is created; a
   * transfer that fails midway removes the partial file.
   */
  download(path: string, file: string, options?: DownloadOptions): Promise<DownloadResult>;
  close(): Promise<void>;
}

export const DEFAULT_URL = "https://127.0.0.1:8443";

/** A response body as JSON; undefined when it is empty or not JSON. */
function parseBody(text: string): unknown {
  try {
    return text === "" ? undefined : JSON.parse(text);
  } catch {
    return undefined;
  }
}

/** The error of a failed response, from its wire error body. */
function responseError(text: string): Error {
  const error = fromWireError(parseBody(text));
  return new Error(`${error.code}: ${error.message}`);
}

/** Where the runtime is and how the CLI proves itself to it, from the options and the environment. */
export interface AdminConnection {
  readonly url: URL;
  /** The API key from `SIGNET_API_KEY`. */
  readonly apiKey: string;
  /** The CA certificate that verifies an https runtime; undefined: the system roots. */
  readonly ca: Buffer | undefined;
}

/**
 * Resolves the runtime URL (`--url`, `SIGNET_URL`, or the default), the API key (`SIGNET_API_KEY`) and
 * the CA (`--ca`, `SIGNET_CA_PATH`, or `DATA_DIR/certs/ca.crt` when it exists). Throws when the key is
 * missing or the URL is neither https nor http.
 *
 * Example: `const { url, apiKey, ca } = resolveAdminConnection({ dataDir: ".signet" })`.
 */
export function resolveAdminConnection(options: ClientOptions): AdminConnection {
  const env = options.env ?? process.env;
  const url = new URL(options.url ?? env.SIGNET_URL ?? DEFAULT_URL);
  const apiKey = env.SIGNET_API_KEY;
  if (apiKey === undefined || apiKey === "") {
    throw new Error("SIGNET_API_KEY is not set: export the admin API key printed by `signet init`");
  }
  if (url.protocol === "http:") return { url, apiKey, ca: undefined };
  if (url.protocol !== "https:") throw new Error(`Unsupported URL ${url.href}`);
  const caPath = options.caPath ?? env.SIGNET_CA_PATH ?? join(resolve(options.dataDir), "certs", "ca.crt");
  return { url, apiKey, ca: existsSync(caPath) ? readFileSync(caPath) : undefined };
}

/**
 * A client that talks to the runtime over HTTPS with the admin key in `SIGNET_API_KEY` (never a
 * command-line argument, which other users of the machine could read from the process list).
 */
export function createAdminClient(options: ClientOptions): AdminClient {
  const { url, apiKey, ca } = resolveAdminConnection(options);
  const dispatcher =
    url.protocol === "https:"
      ? new Agent({ connect: { ...(ca === undefined ? {} : { ca }), minVersion: "TLSv1.2" } })
      : undefined;
  return {
    async call<T>(method: "GET" | "POST" | "DELETE", path: string, body?: unknown): Promise<T> {
      const response = await request(new URL(path, url), {
        method,
        headers: {
          authorization: `Bearer ${apiKey}`,
          ...(body === undefined ? {} : { "content-type": "application/json" }),
        },
        ...(body === undefined ? {} : { body: JSON.stringify(body) }),
        ...(dispatcher === undefined ? {} : { dispatcher }),
      });
      const text = await response.body.text();
      if (response.statusCode >= 400) throw responseError(text);
      return parseBody(text) as T;
    },
    async download(path: string, file: string, downloadOptions: DownloadOptions = {}) {
      const response = await request(new URL(path, url), {
        method: "GET",
        headers: { authorization: `Bearer ${apiKey}` },
        ...(dispatcher === undefined ? {} : { dispatcher }),
      });
      if (response.statusCode >= 400) throw responseError(await response.body.text());
      let handle: FileHandle;
      try {
        // `wx` refuses an existing file even if one appeared after the caller looked.
        handle = await open(file, downloadOptions.overwrite === true ? "w" : "wx", 0o600);
      } catch (error) {
        response.body.destroy();
        throw error;
      }
      const observe = downloadOptions.onResponse?.(response.headers);
      let bytes = 0;
      const counter = new Transform({
        transform(chunk: Buffer, _encoding: BufferEncoding, done: TransformCallback) {
          bytes += chunk.length;
          observe?.(chunk);
          done(null, chunk);
        },
      });
      try {
        await pipeline(response.body, counter, handle.createWriteStream());
      } catch (error) {
        await handle.close().catch(() => undefined);
        await rm(file, { force: true });
        throw error;
      }
      return { headers: response.headers, bytes };
    },
    async close() {
      await dispatcher?.close();
    },
  };
}
