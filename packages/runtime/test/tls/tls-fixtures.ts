// Test fixtures for TLS: a throwaway PKI on disk, disposable HTTPS servers, and a client that reports what happened.
import { mkdtemp, readFile, rm } from "node:fs/promises";
import { createServer as createHttpsServer } from "node:https";
import type { Server as HttpsServer } from "node:https";
import { connect as netConnect } from "node:net";
import type { AddressInfo, Socket } from "node:net";
import { tmpdir } from "node:os";
import { join } from "node:path";
import { connect as tlsConnect } from "node:tls";
import type { ConnectionOptions, TLSSocket, TlsOptions } from "node:tls";
import { createDevCertificates, issueCertificate } from "../../src/tls/dev-certs.js";
import type { DevCertificatePaths, PemCertificate } from "../../src/tls/dev-certs.js";
import { peerPrincipal } from "../../src/tls/peer-identity.js";
import type { PeerPrincipal } from "../../src/tls/peer-identity.js";

/** A development PKI in a temporary directory, with its CA loaded for issuing more certificates. */
export interface TestPki {
  readonly paths: DevCertificatePaths;
  readonly ca: PemCertificate;
  readonly caPem: string;
  readonly admin: PemCertificate;
}

/** Creates dev certificates (with a client for `admin`) in a fresh temporary directory. */
export async function createTestPki(): Promise<TestPki> {
  const dir = await mkdtemp(join(tmpdir(), "signet-tls-"));
  const paths = await createDevCertificates({ dir, clientIds: ["admin"] });
  const read = (path: string): Promise<string> => readFile(path, "utf8");
  const ca = { certPem: await read(paths.caCert), keyPem: await read(paths.caKey) };
  const admin = {
    certPem: await read(paths.clients.admin!.cert),
    keyPem: await read(paths.clients.admin!.key),
  };
  return { paths, ca, caPem: ca.certPem, admin };
}

/** Removes a PKI's directory. */
export async function removeTestPki(pki: TestPki | undefined): Promise<void> {
  if (pki !== undefined) await rm(pki.paths.dir, { recursive: true, force: true });
}

/** A client certificate from `issuer` with the given CN and URI SANs. */
export function clientCertificate(
  issuer: PemCertificate,
  commonName: string,
  uris: string[] = [],
): PemCertificate {
  return issueCertificate({ issuer, commonName, extendedKeyUsage: ["clientAuth"], uris });
}

/** What one handshake looked like from the server's side. */
export interface ServerSideConnection {
  readonly authorized: boolean;
  readonly authorizationError: string | undefined;
  readonly principal: PeerPrincipal | undefined;
}

/** A running HTTPS server on a loopback port and what it has seen. */
export interface TestServer {
  readonly port: number;
  /** Handshakes that completed (server side), in order. */
  readonly connections: ServerSideConnection[];
  /** Handshakes the server refused or that broke. */
  readonly clientErrors: Error[];
  /** How many HTTP requests reached the handler. */
  requests: number;
  close(): Promise<void>;
}

/**
 * Tracks servers so `afterEach`/`afterAll` can close every one of them, even when a test failed
 * half-way through starting them.
 */
export class ServerPool {
  readonly #servers: TestServer[] = [];

  /**
   * Starts an HTTPS server whose handler answers `{ principal, withTable }`: the peer principal
   * without and with `spiffeTable`.
   */
  async https(options: TlsOptions, spiffeTable?: Readonly<Record<string, string>>): Promise<TestServer> {
    const sockets = new Set<Socket>();
    const connections: ServerSideConnection[] = [];
    const clientErrors: Error[] = [];
    const server: HttpsServer = createHttpsServer(options, (request, response) => {
      state.requests += 1;
      const socket = request.socket as TLSSocket;
      const body = {
        principal: peerPrincipal(socket) ?? null,
        withTable: spiffeTable === undefined ? null : (peerPrincipal(socket, spiffeTable) ?? null),
      };
      response.setHeader("content-type", "application/json");
      response.setHeader("connection", "close");
      response.end(JSON.stringify(body));
    });
    server.on("connection", (socket: Socket) => {
      sockets.add(socket);
      socket.on("close", () => sockets.delete(socket));
    });
    server.on("secureConnection", (socket: TLSSocket) => {
      connections.push({
        authorized: socket.authorized,
        authorizationError: socket.authorizationError?.toString(),
        principal: peerPrincipal(socket, spiffeTable),
      });
    });
    server.on("tlsClientError", (error: Error) => clientErrors.push(error));

    const state: TestServer = {
      port: 0,
      connections,
      clientErrors,
      requests: 0,
      close: () =>
        new Promise<void>((resolve) => {
          for (const socket of sockets) socket.destroy();
          server.close(() => resolve());
        }),
    };
    // Register before listening so a failed listen is still cleaned up.
    this.#servers.push(state);
    await new Promise<void>((resolve, reject) => {
      server.once("error", reject);
      server.listen(0, "127.0.0.1", () => resolve());
    });
    return Object.assign(state, { port: (server.address() as AddressInfo).port });
  }

  /** Closes every server started so far. */
  async closeAll(): Promise<void> {
    const servers = this.#servers.splice(0);
    await Promise.all(servers.map((server) => server.close()));
  }
}

/** What a TLS client saw: whether the handshake completed, the protocol, any error, and the raw reply. */
export interface ClientOutcome {
  readonly secureConnected: boolean;
  readonly protocol: string | null;
  readonly cipher: string | undefined;
  readonly error: (Error & { code?: string }) | undefined;
  readonly response: string;
}

/**
 * Connects with `options`, sends one HTTP request once the handshake completes and collects the reply
 * until the connection closes. Never rejects: a refused handshake is an outcome, not a test crash.
 */
export function tlsRequest(port: number, options: ConnectionOptions): Promise<ClientOutcome> {
  return new Promise((resolve) => {
    let secureConnected = false;
    let protocol: string | null = null;
    let cipher: string | undefined;
    let error: Error | undefined;
    let response = "";
    const socket = tlsConnect({ host: "127.0.0.1", servername: "localhost", ...options, port });
    socket.setTimeout(5_000, () => socket.destroy(new Error("test client timed out")));
    socket.once("secureConnect", () => {
      secureConnected = true;
      protocol = socket.getProtocol();
      cipher = socket.getCipher()?.name;
      socket.write("GET / HTTP/1.1\r\nHost: localhost\r\nConnection: close\r\n\r\n");
    });
    socket.on("data", (chunk: Buffer) => (response += chunk.toString("latin1")));
    socket.on("error", (err) => (error ??= err));
    socket.on("close", () => resolve({ secureConnected, protocol, cipher, error, response }));
  });
}

/** Sends `payload` over plain TCP and collects whatever comes back until the peer closes. */
export function rawTcpExchange(port: number, payload: string): Promise<{ reply: string; error?: Error }> {
  return new Promise((resolve) => {
    let reply = "";
    let error: Error | undefined;
    const socket = netConnect({ host: "127.0.0.1", port }, () => socket.write(payload));
    socket.setTimeout(5_000, () => socket.destroy(new Error("test client timed out")));
    socket.on("data", (chunk: Buffer) => (reply += chunk.toString("latin1")));
    socket.on("error", (err) => (error ??= err));
    socket.on("close", () => resolve(error === undefined ? { reply } : { reply, error }));
  });
}

/** Parses the JSON body of a raw HTTP/1.1 response. */
export function responseBody(response: string): unknown {
  const start = response.indexOf("\r\n\r\n");
  return JSON.parse(response.slice(start + 4));
}
