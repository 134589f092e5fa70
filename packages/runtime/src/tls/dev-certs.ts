// Development PKI: a throwaway ECDSA P-256 CA with server and mTLS client certificates, written as PEM files.
import { createHash, createPrivateKey, generateKeyPairSync, randomBytes, sign } from "node:crypto";
import type { KeyObject } from "node:crypto";
import { chmod, lstat, mkdir, rename, rm, stat, writeFile } from "node:fs/promises";
import { isIP } from "node:net";
import { join } from "node:path";
import { AsnConvert, OctetString } from "@peculiar/asn1-schema";
import {
  AttributeTypeAndValue,
  AttributeValue,
  AuthorityKeyIdentifier,
  AlgorithmIdentifier,
  BasicConstraints,
  Certificate,
  ExtendedKeyUsage,
  Extension,
  Extensions,
  GeneralName,
  KeyIdentifier,
  KeyUsage,
  KeyUsageFlags,
  Name,
  RelativeDistinguishedName,
  SubjectAlternativeName,
  SubjectKeyIdentifier,
  SubjectPublicKeyInfo,
  TBSCertificate,
  Validity,
  Version,
  id_ce_authorityKeyIdentifier,
  id_ce_basicConstraints,
  id_ce_extKeyUsage,
  id_ce_keyUsage,
  id_ce_subjectAltName,
  id_ce_subjectKeyIdentifier,
  id_kp_clientAuth,
  id_kp_serverAuth,
} from "@peculiar/asn1-x509";
import { AGENT_ID_PATTERN } from "@signet/protocol";

// Why not @peculiar/x509: it needs a global Reflect polyfill (tsyringe) installed before import,
// which a security runtime should not impose on its host process. Its ASN.1 layer, used here, does not.

/** The SPIFFE trust domain of development client certificates: `spiffe://signet.local/<id>`. */
export const DEV_SPIFFE_TRUST_DOMAIN = "signet.local";

const OID_COMMON_NAME = "2.5.4.3";
const OID_ORGANIZATION = "2.5.4.10";
const OID_ECDSA_WITH_SHA256 = "1.2.840.10045.4.3.2";
const DEFAULT_DAYS = 365;
const MAX_DAYS = 3650;
const DAY_MS = 86_400_000;
// Backdating notBefore tolerates a peer whose clock runs a little behind ours.
const CLOCK_SKEW_MS = 5 * 60_000;

/** A key pair and certificate in PEM. `keyPem` is secret: never log it. */
export interface PemCertificate {
  readonly certPem: string;
  readonly keyPem: string;
}

/** A certificate authority that can issue certificates with {@link issueCertificate}. */
export interface CertificateAuthority extends PemCertificate {
  readonly commonName: string;
}

/** What a leaf certificate is for: TLS server, TLS client, or both. */
export type ExtendedKeyUsageName = "serverAuth" | "clientAuth";

/** Options of {@link createCertificateAuthority}. */
export interface CertificateAuthorityOptions {
  /** Subject CN; a random suffix keeps two development CAs from ever sharing a name. */
  readonly commonName?: string;
  readonly days?: number;
}

/** Options of {@link issueCertificate}. */
export interface IssueCertificateOptions {
  /** The signing CA: a {@link CertificateAuthority}, or `ca.crt` and `ca.key` read back from disk. */
  readonly issuer: PemCertificate;
  /** Subject CN. For a client certificate this is the bare principal id. */
  readonly commonName: string;
  /** Required: a certificate usable for everything is the weaker default, so there is none. */
  readonly extendedKeyUsage: readonly ExtendedKeyUsageName[];
  readonly dnsNames?: readonly string[];
  readonly ipAddresses?: readonly string[];
  /** URI SANs, e.g. a SPIFFE id `spiffe://signet.local/alice`. */
  readonly uris?: readonly string[];
  readonly days?: number;
}

