// Client certificates: turns the peer id the TLS layer verified into a Principal.
import { isAgentId } from "@signet/protocol";
import type { PrincipalKind } from "../store/types.js";
import { type AuthFailure, authFailure } from "./auth-failure.js";
import type { AuthMethod, Principal } from "./principal.js";

/**
 * The identity of a client certificate the TLS layer has verified against the client CA: its CN, or
 * the id its SPIFFE URI SAN maps to. Never build one from an unverified certificate.
 */
export interface CertificatePeer {
  readonly id: string;
  readonly source: "cn" | "spiffe";
}

/** What a configured certificate principal may do (`auth.mtls.principals` in signet.yaml). */
export interface CertificatePrincipalEntry {
  readonly kind: PrincipalKind;
  readonly permissions: readonly string[];
}

/** Finds the configured entry for a certificate principal id. */
export type CertificatePrincipalLookup = (id: string) => CertificatePrincipalEntry | undefined;

/**
 * What a verified certificate that is not in the table may do: act as an agent and nothing else. The
 * envelope it sends must still carry a signature from the agent registry, so this grants no more than
 * the right to try.
 */
export const DEFAULT_CERTIFICATE_PERMISSIONS: readonly string[] = ["envelope:send"];

/**
 * A lookup over a configured table. Only the table's own entries count, so an id such as `constructor`
 * or `__proto__` (both valid bare ids) never picks up something from Object.prototype.
 *
 * Example: `certificatePrincipals({ admin: { kind: "user", permissions: ["*"] } })("admin")`
 */
export function certificatePrincipals(
  table: Readonly<Record<string, CertificatePrincipalEntry>>,
): CertificatePrincipalLookup {
  const entries = new Map(Object.entries(table));
  return (id) => entries.get(id);
}

/** Builds the principal for an id asserted by the transport (a certificate, or the dev header). */
export function transportPrincipal(
  id: string,
  lookup: CertificatePrincipalLookup,
  method: Extract<AuthMethod, "mtls" | "dev">,
): Principal {
  const entry = lookup(id);
  return entry === undefined
    ? { id, kind: "agent", permissions: [...DEFAULT_CERTIFICATE_PERMISSIONS], method }
    : { id, kind: entry.kind, permissions: [...entry.permissions], method };
}

/**
 * Turns a verified client certificate's identity into a Principal with method `mtls`. Ids from the
 * table get its kind and permissions; others are agents with DEFAULT_CERTIFICATE_PERMISSIONS.
 *
 * Example: `principalFromPeer({ id: "billing-bot", source: "cn" }, certificatePrincipals({}))`
 * → `{ id: "billing-bot", kind: "agent", permissions: ["envelope:send"], method: "mtls" }`.
 */
export function principalFromPeer(
  peer: CertificatePeer | undefined,
  lookup: CertificatePrincipalLookup,
): Principal | AuthFailure {
  if (peer === undefined) return authFailure("no_credentials", "mtls");
  // The TLS layer already checks this; checking again keeps a bad mapping from becoming an identity.
  if (!isAgentId(peer.id)) return authFailure("malformed", "mtls", { peerSource: peer.source });
  return transportPrincipal(peer.id, lookup, "mtls");
}
