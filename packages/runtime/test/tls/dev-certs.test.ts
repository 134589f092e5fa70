// Development certificates: what they certify, that real TLS clients accept them, and how the files are written.
import { X509Certificate, createPrivateKey, generateKeyPairSync } from "node:crypto";
import { chmod, mkdtemp, readFile, readdir, rm, stat, symlink, writeFile } from "node:fs/promises";
import { tmpdir } from "node:os";
import { join } from "node:path";
import { afterAll, afterEach, beforeAll, describe, expect, it } from "vitest";
import {
  createCertificateAuthority,
  createDevCertificates,
  issueCertificate,
} from "../../src/tls/dev-certs.js";
import { buildTlsOptions } from "../../src/tls/server-options.js";
import { ServerPool, createTestPki, removeTestPki, tlsRequest } from "./tls-fixtures.js";
import type { TestPki } from "./tls-fixtures.js";

const SERVER_AUTH = "1.3.6.1.5.5.7.3.1";
const CLIENT_AUTH = "1.3.6.1.5.5.7.3.2";

describe("generated server certificate over a real TLS connection", () => {
  const pool = new ServerPool();
  let pki: TestPki | undefined;
  let port = 0;

  beforeAll(async () => {
    pki = await createTestPki();
    const options = await buildTlsOptions({
      certPath: pki.paths.serverCert,
      keyPath: pki.paths.serverKey,
      clientAuth: "none",
    });
    port = (await pool.https(options)).port;
  });
  afterAll(async () => {
    await pool.closeAll();
    await removeTestPki(pki);
  });

  it("validates against the dev CA for localhost", async () => {
    const outcome = await tlsRequest(port, { ca: pki!.caPem, servername: "localhost" });
    expect(outcome.error).toBeUndefined();
    expect(outcome.secureConnected).toBe(true);
    expect(outcome.response).toMatch(/^HTTP\/1\.1 200/);
  });

  it("validates against the dev CA for 127.0.0.1 (IP SAN, no SNI)", async () => {
    // With no servername, Node checks the certificate against `host`, which is an IP here.
    const outcome = await tlsRequest(port, { ca: pki!.caPem, servername: undefined, host: "127.0.0.1" });
    expect(outcome.error).toBeUndefined();
    expect(outcome.secureConnected).toBe(true);
  });

  it("fails verification for a name it does not carry (the check above is real)", async () => {
    const outcome = await tlsRequest(port, { ca: pki!.caPem, servername: "signet.example" });
    expect(outcome.secureConnected).toBe(false);
    expect(outcome.error?.code).toBe("ERR_TLS_CERT_ALTNAME_INVALID");
  });

  it("fails verification without the dev CA (it is not in the system store)", async () => {
    const outcome = await tlsRequest(port, { servername: "localhost" });
    expect(outcome.secureConnected).toBe(false);
    expect(outcome.error?.code).toBe("UNABLE_TO_VERIFY_LEAF_SIGNATURE");
  });

  it("fails verification against an unrelated CA", async () => {
    const other = createCertificateAuthority({ commonName: "Unrelated CA" });
    const outcome = await tlsRequest(port, { ca: other.certPem, servername: "localhost" });
    expect(outcome.secureConnected).toBe(false);
    expect(outcome.error).toBeDefined();
  });
});

describe("certificate contents", () => {
  let pki: TestPki | undefined;
  let dir = "";

  beforeAll(async () => {
    pki = await createTestPki();
    dir = await mkdtemp(join(tmpdir(), "signet-tls-names-"));
  });
  afterAll(async () => {
    await removeTestPki(pki);
    await rm(dir, { recursive: true, force: true });
  });

  it("server certificate: serverAuth only, SANs for localhost, 127.0.0.1 and ::1, signed by the CA", async () => {
    const ca = new X509Certificate(await readFile(pki!.paths.caCert));
    const server = new X509Certificate(await readFile(pki!.paths.serverCert));
    expect(ca.ca).toBe(true);
    expect(server.ca).toBe(false);
    expect(server.verify(ca.publicKey)).toBe(true);
    expect(server.checkIssued(ca)).toBe(true);
    expect(server.keyUsage).toEqual([SERVER_AUTH]);
    expect(server.checkHost("localhost")).toBe("localhost");
    expect(server.checkIP("127.0.0.1")).toBe("127.0.0.1");
    expect(server.checkIP("::1")).toBe("::1");
    expect(server.publicKey.asymmetricKeyDetails?.namedCurve).toBe("prime256v1");
  });

  it("client certificate: the bare id as CN, clientAuth only, no SPIFFE id unless asked", async () => {
    const client = new X509Certificate(await readFile(pki!.paths.clients.admin!.cert));
    const ca = new X509Certificate(await readFile(pki!.paths.caCert));
    expect(client.subject).toBe("CN=admin");
    expect(client.keyUsage).toEqual([CLIENT_AUTH]);
    expect(client.checkIssued(ca)).toBe(true);
    expect(client.subjectAltName).toBeUndefined();
  });

  it("adds serverNames and, on request, a SPIFFE URI SAN per client", async () => {
    const paths = await createDevCertificates({
      dir,
      serverNames: ["signet.example", "10.1.2.3"],
      clientIds: ["billing-bot"],
      spiffe: true,
    });
    const server = new X509Certificate(await readFile(paths.serverCert));
    expect(server.checkHost("signet.example")).toBe("signet.example");
    expect(server.checkIP("10.1.2.3")).toBe("10.1.2.3");
    const client = new X509Certificate(await readFile(paths.clients["billing-bot"]!.cert));
    expect(client.subject).toBe("CN=billing-bot");
    expect(client.subjectAltName).toBe("URI:spiffe://signet.local/billing-bot");
  });

  it("refuses client ids that are not bare ids and server names that are not names", async () => {
    await expect(createDevCertificates({ dir, clientIds: ["../evil"], force: true })).rejects.toThrow(
      /not a bare id/,
    );
    await expect(createDevCertificates({ dir, clientIds: ["Admin"], force: true })).rejects.toThrow(
      /not a bare id/,
    );
    await expect(createDevCertificates({ dir, serverNames: ["a b"], force: true })).rejects.toThrow(
      /neither a DNS name nor an IP address/,
    );
  });

  it("two CAs are unrelated: one does not verify the other's certificates", () => {
    const first = createCertificateAuthority();
    const second = createCertificateAuthority();
    const leaf = issueCertificate({ issuer: second, commonName: "admin", extendedKeyUsage: ["clientAuth"] });
    const firstCert = new X509Certificate(first.certPem);
    const leafCert = new X509Certificate(leaf.certPem);
    expect(first.commonName).not.toBe(second.commonName);
    expect(leafCert.verify(firstCert.publicKey)).toBe(false);
    expect(leafCert.verify(new X509Certificate(second.certPem).publicKey)).toBe(true);
  });
});

