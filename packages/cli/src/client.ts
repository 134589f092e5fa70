// The CLI's HTTPS client for a running runtime: TLS verified against the data dir's CA, admin key from env.
import { existsSync, readFileSync } from "node:fs";
import { join, resolve } from "node:path";
import { fromWireError } from "@signet/protocol";
import { Agent, request } from "undici";

export interface ClientOptions {
  readonly url?: string;
  readonly dataDir: string;
  readonly caPath?: string;
  readonly env?: NodeJS.ProcessEnv;
}

export interface AdminClient {
  call<T = unknown>(method: "GET" | "POST" | "DELETE", path: string, body?: unknown): Promise<T>;
  close(): Promise<void>;
}

export const DEFAULT_URL = "https://127.0.0.1:8443";

/**
 * A client that talks to the runtime over HTTPS with the admin key in `SIGNET_API_KEY` (never a
 * command-line argument, which other users of the machine could read from the process list).
 */
export function createAdminClient(options: ClientOptions): AdminClient {
  const env = options.env ?? process.env;
  const url = new URL(options.url ?? env.SIGNET_URL ?? DEFAULT_URL);
  const apiKey = env.SIGNET_API_KEY;
  if (apiKey === undefined || apiKey === "") {
    throw new Error("SIGNET_API_KEY is not set: export the admin API key printed by `signet init`");
  }
  const caPath = options.caPath ?? env.SIGNET_CA_PATH ?? join(resolve(options.dataDir), "certs", "ca.crt");
  let dispatcher: Agent | undefined;
  if (url.protocol === "https:") {
    const ca = existsSync(caPath) ? readFileSync(caPath) : undefined;
    dispatcher = new Agent({ connect: { ...(ca === undefined ? {} : { ca }), minVersion: "TLSv1.2" } });
  } else if (url.protocol !== "http:") {
    throw new Error(`Unsupported URL ${url.href}`);
  }
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
      let parsed: unknown;
      try {
        parsed = text === "" ? undefined : JSON.parse(text);
      } catch {
        parsed = undefined;
      }
      if (response.statusCode >= 400) {
        const error = fromWireError(parsed);
        throw new Error(`${error.code}: ${error.message}`);
      }
      return parsed as T;
    },
    async close() {
      await dispatcher?.close();
    },
  };
}
