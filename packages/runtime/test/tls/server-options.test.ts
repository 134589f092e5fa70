// buildTlsOptions: the options it returns per client-auth mode, and errors that name the setting and the file.
import { mkdtemp, rm, writeFile } from "node:fs/promises";
import { tmpdir } from "node:os";
import { join } from "node:path";
import { afterAll, beforeAll, describe, expect, it } from "vitest";
import { createCertificateAuthority, issueCertificate } from "../../src/tls/dev-certs.js";
import { RUNTIME_TLS_CIPHERS, buildTlsOptions } from "../../src/tls/server-options.js";
import { createTestPki, removeTestPki } from "./tls-fixtures.js";
import type { TestPki } from "./tls-fixtures.js";

let pki: TestPki | undefined;
let scratch = "";

beforeAll(async () => {
  pki = await createTestPki();
  scratch = await mkdtemp(join(tmpdir(), "signet-tls-options-"));
});
afterAll(async () => {
  await removeTestPki(pki);
  await rm(scratch, { recursive: true, force: true });
});

async function scratchFile(name: string, content: string): Promise<string> {
  const path = join(scratch, name);
  await writeFile(path, content, { mode: 0o600 });
  return path;
}

describe("options per client-auth mode", () => {
  it('"none": TLS 1.2 floor, no cap, our cipher order, no client certificate requested', async () => {
    const options = await buildTlsOptions({
      certPath: pki!.paths.serverCert,
      keyPath: pki!.paths.serverKey,
      clientAuth: "none",
    });
    expect(options).toMatchObject({
      minVersion: "TLSv1.2",
      ciphers: RUNTIME_TLS_CIPHERS,
      honorCipherOrder: true,
      requestCert: false,
      rejectUnauthorized: false,
    });
    expect(options).not.toHaveProperty("maxVersion");
    expect(options.ca).toBeUndefined();
  });

  it('"optional": requests a certificate but lets unverified clients through', async () => {
    const options = await buildTlsOptions({
      certPath: pki!.paths.serverCert,
      keyPath: pki!.paths.serverKey,
      clientCa: pki!.paths.caCert,
      clientAuth: "optional",
    });
    expect(options).toMatchObject({ requestCert: true, rejectUnauthorized: false, ca: pki!.caPem });
  });

  it('"required": requests a certificate and rejects unverified clients', async () => {
    const options = await buildTlsOptions({
      certPath: pki!.paths.serverCert,
      keyPath: pki!.paths.serverKey,
      clientCa: pki!.paths.caCert,
      clientAuth: "required",
    });
    expect(options).toMatchObject({ requestCert: true, rejectUnauthorized: true, ca: pki!.caPem });
  });

  it.each(["optional", "required"] as const)(
    '"%s" without a client CA is an error (the public root store must never vouch for agents)',
    async (clientAuth) => {
      await expect(
        buildTlsOptions({ certPath: pki!.paths.serverCert, keyPath: pki!.paths.serverKey, clientAuth }),
      ).rejects.toThrow(`tls.client_ca: required when tls.client_auth is "${clientAuth}"`);
    },
  );

  it("an unknown mode is an error, not a silent downgrade to no client auth", async () => {
    await expect(
      buildTlsOptions({
        certPath: pki!.paths.serverCert,
        keyPath: pki!.paths.serverKey,
        clientCa: pki!.paths.caCert,
        clientAuth: "sometimes" as "required",
      }),
    ).rejects.toThrow(/tls\.client_auth/);
  });
});

describe("errors name the setting and the file", () => {
  it("unreadable certificate", async () => {
    const missing = join(scratch, "missing.crt");
    await expect(
      buildTlsOptions({ certPath: missing, keyPath: pki!.paths.serverKey, clientAuth: "none" }),
    ).rejects.toThrow(`tls.cert_path: cannot read ${missing} (ENOENT)`);
  });

  it("unreadable key", async () => {
    const missing = join(scratch, "missing.key");
    await expect(
      buildTlsOptions({ certPath: pki!.paths.serverCert, keyPath: missing, clientAuth: "none" }),
    ).rejects.toThrow(`tls.key_path: cannot read ${missing} (ENOENT)`);
  });

  it("unreadable client CA", async () => {
    const missing = join(scratch, "missing-ca.crt");
    await expect(
      buildTlsOptions({
        certPath: pki!.paths.serverCert,
        keyPath: pki!.paths.serverKey,
        clientCa: missing,
        clientAuth: "required",
      }),
    ).rejects.toThrow(`tls.client_ca: cannot read ${missing} (ENOENT)`);
  });

  it("a certificate file with no PEM certificate in it", async () => {
    const path = await scratchFile("not-pem.crt", "hello\n");
    await expect(
      buildTlsOptions({ certPath: path, keyPath: pki!.paths.serverKey, clientAuth: "none" }),
    ).rejects.toThrow(`tls.cert_path: ${path} holds no PEM certificate`);
  });

  it("a PEM certificate block that does not parse", async () => {
    const path = await scratchFile(
      "corrupt.crt",
      "-----BEGIN CERTIFICATE-----\nAAAA\n-----END CERTIFICATE-----\n",
    );
    await expect(
      buildTlsOptions({ certPath: path, keyPath: pki!.paths.serverKey, clientAuth: "none" }),
    ).rejects.toThrow(`tls.cert_path: certificate 1 in ${path} does not parse`);
  });

  it("a client CA bundle that does not parse", async () => {
    const path = await scratchFile("corrupt-ca.crt", "junk");
    await expect(
      buildTlsOptions({
        certPath: pki!.paths.serverCert,
        keyPath: pki!.paths.serverKey,
        clientCa: path,
        clientAuth: "optional",
      }),
    ).rejects.toThrow(`tls.client_ca: ${path} holds no PEM certificate`);
  });

  it("a key that does not parse, without echoing the file's content", async () => {
    const path = await scratchFile(
      "corrupt.key",
      "-----BEGIN PRIVATE KEY-----\nU0VDUkVUU0VDUkVU\n-----END PRIVATE KEY-----\n",
    );
    const error = await buildTlsOptions({
      certPath: pki!.paths.serverCert,
      keyPath: path,
      clientAuth: "none",
    }).catch((caught: unknown) => caught as Error);
    expect(error).toBeInstanceOf(Error);
    expect((error as Error).message).toMatch(
      /^tls\.key_path: .*corrupt\.key is not a readable PEM private key/,
    );
    expect((error as Error).message).not.toContain("U0VDUkVU");
  });

  it("a key that belongs to another certificate", async () => {
    const stranger = issueCertificate({
      issuer: createCertificateAuthority(),
      commonName: "localhost",
      extendedKeyUsage: ["serverAuth"],
    });
    const path = await scratchFile("stranger.key", stranger.keyPem);
    await expect(
      buildTlsOptions({ certPath: pki!.paths.serverCert, keyPath: path, clientAuth: "none" }),
    ).rejects.toThrow(`tls.key_path: ${path} is not the key of the certificate in ${pki!.paths.serverCert}`);
  });
});