/** Options of {@link createDevCertificates}. */
export interface DevCertificateOptions {
  /** Directory for the PEM files; created with mode 0700 when missing. */
  readonly dir: string;
  /** Extra server names (DNS names or IP addresses) beyond `localhost`, `127.0.0.1` and `::1`. */
  readonly serverNames?: readonly string[];
  /** Bare principal ids that get a client certificate (`client-<id>.crt`). */
  readonly clientIds?: readonly string[];
  /** Also put `spiffe://signet.local/<id>` in each client certificate as a URI SAN. */
  readonly spiffe?: boolean;
  /** Validity of every certificate, in days (default 365). */
  readonly days?: number;
  /** Replace existing files; without it, any existing target file is an error and nothing is written. */
  readonly force?: boolean;
}

/** Where {@link createDevCertificates} wrote each file. */
export interface DevCertificatePaths {
  readonly dir: string;
  readonly caCert: string;
  readonly caKey: string;
  readonly serverCert: string;
  readonly serverKey: string;
  readonly clients: Readonly<Record<string, { readonly cert: string; readonly key: string }>>;
}

/**
 * Creates a self-signed ECDSA P-256 CA that may sign leaf certificates only (path length 0).
 *
 * @example
 * const ca = createCertificateAuthority({ commonName: "Other CA" });
 * const leaf = issueCertificate({ issuer: ca, commonName: "mallory", extendedKeyUsage: ["clientAuth"] });
 */
export function createCertificateAuthority(options: CertificateAuthorityOptions = {}): CertificateAuthority {
  const commonName = `${options.commonName ?? "Signet Development CA"} ${randomBytes(4).toString("hex")}`;
  const { privateKey, publicKey } = newKeyPair();
  const spki = parseSpki(publicKey);
  const subject = nameOf(commonName, "Signet development");
  const ski = keyIdentifier(spki);
  const certPem = signCertificate({
    issuerName: subject,
    issuerKey: privateKey,
    subject,
    spki,
    days: validDays(options.days),
    extensions: [
      extension(id_ce_basicConstraints, true, new BasicConstraints({ cA: true, pathLenConstraint: 0 })),
      extension(id_ce_keyUsage, true, new KeyUsage(KeyUsageFlags.keyCertSign | KeyUsageFlags.cRLSign)),
      extension(id_ce_subjectKeyIdentifier, false, new SubjectKeyIdentifier(ski)),
    ],
  });
  return { commonName, certPem, keyPem: pkcs8Pem(privateKey) };
}

/**
 * Issues a leaf certificate (a fresh ECDSA P-256 key) signed by `issuer`.
 *
 * @example
 * const client = issueCertificate({ issuer: ca, commonName: "admin", extendedKeyUsage: ["clientAuth"] });
 */
