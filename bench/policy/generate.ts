// The policy bench's rule generator: deterministic (seeded), with a stated mix, so that Signet, Cedar
// and the AGT engine are measured on the same rules and the same requests.
//
// The mix, for N rules:
// - principals: 65% one agent id, 20% a team glob (`agent:team7-*`), 15% a role (`roles: [role-3]`);
// - actions: 85% `invoke`, 10% `memory.*`, 5% `*`;
// - resources: 60% one tool (`tool:svc12/op3`), 25% a namespace (`tool:svc12/**`), 10% a name
//   prefix (`tool:svc12/op1*`), 5% every agent (`agent:*`); N/10 namespaces of 10 tools each;
// - 30% of rules constrain a parameter: a numeric range (15%), allowed values (10%), or a pattern with a
//   maximum length (5%); 5% forbid a parameter (`denied_params: [raw]`); 5% require declared intent;
// - 10% carry a CEL condition (source IP prefix, office hours, a session, a parameter bound);
// - layers: 70% global, 15% org (scoped to one of 5 orgs), 10% team (scoped to one of 20 teams),
//   5% app (unscoped);
// - 10% are deny rules; 20% of allow rules carry a rate limit.
// Requests: 60% are built to match a random rule's target (and pass its checks four times in five),
// 40% are a random agent calling a random tool (mostly refused by default).
import type {
  PolicyLayer,
  PolicyRequest,
  PolicySource,
  RuleDefinition,
} from "../../packages/runtime/src/policy/types.js";

/** A seeded generator (mulberry32): the same seed gives the same rules on every machine. */
export function random(seed: number): () => number {
  let state = seed >>> 0;
  return () => {
    state = (state + 0x6d2b79f5) >>> 0;
    let t = state;
    t = Math.imul(t ^ (t >>> 15), t | 1);
    t ^= t + Math.imul(t ^ (t >>> 7), t | 61);
    return ((t ^ (t >>> 14)) >>> 0) / 4294967296;
  };
}

export type GenPrincipal =
  | { readonly kind: "id"; readonly id: string }
  | { readonly kind: "team"; readonly team: number }
  | { readonly kind: "role"; readonly role: string };

export type GenResource =
  | { readonly kind: "tool"; readonly ns: number; readonly op: number }
  | { readonly kind: "namespace"; readonly ns: number }
  | { readonly kind: "prefix"; readonly ns: number; readonly prefix: string }
  | { readonly kind: "agents" };

export type GenParam =
  | { readonly kind: "range"; readonly min: number; readonly max: number }
  | { readonly kind: "values"; readonly values: readonly string[] }
  | { readonly kind: "pattern"; readonly prefix: string; readonly maxLength: number };

export type GenCondition = "ip" | "hours" | "session" | "limit";

/** One generated rule, in a neutral form every engine's translation reads. */
export interface GenRule {
  readonly id: string;
  readonly effect: "allow" | "deny";
  readonly layer: PolicyLayer;
  readonly scope?: string;
  readonly principal: GenPrincipal;
  readonly action: "invoke" | "memory.*" | "*";
  readonly resource: GenResource;
  readonly param?: GenParam;
  readonly deniedRaw: boolean;
  readonly intent: boolean;
  readonly condition?: GenCondition;
  readonly rateLimit?: string;
}

/** What a request carries besides the policy request: facts the translations need precomputed. */
export interface GenRequest {
  readonly request: PolicyRequest;
  readonly team: number;
  readonly hour: number;
}

export interface GeneratedPolicy {
  readonly rules: readonly GenRule[];
  readonly sources: readonly PolicySource[];
  readonly requests: readonly GenRequest[];
}

export const ORGS = 5;
export const TEAMS = 20;
export const CONDITIONS: Readonly<Record<GenCondition, string>> = {
  ip: 'context.source_ip.startsWith("10.")',
  hours: "context.time.getHours() >= 6 && context.time.getHours() < 22",
  session: "has(context.session)",
  limit: "!has(params.limit) || params.limit <= 500",
};

