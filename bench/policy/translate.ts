// The generated rules for the two baselines: Cedar policies (text) and AGT rules (condition strings),
// each as close to the Signet rule as the other language allows. What cannot be said is listed here:
// - neither has layers: both get the rules flat, deny overriding allow (a scoped layer's rule carries
//   its scope as one more condition);
// - Cedar has no string length: a pattern rule keeps its prefix test and drops `max_length`;
// - AGT has no globs, parentheses or list membership: globs, intent and IP prefixes become facts
//   precomputed into the request context (team, namespace, intent_ok, ip_prefix), and a rule with an
//   "either" becomes several `or`-joined conjunctions.
import { type GenParam, type GenRequest, type GenRule, toolName } from "./generate.js";

// ----------------------------------------------------------------------------------------------
// Cedar
// ----------------------------------------------------------------------------------------------

function cedarString(value: string): string {
  return JSON.stringify(value);
}

/** Cedar conditions under which the parameter check holds (`ok`) or fails (`bad`). */
function cedarParam(param: GenParam): { ok: string; bad: string } {
  switch (param.kind) {
    case "range":
      return {
        ok: `(!(context.params has limit) || (context.params.limit >= ${param.min} && context.params.limit <= ${param.max}))`,
        bad: `(context.params has limit && (context.params.limit < ${param.min} || context.params.limit > ${param.max}))`,
      };
    case "values": {
      const set = `[${param.values.map(cedarString).join(", ")}]`;
      return {
        ok: `(!(context.params has mode) || ${set}.contains(context.params.mode))`,
        bad: `(context.params has mode && !${set}.contains(context.params.mode))`,
      };
    }
    case "pattern":
      return {
        ok: `(!(context.params has query) || context.params.query like ${cedarString(`${param.prefix} *`)})`,
        bad: `(context.params has query && !(context.params.query like ${cedarString(`${param.prefix} *`)}))`,
      };
  }
}

const CEDAR_CONDITIONS = {
  ip: 'context.sourceIp like "10.*"',
  hours: "context.hour >= 6 && context.hour < 22",
  session: "context has session",
  limit: "(!(context.params has limit) || context.params.limit <= 500)",
} as const;

