// mTLS over real loopback sockets: which client certificates authenticate, and as whom.
import { createPrivateKey, sign } from "node:crypto";
import { readFile } from "node:fs/promises";
import { AsnConvert } from "@peculiar/asn1-schema";
import {
  AttributeTypeAndValue,
  AttributeValue,
  Certificate,
  RelativeDistinguishedName,
} from "@peculiar/asn1-x509";
import { afterAll, beforeAll, describe, expect, it, vi } from "vitest";
import { createCertificateAuthority, issueCertificate } from "../../src/tls/dev-certs.js";
import type { CertificateAuthority } from "../../src/tls/dev-certs.js";
import { buildTlsOptions } from "../../src/tls/server-options.js";
import type { ClientAuthMode } from "../../src/tls/server-options.js";
import {
  ServerPool,
  clientCertificate,
  createTestPki,
  removeTestPki,
  responseBody,
  tlsRequest,
} from "./tls-fixtures.js";
import type { TestPki, TestServer } from "./tls-fixtures.js";

const pool = new ServerPool();
let pki: TestPki | undefined;
// Same CN as the real admin: only the issuer differs, so a pass here would be an impersonation.
let otherCa: CertificateAuthority | undefined;

beforeAll(async () => {
  pki = await createTestPki();
  otherCa = createCertificateAuthority({ commonName: "Attacker CA" });
});
afterAll(async () => {
  await pool.closeAll();
  await removeTestPki(pki);
});

async function startServer(
  clientAuth: ClientAuthMode,
  spiffeTable?: Record<string, string>,
): Promise<TestServer> {
  const options = await buildTlsOptions({
    certPath: pki!.paths.serverCert,
    keyPath: pki!.paths.serverKey,
    clientCa: pki!.paths.caCert,
    clientAuth,
  });
  return pool.https(options, spiffeTable);
}

function asClient(cert: { certPem: string; keyPem: string } | undefined): {
  ca: string;
  cert?: string;
  key?: string;
} {
  return cert === undefined ? { ca: pki!.caPem } : { ca: pki!.caPem, cert: cert.certPem, key: cert.keyPem };
}

/** Counters that must not move when a handshake is refused (except clientErrors, by one). */
function snapshot(server: TestServer): { connections: number; requests: number; clientErrors: number } {
  return {
    connections: server.connections.length,
    requests: server.requests,
    clientErrors: server.clientErrors.length,
  };
}

/** The server recorded one refused handshake and nothing else (its error event may trail the client's close). */
async function expectRefused(server: TestServer, before: ReturnType<typeof snapshot>): Promise<void> {
  await vi.waitFor(() =>
    expect(snapshot(server)).toEqual({ ...before, clientErrors: before.clientErrors + 1 }),
  );
}

describe('client auth "required"', () => {
  let server: TestServer;
  beforeAll(async () => {
    server = await startServer("required");
  });

  it("accepts a client certificate from the configured CA; the principal is its CN", async () => {
    const outcome = await tlsRequest(server.port, asClient(pki!.admin));
    expect(outcome.error).toBeUndefined();
    expect(outcome.response).toMatch(/^HTTP\/1\.1 200/);
    expect(responseBody(outcome.response)).toMatchObject({ principal: { id: "admin", source: "cn" } });
    expect(server.connections.at(-1)).toEqual({
      authorized: true,
      authorizationError: undefined,
      principal: { id: "admin", source: "cn" },
    });
  });

  // Node verifies the client certificate after the handshake and destroys the socket when it fails,
  // so with TLS 1.3 the client may see a finished handshake followed by a close rather than an alert.
  // What must hold either way: no HTTP response, no request handled, no secure connection on the server.
  it.each(["TLSv1.2", "TLSv1.3"] as const)(
    "refuses a certificate with the same CN from another CA (%s)",
    async (version) => {
      const before = snapshot(server);
      const forged = clientCertificate(otherCa!, "admin");
      const outcome = await tlsRequest(server.port, { ...asClient(forged), maxVersion: version });
      expect(outcome.response).toBe("");
      await expectRefused(server, before);
    },
  );

  it.each(["TLSv1.2", "TLSv1.3"] as const)("refuses a client without a certificate (%s)", async (version) => {
    const before = snapshot(server);
    const outcome = await tlsRequest(server.port, { ...asClient(undefined), maxVersion: version });
    expect(outcome.error).toBeDefined();
    expect(outcome.response).toBe("");
    await expectRefused(server, before);
  });

  it("refuses the dev CA's server certificate presented as a client certificate (serverAuth only)", async () => {
    // Its CN, `localhost`, is a valid bare id: only the EKU check keeps it from becoming a principal.
    const before = snapshot(server);
    const outcome = await tlsRequest(server.port, {
      ca: pki!.caPem,
      cert: await readFile(pki!.paths.serverCert, "utf8"),
      key: await readFile(pki!.paths.serverKey, "utf8"),
    });
    expect(outcome.response).toBe("");
    await expectRefused(server, before);
  });
});