describe("files on disk", () => {
  const dirs: string[] = [];
  const freshDir = async (): Promise<string> => {
    const dir = await mkdtemp(join(tmpdir(), "signet-tls-files-"));
    dirs.push(dir);
    return dir;
  };
  afterEach(async () => {
    await Promise.all(dirs.splice(0).map((dir) => rm(dir, { recursive: true, force: true })));
  });

  it("writes every private key with mode 0600, and each key matches its certificate", async () => {
    const paths = await createDevCertificates({ dir: await freshDir(), clientIds: ["admin", "alice"] });
    const pairs = [
      [paths.caCert, paths.caKey],
      [paths.serverCert, paths.serverKey],
      ...Object.values(paths.clients).map((c) => [c.cert, c.key]),
    ] as const;
    expect(pairs).toHaveLength(4);
    for (const [certPath, keyPath] of pairs) {
      expect((await stat(keyPath)).mode & 0o777).toBe(0o600);
      const cert = new X509Certificate(await readFile(certPath));
      expect(cert.checkPrivateKey(createPrivateKey(await readFile(keyPath)))).toBe(true);
    }
    expect((await readdir(paths.dir)).sort()).toEqual([
      "ca.crt",
      "ca.key",
      "client-admin.crt",
      "client-admin.key",
      "client-alice.crt",
      "client-alice.key",
      "server.crt",
      "server.key",
    ]);
  });

  it("creates a missing directory with mode 0700", async () => {
    const dir = join(await freshDir(), "nested", "certs");
    await createDevCertificates({ dir });
    expect((await stat(dir)).mode & 0o777).toBe(0o700);
  });

  it("refuses to overwrite an existing file without force, and writes nothing", async () => {
    const dir = await freshDir();
    await writeFile(join(dir, "server.key"), "keep me");
    await expect(createDevCertificates({ dir })).rejects.toThrow(/refusing to overwrite .*server\.key/);
    expect(await readdir(dir)).toEqual(["server.key"]);
    expect(await readFile(join(dir, "server.key"), "utf8")).toBe("keep me");
  });

  it("refuses a symlink in a target's place without force (it would redirect the key)", async () => {
    const dir = await freshDir();
    await symlink(join(dir, "elsewhere"), join(dir, "ca.key"));
    await expect(createDevCertificates({ dir })).rejects.toThrow(/refusing to overwrite .*ca\.key/);
  });

  it("with force, replaces files and a previously world-readable key ends up 0600", async () => {
    const dir = await freshDir();
    const first = await createDevCertificates({ dir });
    const before = await readFile(first.caCert, "utf8");
    await chmod(first.serverKey, 0o644);
    const second = await createDevCertificates({ dir, force: true });
    expect(await readFile(second.caCert, "utf8")).not.toBe(before);
    expect((await stat(second.serverKey)).mode & 0o777).toBe(0o600);
    expect((await readdir(dir)).filter((name) => name.endsWith(".tmp"))).toEqual([]);
  });

  it("returns paths only, never key material", async () => {
    const paths = await createDevCertificates({ dir: await freshDir(), clientIds: ["admin"] });
    expect(JSON.stringify(paths)).not.toMatch(/PRIVATE KEY/);
  });
});

describe("issueCertificate guards", () => {
  it("refuses an issuer key it cannot label correctly (only ECDSA P-256 signs)", () => {
    const { privateKey } = generateKeyPairSync("ed25519");
    const ca = createCertificateAuthority();
    const keyPem = privateKey.export({ type: "pkcs8", format: "pem" }) as string;
    expect(() =>
      issueCertificate({
        issuer: { certPem: ca.certPem, keyPem },
        commonName: "x",
        extendedKeyUsage: ["clientAuth"],
      }),
    ).toThrow(/ECDSA P-256/);
  });

  it("refuses a certificate with no extended key usage", () => {
    const ca = createCertificateAuthority();
    expect(() => issueCertificate({ issuer: ca, commonName: "x", extendedKeyUsage: [] })).toThrow(
      /extendedKeyUsage/,
    );
  });
});