export function issueCertificate(options: IssueCertificateOptions): PemCertificate {
  if (options.extendedKeyUsage.length === 0) throw new Error("issueCertificate: extendedKeyUsage is empty");
  const issuerKey = createPrivateKey(options.issuer.keyPem);
  // The signature algorithm below is fixed to ecdsa-with-SHA256; any other key would sign under a false label.
  if (issuerKey.asymmetricKeyType !== "ec" || issuerKey.asymmetricKeyDetails?.namedCurve !== "prime256v1") {
    throw new Error("issueCertificate: the issuer key must be ECDSA P-256");
  }
  const issuerCert = AsnConvert.parse(pemToDer(options.issuer.certPem), Certificate);
  const issuerKeyId = subjectKeyIdentifierOf(issuerCert);
  const { privateKey, publicKey } = newKeyPair();
  const spki = parseSpki(publicKey);

  const altNames = [
    ...(options.dnsNames ?? []).map((dNSName) => new GeneralName({ dNSName })),
    ...(options.ipAddresses ?? []).map((iPAddress) => new GeneralName({ iPAddress })),
    ...(options.uris ?? []).map(
      (uniformResourceIdentifier) => new GeneralName({ uniformResourceIdentifier }),
    ),
  ];
  const usages = options.extendedKeyUsage.map((usage) =>
    usage === "serverAuth" ? id_kp_serverAuth : id_kp_clientAuth,
  );
  const extensions = [
    extension(id_ce_basicConstraints, true, new BasicConstraints({ cA: false })),
    // ECDHE key exchange needs only signatures from the certificate key.
    extension(id_ce_keyUsage, true, new KeyUsage(KeyUsageFlags.digitalSignature)),
    extension(id_ce_extKeyUsage, false, new ExtendedKeyUsage(usages)),
    extension(id_ce_subjectKeyIdentifier, false, new SubjectKeyIdentifier(keyIdentifier(spki))),
    extension(
      id_ce_authorityKeyIdentifier,
      false,
      new AuthorityKeyIdentifier({ keyIdentifier: new KeyIdentifier(issuerKeyId) }),
    ),
  ];
  if (altNames.length > 0) {
    extensions.push(extension(id_ce_subjectAltName, false, new SubjectAlternativeName(altNames)));
  }
  const certPem = signCertificate({
    issuerName: issuerCert.tbsCertificate.subject,
    issuerKey,
    subject: nameOf(options.commonName),
    spki,
    days: validDays(options.days),
    extensions,
  });
  return { certPem, keyPem: pkcs8Pem(privateKey) };
}

/**
 * Writes a development CA, a server certificate for `localhost`, `127.0.0.1`, `::1` (plus
 * `serverNames`) and one client certificate per id: `ca.crt`, `ca.key`, `server.crt`,
 * `server.key`, `client-<id>.crt`, `client-<id>.key`. Keys are mode 0600.
 *
 * @example
 * const paths = await createDevCertificates({ dir: ".signet/certs", clientIds: ["admin"] });
 * // paths.serverCert === ".signet/certs/server.crt"; paths.clients.admin.key is mode 0600
 */
export async function createDevCertificates(options: DevCertificateOptions): Promise<DevCertificatePaths> {
  const clientIds = [...new Set(options.clientIds ?? [])];
  for (const id of clientIds) {
    // The id is both a principal and part of a file name: the pattern rules out `/` and leading dots.
    if (!AGENT_ID_PATTERN.test(id))
      throw new Error(`certs: client id ${JSON.stringify(id)} is not a bare id`);
  }
  const dnsNames = ["localhost"];
  const ipAddresses = ["127.0.0.1", "::1"];
  for (const name of options.serverNames ?? []) {
    if (isIP(name) !== 0) {
      if (!ipAddresses.includes(name)) ipAddresses.push(name);
    } else if (/^(\*\.)?[a-z0-9]([a-z0-9-]*[a-z0-9])?(\.[a-z0-9]([a-z0-9-]*[a-z0-9])?)*$/i.test(name)) {
      if (!dnsNames.includes(name.toLowerCase())) dnsNames.push(name.toLowerCase());
    } else {
      throw new Error(`certs: server name ${JSON.stringify(name)} is neither a DNS name nor an IP address`);
    }
  }
  const days = validDays(options.days);

  const dir = options.dir;
  const clients: Record<string, { cert: string; key: string }> = {};
  for (const id of clientIds) {
    clients[id] = { cert: join(dir, `client-${id}.crt`), key: join(dir, `client-${id}.key`) };
  }
  const paths: DevCertificatePaths = {
    dir,
    caCert: join(dir, "ca.crt"),
    caKey: join(dir, "ca.key"),
    serverCert: join(dir, "server.crt"),
    serverKey: join(dir, "server.key"),
    clients,
  };

  await mkdir(dir, { recursive: true, mode: 0o700 });
  const targets = [
    paths.caCert,
    paths.caKey,
    paths.serverCert,
    paths.serverKey,
    ...Object.values(clients).flatMap((c) => [c.cert, c.key]),
  ];
  if (options.force !== true) {
    // Check everything first so a refusal leaves the directory exactly as it was.
    const existing = (
      await Promise.all(targets.map(async (p) => ((await exists(p)) ? p : undefined)))
    ).filter((p): p is string => p !== undefined);
    if (existing.length > 0) {
      throw new Error(`certs: refusing to overwrite ${existing.join(", ")} (use force to replace them)`);
    }
  }

  const ca = createCertificateAuthority({ days });
  const server = issueCertificate({
    issuer: ca,
    commonName: "localhost",
    extendedKeyUsage: ["serverAuth"],
    dnsNames,
    ipAddresses,
    days,
  });
  const force = options.force === true;
  await writePem(paths.caKey, ca.keyPem, "secret", force);
  await writePem(paths.caCert, ca.certPem, "public", force);
  await writePem(paths.serverKey, server.keyPem, "secret", force);
  await writePem(paths.serverCert, server.certPem, "public", force);
  for (const id of clientIds) {
    const client = issueCertificate({
      issuer: ca,
      commonName: id,
      extendedKeyUsage: ["clientAuth"],
      uris: options.spiffe === true ? [`spiffe://${DEV_SPIFFE_TRUST_DOMAIN}/${id}`] : [],
      days,
    });
    const target = clients[id]!;
    await writePem(target.key, client.keyPem, "secret", force);
    await writePem(target.cert, client.certPem, "public", force);
  }
  return paths;
}

