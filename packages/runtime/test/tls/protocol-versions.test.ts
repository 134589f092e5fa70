// Protocol floor of the runtime listener over real sockets: TLS 1.2 and 1.3 in; 1.0, 1.1, weak ciphers and plaintext out.
import { readFile } from "node:fs/promises";
import { createServer as createHttpServer } from "node:http";
import type { AddressInfo } from "node:net";
import { connect } from "node:tls";
import type { ConnectionOptions } from "node:tls";
import { afterAll, beforeAll, describe, expect, it, vi } from "vitest";
import { RUNTIME_TLS_CIPHERS, buildTlsOptions } from "../../src/tls/server-options.js";
import { ServerPool, createTestPki, rawTcpExchange, removeTestPki, tlsRequest } from "./tls-fixtures.js";
import type { TestPki, TestServer } from "./tls-fixtures.js";

const pool = new ServerPool();
let pki: TestPki | undefined;
/** The runtime's listener, exactly as buildTlsOptions configures it. */
let runtime: TestServer;
/**
 * A deliberately permissive server (TLS 1.0+, security level 0, OpenSSL's default ciphers, renegotiation
 * allowed). Every refusal test below runs its client against this server too and must succeed there:
 * otherwise the refusal could come from the client's own OpenSSL defaults and prove nothing about ours.
 */
let permissive: TestServer;

beforeAll(async () => {
  pki = await createTestPki();
  runtime = await pool.https(
    await buildTlsOptions({
      certPath: pki.paths.serverCert,
      keyPath: pki.paths.serverKey,
      clientAuth: "none",
    }),
  );
  permissive = await pool.https({
    cert: await readFile(pki.paths.serverCert),
    key: await readFile(pki.paths.serverKey),
    minVersion: "TLSv1",
    ciphers: "DEFAULT@SECLEVEL=0",
  });
});
afterAll(async () => {
  await pool.closeAll();
  await removeTestPki(pki);
});

/** Waits for the server to report refusing exactly one more handshake, with this OpenSSL reason code. */
async function expectServerRefusal(server: TestServer, errorsBefore: number, code: string): Promise<void> {
  await vi.waitFor(() =>
    expect(server.clientErrors.slice(errorsBefore).map((error) => (error as { code?: string }).code)).toEqual(
      [code],
    ),
  );
}

const trusted = (): ConnectionOptions => ({ ca: pki!.caPem, servername: "localhost" });

describe("modern clients connect", () => {
  it("TLS 1.2 negotiates TLSv1.2 with an ECDHE AEAD suite", async () => {
    const outcome = await tlsRequest(runtime.port, {
      ...trusted(),
      minVersion: "TLSv1.2",
      maxVersion: "TLSv1.2",
    });
    expect(outcome.error).toBeUndefined();
    expect(outcome.protocol).toBe("TLSv1.2");
    expect(outcome.cipher).toMatch(/^ECDHE-ECDSA-(AES\d+-GCM-SHA\d+|CHACHA20-POLY1305)$/);
    expect(outcome.response).toMatch(/^HTTP\/1\.1 200/);
  });

  it("TLS 1.3 negotiates TLSv1.3", async () => {
    const outcome = await tlsRequest(runtime.port, {
      ...trusted(),
      minVersion: "TLSv1.3",
      maxVersion: "TLSv1.3",
    });
    expect(outcome.error).toBeUndefined();
    expect(outcome.protocol).toBe("TLSv1.3");
    expect(outcome.response).toMatch(/^HTTP\/1\.1 200/);
  });

  it("a default client gets TLS 1.3 (no maxVersion cap on the server)", async () => {
    const outcome = await tlsRequest(runtime.port, trusted());
    expect(outcome.protocol).toBe("TLSv1.3");
  });
});

describe("legacy protocol versions are refused", () => {
  // OpenSSL 3 will not even offer TLS 1.0/1.1 at its default security level, so a client with default
  // settings would "be refused" by any server. These clients lower their own floor explicitly, and the
  // control test proves each one really can complete a handshake when the server allows it.
  const legacyClient = (version: "TLSv1" | "TLSv1.1"): ConnectionOptions => ({
    ...trusted(),
    minVersion: version,
    maxVersion: version,
    ciphers: "DEFAULT@SECLEVEL=0",
  });

  it.each(["TLSv1", "TLSv1.1"] as const)(
    "control: a %s client connects to a server that allows it",
    async (v) => {
      const outcome = await tlsRequest(permissive.port, legacyClient(v));
      expect(outcome.error).toBeUndefined();
      expect(outcome.protocol).toBe(v);
      expect(outcome.response).toMatch(/^HTTP\/1\.1 200/);
    },
  );

  it.each(["TLSv1", "TLSv1.1"] as const)("the runtime refuses the same %s client", async (v) => {
    const before = { requests: runtime.requests, errors: runtime.clientErrors.length };
    const outcome = await tlsRequest(runtime.port, legacyClient(v));
    expect(outcome.secureConnected).toBe(false);
    // A protocol_version alert: refused for its version, not for some other mismatch.
    expect(outcome.error?.code).toBe("ERR_SSL_TLSV1_ALERT_PROTOCOL_VERSION");
    expect(outcome.response).toBe("");
    expect(runtime.requests).toBe(before.requests);
    await expectServerRefusal(runtime, before.errors, "ERR_SSL_UNSUPPORTED_PROTOCOL");
  });
});