describe('client auth "optional"', () => {
  let server: TestServer;
  beforeAll(async () => {
    server = await startServer("optional");
  });

  it("lets a client without a certificate connect, with no principal", async () => {
    const outcome = await tlsRequest(server.port, asClient(undefined));
    expect(outcome.error).toBeUndefined();
    expect(outcome.response).toMatch(/^HTTP\/1\.1 200/);
    expect(responseBody(outcome.response)).toMatchObject({ principal: null });
    expect(server.connections.at(-1)).toMatchObject({ authorized: false, principal: undefined });
  });

  it("lets another CA's certificate connect but never turns it into a principal", async () => {
    const outcome = await tlsRequest(server.port, asClient(clientCertificate(otherCa!, "admin")));
    expect(outcome.error).toBeUndefined();
    expect(outcome.response).toMatch(/^HTTP\/1\.1 200/);
    expect(responseBody(outcome.response)).toMatchObject({ principal: null });
    expect(server.connections.at(-1)).toMatchObject({ authorized: false, principal: undefined });
    expect(server.connections.at(-1)?.authorizationError).toBe("UNABLE_TO_VERIFY_LEAF_SIGNATURE");
  });

  it("authenticates a certificate from the configured CA", async () => {
    const outcome = await tlsRequest(server.port, asClient(pki!.admin));
    expect(responseBody(outcome.response)).toMatchObject({ principal: { id: "admin", source: "cn" } });
  });
});

describe("SPIFFE ids through the configured table", () => {
  const TABLE = {
    "spiffe://signet.local/billing": "billing-bot",
    "spiffe://signet.local/bad-target": "Not A Bare Id",
  };
  let server: TestServer;
  beforeAll(async () => {
    server = await startServer("required", TABLE);
  });

  async function principalsFor(
    commonName: string,
    uris: string[],
  ): Promise<{ principal: unknown; withTable: unknown }> {
    const cert = clientCertificate(pki!.ca, commonName, uris);
    const outcome = await tlsRequest(server.port, asClient(cert));
    expect(outcome.error).toBeUndefined();
    return responseBody(outcome.response) as { principal: unknown; withTable: unknown };
  }

  it("maps a listed SPIFFE id to its bare id, whatever the CN says", async () => {
    const seen = await principalsFor("someone-else", ["spiffe://signet.local/billing"]);
    expect(seen.withTable).toEqual({ id: "billing-bot", source: "spiffe" });
  });

  it("refuses an unlisted SPIFFE id instead of falling back to the CN", async () => {
    const seen = await principalsFor("admin", ["spiffe://signet.local/admin"]);
    expect(seen.withTable).toBeNull();
  });

  it("refuses a certificate with two SPIFFE ids", async () => {
    const seen = await principalsFor("admin", [
      "spiffe://signet.local/billing",
      "spiffe://signet.local/other",
    ]);
    expect(seen.withTable).toBeNull();
  });

  it("refuses a table entry that maps to something that is not a bare id", async () => {
    const seen = await principalsFor("admin", ["spiffe://signet.local/bad-target"]);
    expect(seen.withTable).toBeNull();
  });

  it("uses the CN for a certificate without a SPIFFE id, table or not", async () => {
    const seen = await principalsFor("alice", ["https://example.com/not-spiffe"]);
    expect(seen).toEqual({
      principal: { id: "alice", source: "cn" },
      withTable: { id: "alice", source: "cn" },
    });
  });

  it("ignores SPIFFE ids when no table is configured (the CN is the principal)", async () => {
    const seen = await principalsFor("alice", ["spiffe://signet.local/billing"]);
    expect(seen.principal).toEqual({ id: "alice", source: "cn" });
  });

  it("refuses a CN that is not a bare id rather than normalising it", async () => {
    expect((await principalsFor("Admin", [])).principal).toBeNull();
    expect((await principalsFor("alice smith", [])).principal).toBeNull();
  });

  it("refuses a certificate with two CNs", async () => {
    // issueCertificate writes one CN; add a second one and re-sign with the dev CA's key.
    const base = issueCertificate({ issuer: pki!.ca, commonName: "admin", extendedKeyUsage: ["clientAuth"] });
    const der = Buffer.from(base.certPem.replace(/-----[^-]+-----|\s/g, ""), "base64");
    const cert = AsnConvert.parse(der, Certificate);
    cert.tbsCertificate.subject.push(
      new RelativeDistinguishedName([
        new AttributeTypeAndValue({ type: "2.5.4.3", value: new AttributeValue({ utf8String: "root" }) }),
      ]),
    );
    const tbs = new Uint8Array(AsnConvert.serialize(cert.tbsCertificate));
    const signature = sign("sha256", tbs, { key: createPrivateKey(pki!.ca.keyPem), dsaEncoding: "der" });
    const resigned = new Certificate({
      tbsCertificate: cert.tbsCertificate,
      signatureAlgorithm: cert.signatureAlgorithm,
      signatureValue: new Uint8Array(signature).buffer,
    });
    const pem = `-----BEGIN CERTIFICATE-----\n${Buffer.from(AsnConvert.serialize(resigned)).toString("base64")}\n-----END CERTIFICATE-----\n`;
    const outcome = await tlsRequest(server.port, { ca: pki!.caPem, cert: pem, key: base.keyPem });
    expect(outcome.error).toBeUndefined();
    expect(server.connections.at(-1)?.authorized).toBe(true);
    expect(responseBody(outcome.response)).toMatchObject({ principal: null });
  });
});
