// TLS settings for the runtime's HTTPS listener: TLS 1.2+ with forward-secret AEAD ciphers and optional mTLS.
import { X509Certificate, constants, createPrivateKey } from "node:crypto";
import type { KeyObject } from "node:crypto";
import { readFile } from "node:fs/promises";
import type { SecureContextOptions } from "node:tls";

/** How the listener treats client certificates. */
export type ClientAuthMode = "none" | "optional" | "required";

/** Where the listener's certificate, key and (for mTLS) trusted client CA live. */
export interface TlsFilesConfig {
  readonly certPath: string;
  readonly keyPath: string;
  /** PEM bundle of the CAs that may issue client certificates; needed unless `clientAuth` is "none". */
  readonly clientCa?: string;
  /** Required: whether mTLS is off, accepted when offered, or demanded. */
  readonly clientAuth: ClientAuthMode;
}

/** Options for `https.createServer` / `tls.createServer`. */
export type RuntimeTlsOptions = SecureContextOptions & {
  requestCert: boolean;
  rejectUnauthorized: boolean;
  minVersion: "TLSv1.2";
};

/**
 * TLS 1.3 suites first, then TLS 1.2 with ECDHE (forward secrecy) and AEAD only: no CBC, no static RSA,
 * no finite-field DHE. ECDSA and RSA variants both, so an operator's RSA certificate still works.
 */
export const RUNTIME_TLS_CIPHERS = [
  "TLS_AES_128_GCM_SHA256",
  "TLS_AES_256_GCM_SHA384",
  "TLS_CHACHA20_POLY1305_SHA256",
  "ECDHE-ECDSA-AES128-GCM-SHA256",
  "ECDHE-RSA-AES128-GCM-SHA256",
  "ECDHE-ECDSA-AES256-GCM-SHA384",
  "ECDHE-RSA-AES256-GCM-SHA384",
  "ECDHE-ECDSA-CHACHA20-POLY1305",
  "ECDHE-RSA-CHACHA20-POLY1305",
].join(":");

/**
 * Reads and checks the certificate, key and client CA, and returns the listener's TLS options.
 * Throws a plain Error naming the setting and file (`tls.cert_path: cannot read /x/y.crt (ENOENT)`).
 *
 * "optional" lets a client without a valid certificate finish the handshake, so the caller must take
 * an identity only from an authorized socket, which is what `peerPrincipal` does.
 *
 * @example
 * const tls = await buildTlsOptions({ certPath: "server.crt", keyPath: "server.key", clientCa: "ca.crt", clientAuth: "required" });
 * const server = https.createServer(tls, handler);
 */
export async function buildTlsOptions(config: TlsFilesConfig): Promise<RuntimeTlsOptions> {
  const certPem = await readSetting("tls.cert_path", config.certPath);
  const keyPem = await readSetting("tls.key_path", config.keyPath);
  const chain = parseCertificates("tls.cert_path", config.certPath, certPem);
  const key = parseKey(config.keyPath, keyPem);
  if (!chain[0]!.checkPrivateKey(key)) {
    throw new Error(
      `tls.key_path: ${config.keyPath} is not the key of the certificate in ${config.certPath}`,
    );
  }

  const options: RuntimeTlsOptions = {
    cert: certPem,
    key: keyPem,
    // Leave maxVersion at Node's default so TLS 1.3 is negotiated whenever the client offers it.
    minVersion: "TLSv1.2",
    ciphers: RUNTIME_TLS_CIPHERS,
    honorCipherOrder: true,
    // A TLS 1.2 client could renegotiate and present a different certificate mid-connection;
    // identities are read per request from the socket, so the certificate must not change under them.
    secureOptions: constants.SSL_OP_NO_RENEGOTIATION,
    requestCert: false,
    rejectUnauthorized: false,
  };
  if (config.clientAuth === "none") return options;

  if (config.clientAuth !== "optional" && config.clientAuth !== "required") {
    throw new Error(`tls.client_auth: must be "none", "optional" or "required"`);
  }
  if (config.clientCa === undefined || config.clientCa === "") {
    // Without our own CA Node would trust its public root store, and any publicly issued
    // certificate whose CN looks like an agent id would authenticate as that agent.
    throw new Error(`tls.client_ca: required when tls.client_auth is "${config.clientAuth}"`);
  }
  const caPem = await readSetting("tls.client_ca", config.clientCa);
  parseCertificates("tls.client_ca", config.clientCa, caPem);
  return {
    ...options,
    ca: caPem,
    requestCert: true,
    rejectUnauthorized: config.clientAuth === "required",
  };
}

async function readSetting(setting: string, path: string): Promise<string> {
  try {
    return await readFile(path, "utf8");
  } catch (error) {
    const code = (error as NodeJS.ErrnoException).code ?? "unknown error";
    throw new Error(`${setting}: cannot read ${path} (${code})`, { cause: error });
  }
}

const PEM_CERTIFICATE = /-----BEGIN CERTIFICATE-----[\s\S]+?-----END CERTIFICATE-----/g;

function parseCertificates(setting: string, path: string, pem: string): X509Certificate[] {
  const blocks = pem.match(PEM_CERTIFICATE) ?? [];
  if (blocks.length === 0) throw new Error(`${setting}: ${path} holds no PEM certificate`);
  return blocks.map((block, index) => {
    try {
      return new X509Certificate(block);
    } catch {
      throw new Error(`${setting}: certificate ${index + 1} in ${path} does not parse`);
    }
  });
}

function parseKey(path: string, pem: string): KeyObject {
  try {
    return createPrivateKey(pem);
  } catch {
    // OpenSSL's own wording ("unsupported", "bad decrypt") varies by version; the file name is what helps.
    throw new Error(
      `tls.key_path: ${path} is not a readable PEM private key (encrypted keys are not supported)`,
    );
  }
}