describe("weak TLS 1.2 cipher suites are refused", () => {
  // CBC with SHA-1 MACs: still in OpenSSL's DEFAULT list, absent from ours.
  const cbcClient = (): ConnectionOptions => ({
    ...trusted(),
    maxVersion: "TLSv1.2",
    ciphers: "ECDHE-ECDSA-AES128-SHA:ECDHE-ECDSA-AES256-SHA",
  });

  it("control: a CBC-only TLS 1.2 client connects to a server that allows it", async () => {
    const outcome = await tlsRequest(permissive.port, cbcClient());
    expect(outcome.error).toBeUndefined();
    expect(outcome.protocol).toBe("TLSv1.2");
    expect(outcome.cipher).toMatch(/^ECDHE-ECDSA-AES(128|256)-SHA$/);
  });

  it("the runtime refuses the same client", async () => {
    const errorsBefore = runtime.clientErrors.length;
    const outcome = await tlsRequest(runtime.port, cbcClient());
    expect(outcome.secureConnected).toBe(false);
    expect(outcome.error?.code).toBe("ERR_SSL_SSLV3_ALERT_HANDSHAKE_FAILURE");
    await expectServerRefusal(runtime, errorsBefore, "ERR_SSL_NO_SHARED_CIPHER");
  });

  it("lists only TLS 1.3 suites and ECDHE AEAD suites", () => {
    for (const suite of RUNTIME_TLS_CIPHERS.split(":")) {
      expect(suite).toMatch(
        /^(TLS_(AES_\d+_GCM|CHACHA20_POLY1305)_SHA\d+|ECDHE-(ECDSA|RSA)-(AES\d+-GCM-SHA\d+|CHACHA20-POLY1305))$/,
      );
    }
  });
});

describe("client-initiated renegotiation is refused", () => {
  /** Resolves with the renegotiation error, or undefined when renegotiation succeeded. */
  const renegotiate = (port: number): Promise<Error | undefined> =>
    new Promise((resolve) => {
      const socket = connect({ ...trusted(), host: "127.0.0.1", port, maxVersion: "TLSv1.2" });
      socket.setTimeout(5_000, () => socket.destroy(new Error("test client timed out")));
      let settled = false;
      const finish = (error: Error | undefined): void => {
        if (settled) return;
        settled = true;
        socket.destroy();
        resolve(error);
      };
      socket.once("secureConnect", () => {
        socket.renegotiate({}, (error) => finish(error ?? undefined));
        // The server answers a renegotiation request only once it reads something from us.
        socket.write("GET / HTTP/1.1\r\nHost: localhost\r\n\r\n");
      });
      socket.on("error", (error) => finish(error));
      socket.on("close", () => finish(new Error("closed before renegotiation finished")));
    });

  it("control: a permissive server renegotiates", async () => {
    expect(await renegotiate(permissive.port)).toBeUndefined();
  });

  it("the runtime refuses", async () => {
    const error = await renegotiate(runtime.port);
    expect(error?.message).toMatch(/no renegotiation/);
  });
});

describe("plaintext HTTP on the TLS port", () => {
  const request = "GET /v1/health HTTP/1.1\r\nHost: localhost\r\nConnection: close\r\n\r\n";

  it("control: the raw client reads an HTTP response from a plaintext server", async () => {
    const plain = createHttpServer((_req, res) => res.end("ok"));
    try {
      await new Promise<void>((resolve) => plain.listen(0, "127.0.0.1", resolve));
      const { reply } = await rawTcpExchange((plain.address() as AddressInfo).port, request);
      expect(reply).toMatch(/^HTTP\/1\.1 200/);
    } finally {
      plain.closeAllConnections();
      await new Promise<void>((resolve) => plain.close(() => resolve()));
    }
  });

  it("gets no HTTP response: the connection is closed and the handler never runs", async () => {
    const before = { requests: runtime.requests, errors: runtime.clientErrors.length };
    const { reply } = await rawTcpExchange(runtime.port, request);
    expect(reply).not.toMatch(/HTTP\/1\.[01] \d{3}/);
    expect(runtime.requests).toBe(before.requests);
    await expectServerRefusal(runtime, before.errors, "ERR_SSL_HTTP_REQUEST");
  });
});