function newKeyPair(): { privateKey: KeyObject; publicKey: KeyObject } {
  // P-256 rather than Ed25519: every TLS stack and browser accepts ECDSA P-256 certificates.
  return generateKeyPairSync("ec", { namedCurve: "prime256v1" });
}

function parseSpki(publicKey: KeyObject): SubjectPublicKeyInfo {
  return AsnConvert.parse(publicKey.export({ type: "spki", format: "der" }), SubjectPublicKeyInfo);
}

/** RFC 7093 method 1: the leftmost 160 bits of SHA-256 over the subjectPublicKey bits. */
function keyIdentifier(spki: SubjectPublicKeyInfo): Uint8Array {
  return createHash("sha256").update(new Uint8Array(spki.subjectPublicKey)).digest().subarray(0, 20);
}

/**
 * The issuer's own SKI when it has one: OpenSSL rejects a candidate issuer whose SKI differs from the
 * child's AKI, and a CA from elsewhere may have derived its SKI another way.
 */
function subjectKeyIdentifierOf(certificate: Certificate): Uint8Array {
  const ski = certificate.tbsCertificate.extensions?.find((ext) => ext.extnID === id_ce_subjectKeyIdentifier);
  if (ski === undefined) return keyIdentifier(certificate.tbsCertificate.subjectPublicKeyInfo);
  return new Uint8Array(AsnConvert.parse(ski.extnValue, SubjectKeyIdentifier).buffer);
}

function nameOf(commonName: string, organization?: string): Name {
  const rdn = (type: string, value: string): RelativeDistinguishedName =>
    new RelativeDistinguishedName([
      new AttributeTypeAndValue({ type, value: new AttributeValue({ utf8String: value }) }),
    ]);
  const rdns = organization === undefined ? [] : [rdn(OID_ORGANIZATION, organization)];
  return new Name([...rdns, rdn(OID_COMMON_NAME, commonName)]);
}

function extension(extnID: string, critical: boolean, value: unknown): Extension {
  return new Extension({ extnID, critical, extnValue: new OctetString(AsnConvert.serialize(value)) });
}

function validDays(days: number | undefined): number {
  const value = days ?? DEFAULT_DAYS;
  if (!Number.isInteger(value) || value < 1 || value > MAX_DAYS) {
    throw new Error(`certs: days must be an integer from 1 to ${MAX_DAYS}`);
  }
  return value;
}