/** One Cedar policy per generated rule, `@id` set to the rule id. */
export function toCedar(rules: readonly GenRule[]): string {
  return rules
    .map((rule) => {
      const p = rule.principal;
      const r = rule.resource;
      const scope = [
        p.kind === "id" ? `principal == Agent::${cedarString(p.id)}` : "principal",
        rule.action === "invoke"
          ? 'action == Action::"invoke"'
          : rule.action === "memory.*"
            ? 'action in [Action::"memory.read", Action::"memory.write"]'
            : "action",
        r.kind === "tool"
          ? `resource == Resource::${cedarString(`tool:${toolName(r.ns, r.op)}`)}`
          : "resource",
      ];
      const when: string[] = [];
      if (p.kind === "team") when.push(`context.principal like ${cedarString(`team${p.team}-*`)}`);
      if (p.kind === "role") when.push(`context.roles.contains(${cedarString(p.role)})`);
      if (r.kind === "namespace") when.push(`context.resource like ${cedarString(`tool:svc${r.ns}/*`)}`);
      if (r.kind === "prefix")
        when.push(`context.resource like ${cedarString(`tool:svc${r.ns}/${r.prefix}*`)}`);
      if (r.kind === "agents") when.push('context.resource like "agent:*"');
      if (rule.layer === "org") when.push(`context.org == ${cedarString(rule.scope!)}`);
      if (rule.layer === "team") when.push(`context.team == ${cedarString(rule.scope!)}`);
      if (rule.condition !== undefined) when.push(CEDAR_CONDITIONS[rule.condition]);
      const ok: string[] = [];
      const bad: string[] = [];
      if (rule.param !== undefined) {
        const check = cedarParam(rule.param);
        ok.push(check.ok);
        bad.push(check.bad);
      }
      if (rule.deniedRaw) {
        ok.push("!(context.params has raw)");
        bad.push("context.params has raw");
      }
      if (rule.intent) {
        ok.push("context.intent.contains(context.needed)");
        bad.push("!context.intent.contains(context.needed)");
      }
      // An allow needs every check; a deny fires when one fails (or always, when it has none).
      if (rule.effect === "allow") when.push(...ok);
      else if (bad.length > 0) when.push(`(${bad.join(" || ")})`);
      const body = when.length === 0 ? "" : ` when { ${when.join(" && ")} }`;
      return `@id(${cedarString(rule.id)})\n${rule.effect === "allow" ? "permit" : "forbid"}(${scope.join(", ")})${body};`;
    })
    .join("\n");
}

/** The Cedar authorization call for a request (without the policy set id). */
export function toCedarRequest(generated: GenRequest): {
  principal: { type: string; id: string };
  action: { type: string; id: string };
  resource: { type: string; id: string };
  context: Record<string, never>;
} {
  const { request, hour } = generated;
  const params = request.params as Record<string, string | number>;
  const context = {
    principal: request.principal.id,
    roles: [...(request.principal.roles ?? [])],
    org: request.principal.org!,
    team: request.principal.team!,
    resource: request.resource,
    params,
    intent: [...(request.intent?.permissions ?? [])],
    needed: `${request.action}:${request.resource}`,
    sourceIp: request.context!.sourceIp!,
    hour,
    ...(request.context?.session === undefined ? {} : { session: request.context.session }),
  };
  return {
    principal: { type: "Agent", id: request.principal.id },
    action: { type: "Action", id: request.action },
    resource: { type: "Resource", id: request.resource },
    context: context as unknown as Record<string, never>,
  };
}

// ----------------------------------------------------------------------------------------------
// AGT (@microsoft/agent-governance-sdk PolicyEngine): `and`/`or` over comparisons, no parentheses.
// ----------------------------------------------------------------------------------------------

/** AGT conjunctions under which the parameter check holds, or fails. */
function agtParam(param: GenParam): { ok: string[]; bad: string[] } {
  switch (param.kind) {
    case "range":
      return {
        ok: [`params.limit >= ${param.min}`, `params.limit <= ${param.max}`],
        bad: [`params.limit < ${param.min}`, `params.limit > ${param.max}`],
      };
    case "values": {
      const list = `[${param.values.map((v) => `'${v}'`).join(", ")}]`;
      return { ok: [`params.mode in ${list}`], bad: [`params.mode not in ${list}`] };
    }
    case "pattern":
      return { ok: [`query_prefix == '${param.prefix}'`], bad: [`query_prefix != '${param.prefix}'`] };
  }
}

const AGT_CONDITIONS = {
  ip: "ip_prefix == '10'",
  hours: "hour >= 6 and hour < 22",
  session: "session",
  limit: "params.limit <= 500",
} as const;

/** One AGT rule per generated rule. */
export function toAgtRules(
  rules: readonly GenRule[],
): { name: string; condition: string; ruleAction: "allow" | "deny" }[] {
  return rules.map((rule) => {
    const p = rule.principal;
    const r = rule.resource;
    const target: string[] = [];
    target.push(
      p.kind === "id"
        ? `principal == '${p.id}'`
        : p.kind === "team"
          ? `team == 'team${p.team}'`
          : `role == '${p.role}'`,
    );
    if (rule.action === "invoke") target.push("action == 'invoke'");
    if (rule.action === "memory.*") target.push("action_family == 'memory'");
    if (r.kind === "tool") target.push(`resource == 'tool:${toolName(r.ns, r.op)}'`);
    if (r.kind === "namespace") target.push(`namespace == 'svc${r.ns}'`);
    if (r.kind === "prefix") target.push(`resource == 'tool:svc${r.ns}/${r.prefix}'`);
    if (r.kind === "agents") target.push("resource_kind == 'agent'");
    if (rule.layer === "org") target.push(`org == '${rule.scope!}'`);
    if (rule.layer === "team") target.push(`team_attr == '${rule.scope!}'`);
    if (rule.condition !== undefined) target.push(AGT_CONDITIONS[rule.condition]);
    const ok: string[] = [];
    const bad: string[] = [];
    if (rule.param !== undefined) {
      const check = agtParam(rule.param);
      ok.push(...check.ok);
      bad.push(...check.bad);
    }
    if (rule.deniedRaw) {
      ok.push("has_raw == false");
      bad.push("has_raw == true");
    }
    if (rule.intent) {
      ok.push("intent_ok == true");
      bad.push("intent_ok == false");
    }
    let condition: string;
    if (rule.effect === "allow") condition = [...target, ...ok].join(" and ");
    else if (bad.length === 0) condition = target.join(" and ");
    else condition = bad.map((failure) => [...target, failure].join(" and ")).join(" or ");
    return { name: rule.id, condition, ruleAction: rule.effect };
  });
}

/** The AGT evaluation context for a request: the request's facts, with globs precomputed. */
export function toAgtContext(generated: GenRequest): Record<string, unknown> {
  const { request, hour } = generated;
  const params = request.params as Record<string, unknown>;
  const colon = request.resource.indexOf(":");
  const name = request.resource.slice(colon + 1);
  return {
    principal: request.principal.id,
    team: `team${generated.team}`,
    team_attr: request.principal.team,
    role: request.principal.roles?.[0],
    org: request.principal.org,
    action: request.action,
    action_family: request.action.split(".")[0],
    resource: request.resource,
    resource_kind: request.resource.slice(0, colon),
    namespace: name.split("/")[0],
    params,
    query_prefix: typeof params.query === "string" ? params.query.split(" ")[0] : undefined,
    has_raw: Object.hasOwn(params, "raw"),
    intent_ok: (request.intent?.permissions ?? []).includes(`${request.action}:${request.resource}`),
    ip_prefix: request.context?.sourceIp?.split(".")[0],
    hour,
    session: request.context?.session !== undefined,
  };
}
