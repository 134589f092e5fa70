// Shape checks for the parts of a principal that come from configuration, stores and tokens.
import type { PrincipalKind } from "../store/types.js";
import { PERMISSIONS, type Permission } from "./principal.js";

const PRINCIPAL_KINDS: ReadonlySet<string> = new Set<PrincipalKind>(["agent", "user", "service"]);

/** True for `agent`, `user` and `service`. Example: `isPrincipalKind("user") === true`. */
export function isPrincipalKind(value: unknown): value is PrincipalKind {
  return typeof value === "string" && PRINCIPAL_KINDS.has(value);
}

/** True for a permission the runtime checks (a key of PERMISSIONS). Example: `isPermission("audit:read")`. */
export function isPermission(value: unknown): value is Permission {
  return typeof value === "string" && Object.hasOwn(PERMISSIONS, value);
}

// Permissions from outside sources (JWT claims) may name scopes the runtime does not know (`openid`);
// they are kept, since hasPermission ignores them, but each must be a short printable token so that
// nothing odd reaches logs and policy inputs.
const PERMISSION_TOKEN = /^[\x21-\x7e]{1,128}$/;
const MAX_PERMISSIONS = 256;

/** Returns a copy of `value` when it is a list of well-formed permission tokens, otherwise undefined. */
export function permissionTokens(value: unknown): string[] | undefined {
  if (!Array.isArray(value) || value.length > MAX_PERMISSIONS) return undefined;
  const out: string[] = [];
  for (const item of value) {
    if (typeof item !== "string" || !PERMISSION_TOKEN.test(item)) return undefined;
    if (!out.includes(item)) out.push(item);
  }
  return out;
}