function signCertificate(input: {
  issuerName: Name;
  issuerKey: KeyObject;
  subject: Name;
  spki: SubjectPublicKeyInfo;
  days: number;
  extensions: Extension[];
}): string {
  const now = Date.now();
  const signatureAlgorithm = new AlgorithmIdentifier({ algorithm: OID_ECDSA_WITH_SHA256 });
  const tbsCertificate = new TBSCertificate({
    version: Version.v3,
    serialNumber: serialNumber(),
    signature: signatureAlgorithm,
    issuer: input.issuerName,
    validity: new Validity({
      notBefore: new Date(now - CLOCK_SKEW_MS),
      notAfter: new Date(now + input.days * DAY_MS),
    }),
    subject: input.subject,
    subjectPublicKeyInfo: input.spki,
    extensions: new Extensions(input.extensions),
  });
  const tbs = new Uint8Array(AsnConvert.serialize(tbsCertificate));
  // dsaEncoding "der" yields the ECDSA-Sig-Value that X.509 expects.
  const signature = sign("sha256", tbs, { key: input.issuerKey, dsaEncoding: "der" });
  const certificate = new Certificate({
    tbsCertificate,
    signatureAlgorithm,
    signatureValue: toArrayBuffer(signature),
  });
  return derToPem(AsnConvert.serialize(certificate), "CERTIFICATE");
}

/** 127 random bits, positive and minimally encoded as RFC 5280 requires (at most 20 octets). */
function serialNumber(): ArrayBuffer {
  const bytes = randomBytes(16);
  bytes[0] = (bytes[0]! & 0x7f) | 0x40;
  return toArrayBuffer(bytes);
}

function pkcs8Pem(privateKey: KeyObject): string {
  return privateKey.export({ type: "pkcs8", format: "pem" }) as string;
}

function toArrayBuffer(bytes: Uint8Array): ArrayBuffer {
  const copy = new ArrayBuffer(bytes.byteLength);
  new Uint8Array(copy).set(bytes);
  return copy;
}

function derToPem(der: ArrayBuffer, label: string): string {
  const base64 = Buffer.from(der).toString("base64");
  const lines = base64.match(/.{1,64}/g) ?? [];
  return `-----BEGIN ${label}-----\n${lines.join("\n")}\n-----END ${label}-----\n`;
}

function pemToDer(pem: string): ArrayBuffer {
  const match = /-----BEGIN CERTIFICATE-----([\s\S]+?)-----END CERTIFICATE-----/.exec(pem);
  if (match === null) throw new Error("certs: issuer certificate is not PEM");
  return toArrayBuffer(Buffer.from(match[1]!.replace(/\s+/g, ""), "base64"));
}

async function exists(path: string): Promise<boolean> {
  try {
    await lstat(path);
    return true;
  } catch (error) {
    if ((error as NodeJS.ErrnoException).code === "ENOENT") return false;
    throw error;
  }
}

async function writePem(path: string, pem: string, kind: "secret" | "public", force: boolean): Promise<void> {
  const mode = kind === "secret" ? 0o600 : 0o644;
  if (!force) {
    // "wx" is O_CREAT|O_EXCL: it also refuses a file (or symlink) that appeared since the check.
    await writeFile(path, pem, { mode, flag: "wx" });
  } else {
    // A mode given to writeFile only applies when the file is created, so never reuse the old inode:
    // write a fresh file beside it and rename it into place (which also replaces a symlink, not its target).
    const temp = `${path}.${randomBytes(6).toString("hex")}.tmp`;
    try {
      await writeFile(temp, pem, { mode, flag: "wx" });
      await rename(temp, path);
    } catch (error) {
      await rm(temp, { force: true });
      throw error;
    }
  }
  // The umask can only remove bits, but a secret must be exactly 0600: re-check, and fix or fail.
  if (kind === "secret" && ((await stat(path)).mode & 0o777) !== mode) {
    await chmod(path, mode);
    if (((await stat(path)).mode & 0o777) !== mode) {
      throw new Error(`certs: cannot set mode ${mode.toString(8)} on ${path}`);
    }
  }
}
