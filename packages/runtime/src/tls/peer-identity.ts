// mTLS identity: the bare principal id carried by a verified client certificate (CN, or SPIFFE id via a table).
import type { TLSSocket } from "node:tls";
import { AsnConvert } from "@peculiar/asn1-schema";
import { Certificate, SubjectAlternativeName, id_ce_subjectAltName } from "@peculiar/asn1-x509";
import { AGENT_ID_PATTERN } from "@signet/protocol";

const OID_COMMON_NAME = "2.5.4.3";

/** The principal id a client certificate proves, and which part of the certificate said so. */
export interface PeerPrincipal {
  readonly id: string;
  readonly source: "cn" | "spiffe";
}

/**
 * The principal of an mTLS peer, or undefined when it has none we trust.
 *
 * Undefined unless the handshake verified the certificate against the configured client CA
 * (`socket.authorized`), which matters in "optional" mode where unverified peers still connect.
 * With a `spiffeTable` (SPIFFE id → bare id) and a `spiffe://` URI SAN in the certificate, the
 * table alone decides: an unmapped SPIFFE id, or more than one, gives undefined and never falls back
 * to the CN, because in a SPIFFE deployment the CN is not the workload's identity and an unmapped
 * workload must not slip in under whatever CN its certificate happens to carry. Without a table, or
 * for a certificate with no SPIFFE id, the id is the subject's single CN. Either way the id must be a
 * bare agent id; nothing is lower-cased or trimmed, so `Admin` is refused, not turned into `admin`.
 *
 * @example
 * server.on("secureConnection", (socket) => {
 *   const peer = peerPrincipal(socket, { "spiffe://signet.local/billing": "billing-bot" });
 *   // { id: "billing-bot", source: "spiffe" }, { id: "admin", source: "cn" }, or undefined
 * });
 */
export function peerPrincipal(
  socket: TLSSocket,
  spiffeTable?: Readonly<Record<string, string>>,
): PeerPrincipal | undefined {
  // Strictly true: authorizationError is set and authorized false for every unverified peer.
  if (socket.authorized !== true) return undefined;
  const raw = socket.getPeerX509Certificate()?.raw;
  if (raw === undefined) return undefined;

  const fields = identityFields(raw);
  if (fields === undefined) return undefined;

  if (spiffeTable !== undefined) {
    const spiffeIds = fields.uris.filter((uri) => uri.toLowerCase().startsWith("spiffe://"));
    if (spiffeIds.length > 1) return undefined; // an X509-SVID carries exactly one SPIFFE id
    if (spiffeIds.length === 1) {
      const spiffeId = spiffeIds[0]!;
      // hasOwn, so "__proto__" or "constructor" can never map to something inherited.
      const mapped = Object.hasOwn(spiffeTable, spiffeId) ? spiffeTable[spiffeId] : undefined;
      return typeof mapped === "string" && AGENT_ID_PATTERN.test(mapped)
        ? { id: mapped, source: "spiffe" }
        : undefined;
    }
  }

  // Two CNs would leave the choice to whoever reads the certificate first; refuse instead.
  if (fields.commonNames.length !== 1) return undefined;
  const cn = fields.commonNames[0];
  return cn !== undefined && AGENT_ID_PATTERN.test(cn) ? { id: cn, source: "cn" } : undefined;
}

/** Subject CNs (undefined for a string type we do not read) and URI SANs, or undefined if the DER is bad. */
function identityFields(raw: Buffer): { commonNames: (string | undefined)[]; uris: string[] } | undefined {
  try {
    const certificate = AsnConvert.parse(raw, Certificate);
    const commonNames = certificate.tbsCertificate.subject
      .flatMap((rdn) => [...rdn])
      .filter((attribute) => attribute.type === OID_COMMON_NAME)
      .map(({ value }) => value.utf8String ?? value.printableString ?? value.ia5String);
    const san = certificate.tbsCertificate.extensions?.find((ext) => ext.extnID === id_ce_subjectAltName);
    const uris =
      san === undefined
        ? []
        : AsnConvert.parse(san.extnValue, SubjectAlternativeName).flatMap((name) =>
            name.uniformResourceIdentifier === undefined ? [] : [name.uniformResourceIdentifier],
          );
    return { commonNames, uris };
  } catch {
    return undefined;
  }
}
