// Counter keys: one escaping rule so that no two different (rule, sender, target) lists share a key.

/**
 * Escapes one key part so that `:` can separate parts: `%` becomes `%25` and `:` becomes `%3A`, so the
 * mapping is one-to-one and `a:b` + `c` never meets `a` + `b:c`.
 *
 * Example: `keyPart("team:alice")` → `"team%3Aalice"`.
 */
export function keyPart(value: string): string {
  if (value.indexOf(":") === -1 && value.indexOf("%") === -1) return value;
  return value.replace(/%/g, "%25").replace(/:/g, "%3A");
}

/** The key of a sender's own counters (messages, session starts). */
export function senderKey(sender: string): string {
  return keyPart(sender);
}

/**
 * The key of a rule's limit for one sender and one target: a rule limit counts per rule, sender and
 * tool or capability, so `tool:a` and `tool:b` under one `tool:*` rule are counted apart.
 *
 * Example: `ruleKey("reads", "alice", "tool:db/query")` → `"reads:alice:tool%3Adb/query"`.
 */
export function ruleKey(rule: string, sender: string, target: string): string {
  return `${keyPart(rule)}:${keyPart(sender)}:${keyPart(target)}`;
}

/** The key of a client address's unauthenticated-request counter. */
export function clientKey(ip: string): string {
  return keyPart(ip);
}