export function agentId(index: number): string {
  return `team${index % TEAMS}-a${index}`;
}

export function toolName(ns: number, op: number): string {
  return `svc${ns}/op${op}`;
}

function pick<T>(next: () => number, items: readonly T[]): T {
  return items[Math.floor(next() * items.length)]!;
}

/** Generates `count` rules and 1,000 requests from `seed`. */
export function generatePolicy(count: number, seed = 1): GeneratedPolicy {
  const next = random(seed * 7919 + count);
  const agents = Math.max(20, Math.floor(count / 4));
  const namespaces = Math.max(2, Math.floor(count / 10));
  const rules: GenRule[] = [];
  for (let i = 0; i < count; i++) {
    const roll = () => next();
    const p = roll();
    const principal: GenPrincipal =
      p < 0.65
        ? { kind: "id", id: agentId(Math.floor(roll() * agents)) }
        : p < 0.85
          ? { kind: "team", team: Math.floor(roll() * TEAMS) }
          : { kind: "role", role: `role-${Math.floor(roll() * 10)}` };
    const a = roll();
    const action = a < 0.85 ? "invoke" : a < 0.95 ? "memory.*" : "*";
    const r = roll();
    const ns = Math.floor(roll() * namespaces);
    const resource: GenResource =
      r < 0.6
        ? { kind: "tool", ns, op: Math.floor(roll() * 10) }
        : r < 0.85
          ? { kind: "namespace", ns }
          : r < 0.95
            ? { kind: "prefix", ns, prefix: `op${Math.floor(roll() * 10)}` }
            : { kind: "agents" };
    const q = roll();
    const param: GenParam | undefined =
      q < 0.15
        ? { kind: "range", min: 1, max: pick(next, [10, 100, 1000]) }
        : q < 0.25
          ? { kind: "values", values: pick(next, [["read"], ["read", "explain"], ["write", "append"]]) }
          : q < 0.3
            ? { kind: "pattern", prefix: pick(next, ["SELECT", "select", "GET"]), maxLength: 200 }
            : undefined;
    const c = roll();
    const condition: GenCondition | undefined =
      c < 0.1 ? pick(next, ["ip", "hours", "session", "limit"] as const) : undefined;
    const effect = roll() < 0.1 ? "deny" : "allow";
    const l = roll();
    const layer: PolicyLayer = l < 0.7 ? "global" : l < 0.85 ? "org" : l < 0.95 ? "team" : "app";
    const scope =
      layer === "org"
        ? `org${Math.floor(roll() * ORGS)}`
        : layer === "team"
          ? `team${Math.floor(roll() * TEAMS)}`
          : undefined;
    rules.push({
      id: `r${i}`,
      effect,
      layer,
      ...(scope === undefined ? {} : { scope }),
      principal,
      action,
      resource,
      ...(param === undefined ? {} : { param }),
      deniedRaw: roll() < 0.05,
      intent: roll() < 0.05,
      ...(condition === undefined ? {} : { condition }),
      ...(effect === "allow" && roll() < 0.2
        ? { rateLimit: pick(next, ["100/minute", "10/second", "5000/hour"]) }
        : {}),
    });
  }

  // One policy source per layer and scope, as policy files would be.
  const grouped = new Map<string, { layer: PolicyLayer; scope?: string; rules: RuleDefinition[] }>();
  for (const rule of rules) {
    const key = `${rule.layer}/${rule.scope ?? ""}`;
    let group = grouped.get(key);
    if (group === undefined) {
      group = { layer: rule.layer, ...(rule.scope === undefined ? {} : { scope: rule.scope }), rules: [] };
      grouped.set(key, group);
    }
    group.rules.push(toSignetRule(rule));
  }
  const sources: PolicySource[] = [...grouped.entries()].map(([key, group]) => ({
    name: `${key}.yaml`,
    ...group,
  }));

  const requests: GenRequest[] = [];
  for (let i = 0; i < 1000; i++) {
    const hour = Math.floor(next() * 24);
    const targeted = next() < 0.6;
    const rule = pick(next, rules);
    let index = Math.floor(next() * agents);
    let resource = `tool:${toolName(Math.floor(next() * namespaces), Math.floor(next() * 10))}`;
    let action = "invoke";
    const roles = [`role-${Math.floor(next() * 10)}`];
    if (targeted) {
      if (rule.principal.kind === "id")
        index = Number(rule.principal.id.slice(rule.principal.id.indexOf("-a") + 2));
      if (rule.principal.kind === "team") index = rule.principal.team + TEAMS * Math.floor(next() * 3);
      if (rule.principal.kind === "role") roles[0] = rule.principal.role;
      if (rule.action === "memory.*") action = "memory.read";
      const res = rule.resource;
      resource =
        res.kind === "tool"
          ? `tool:${toolName(res.ns, res.op)}`
          : res.kind === "namespace"
            ? `tool:${toolName(res.ns, Math.floor(next() * 10))}`
            : res.kind === "prefix"
              ? `tool:svc${res.ns}/${res.prefix}`
              : `agent:${agentId(Math.floor(next() * agents))}`;
    }
    const passes = next() < 0.8;
    const params: Record<string, unknown> = {
      limit: passes ? 1 + Math.floor(next() * 9) : 5000,
      mode: passes ? "read" : "drop",
      query: passes ? "SELECT id FROM t" : "DROP TABLE t",
    };
    if (!passes && next() < 0.5) params.raw = "1";
    const id = agentId(index);
    requests.push({
      request: {
        principal: { id, kind: "agent", roles, org: `org${index % ORGS}`, team: `team${index % TEAMS}` },
        action,
        resource,
        params,
        intent: { purpose: "bench", permissions: passes ? [`${action}:${resource}`] : [] },
        context: {
          now: Date.UTC(2026, 0, 5, hour, 15),
          ...(next() < 0.8 ? { sourceIp: "10.1.2.3" } : { sourceIp: "192.0.2.9" }),
          ...(next() < 0.5 ? { session: "s-1" } : {}),
        },
      },
      team: index % TEAMS,
      hour,
    });
  }
  return { rules, sources, requests };
}

/** The Signet rule for a generated rule. */
export function toSignetRule(rule: GenRule): RuleDefinition {
  const p = rule.principal;
  const r = rule.resource;
  const param = rule.param;
  return {
    id: rule.id,
    effect: rule.effect,
    ...(p.kind === "id"
      ? { principals: [p.id] }
      : p.kind === "team"
        ? { principals: [`agent:team${p.team}-*`] }
        : { roles: [p.role] }),
    actions: [rule.action],
    resources: [
      r.kind === "tool"
        ? `tool:${toolName(r.ns, r.op)}`
        : r.kind === "namespace"
          ? `tool:svc${r.ns}/**`
          : r.kind === "prefix"
            ? `tool:svc${r.ns}/${r.prefix}*`
            : "agent:*",
    ],
    ...(param === undefined
      ? {}
      : {
          params:
            param.kind === "range"
              ? { limit: { min: param.min, max: param.max } }
              : param.kind === "values"
                ? { mode: { values: [...param.values] } }
                : { query: { pattern: `^${param.prefix} `, maxLength: param.maxLength } },
        }),
    ...(rule.deniedRaw ? { deniedParams: ["raw"] } : {}),
    ...(rule.intent ? { intent: {} } : {}),
    ...(rule.condition === undefined ? {} : { when: CONDITIONS[rule.condition] }),
    ...(rule.rateLimit === undefined ? {} : { rateLimit: rule.rateLimit }),
    ...(rule.effect === "deny" ? { reason: `generated deny rule ${rule.id}` } : {}),
  };
}
