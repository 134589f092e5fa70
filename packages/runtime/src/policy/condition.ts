// CEL conditions (`when:`), parsed and planned once at load, evaluated against one request's bindings.
import {
  CelScalar,
  type CelInput,
  celEnv,
  celMethod,
  isCelError,
  mapType,
  objectType,
  parse,
  plan,
} from "@bufbuild/cel";
import { type Timestamp, TimestampSchema, timestampFromMs } from "@bufbuild/protobuf/wkt";
import { RE2JS } from "@bufbuild/re2";
import type { PolicyRequest } from "./types.js";

/** The variables a condition may name. */
export const CONDITION_VARIABLES = [
  "principal",
  "action",
  "resource",
  "params",
  "intent",
  "context",
] as const;

type ConditionVariable = (typeof CONDITION_VARIABLES)[number];

/** One request's values for the condition variables. */
export type ConditionBindings = Record<ConditionVariable, CelInput>;

/** The outcome of a condition: true, false, or an error (a missing key, a type mismatch, ...). */
export type ConditionResult = boolean | { readonly error: string };

/** A planned condition. */
export type Condition = (bindings: ConditionBindings) => ConditionResult;

// Type names may appear as identifiers (`type(x) == int`).
const TYPE_NAMES = new Set([
  "int",
  "uint",
  "double",
  "bool",
  "string",
  "bytes",
  "list",
  "map",
  "null_type",
  "type",
]);

// `matches()` compiles its pattern on every call by default; patterns in policies are few and fixed, so
// a small cache keeps them compiled. RE2 keeps matching linear in the caller's input.
const patternCache = new Map<string, RE2JS>();
const cachedRe2 = {
  compile(pattern: string): { test(text: string): boolean } {
    let compiled = patternCache.get(pattern);
    if (compiled === undefined) {
      compiled = RE2JS.compile(pattern);
      if (patternCache.size >= 512) patternCache.clear();
      patternCache.set(pattern, compiled);
    }
    return compiled;
  },
};

// The standard timestamp methods without a time zone rebuild a local Date from the UTC parts, which
// costs several microseconds (time-zone lookups) on every call. Without a zone CEL means UTC, so these
// read the UTC parts directly; the overloads that take a zone are left to the standard library.
const TIMESTAMP = objectType(TimestampSchema);
const DAY_MS = 86_400_000;
const utcMethod = (name: string, part: (date: Date) => number) =>
  celMethod(name, TIMESTAMP, [], CelScalar.INT, function (this: { message: Timestamp }) {
    const { seconds, nanos } = this.message;
    return BigInt(part(new Date(Number(seconds) * 1000 + Math.floor(nanos / 1_000_000))));
  });
const utcTimestampMethods = [
  utcMethod("getFullYear", (date) => date.getUTCFullYear()),
  utcMethod("getMonth", (date) => date.getUTCMonth()),
  utcMethod("getDate", (date) => date.getUTCDate()),
  utcMethod("getDayOfMonth", (date) => date.getUTCDate() - 1),
  utcMethod("getDayOfWeek", (date) => date.getUTCDay()),
  utcMethod("getDayOfYear", (date) =>
    Math.floor((date.getTime() - Date.UTC(date.getUTCFullYear(), 0, 1)) / DAY_MS),
  ),
  utcMethod("getHours", (date) => date.getUTCHours()),
  utcMethod("getMinutes", (date) => date.getUTCMinutes()),
  utcMethod("getSeconds", (date) => date.getUTCSeconds()),
  utcMethod("getMilliseconds", (date) => date.getUTCMilliseconds()),
];

const dynMap = mapType(CelScalar.STRING, CelScalar.DYN);
const env = celEnv({
  funcs: utcTimestampMethods,
  variables: {
    principal: dynMap,
    action: CelScalar.STRING,
    resource: dynMap,
    params: dynMap,
    intent: dynMap,
    context: dynMap,
  },
  re2: cachedRe2,
});

interface AstNode {
  readonly exprKind: { readonly case: string | undefined; readonly value?: unknown };
}

/** Every identifier the expression reads that is neither a variable nor bound by a macro. */
function unknownIdentifiers(root: AstNode): string[] {
  const unknown = new Set<string>();
  const bound = new Set<string>();
  const visit = (node: AstNode | undefined): void => {
    if (node === undefined) return;
    const { exprKind } = node;
    const value = exprKind.value as Record<string, unknown> | undefined;
    switch (exprKind.case) {
      case "identExpr": {
        const name = (value as { name: string }).name;
        if (!(CONDITION_VARIABLES as readonly string[]).includes(name) && !TYPE_NAMES.has(name)) {
          unknown.add(name);
        }
        return;
      }
      case "selectExpr":
        return visit(value!.operand as AstNode);
      case "callExpr":
        visit(value!.target as AstNode | undefined);
        for (const arg of value!.args as AstNode[]) visit(arg);
        return;
      case "listExpr":
        for (const element of value!.elements as AstNode[]) visit(element);
        return;
      case "structExpr":
        for (const entry of value!.entries as { mapKey?: AstNode; value?: AstNode }[]) {
          visit(entry.mapKey);
          visit(entry.value);
        }
        return;
      case "comprehensionExpr": {
        for (const name of [value!.iterVar, value!.iterVar2, value!.accuVar]) {
          if (typeof name === "string" && name !== "") bound.add(name);
        }
        for (const key of ["iterRange", "accuInit", "loopCondition", "loopStep", "result"]) {
          visit(value![key] as AstNode | undefined);
        }
        return;
      }
      default:
        return;
    }
  };
  visit(root);
  return [...unknown].filter((name) => !bound.has(name));
}

/** True when a condition may read `context.time` (a conservative, textual test). */
export function conditionReadsTime(expression: string): boolean {
  return /\btime\b/.test(expression);
}

/**
 * Parses and plans a CEL condition, or throws an Error saying why it cannot run. Identifiers other
 * than the condition variables are refused here, at load, rather than failing on every request.
 *
 * Example: `compileCondition('context.source_ip.startsWith("10.")')`.
 */
export function compileCondition(expression: string): Condition {
  const cached = planned.get(expression);
  if (cached !== undefined) return cached;
  const condition = planCondition(expression);
  // Plans are pure functions of their bindings, so identical expressions share one.
  if (planned.size >= 16_384) planned.clear();
  planned.set(expression, condition);
  return condition;
}

const planned = new Map<string, Condition>();

function planCondition(expression: string): Condition {
  const parsed = parse(expression);
  const unknown = unknownIdentifiers(parsed.expr);
  if (unknown.length > 0) {
    throw new Error(
      `unknown name${unknown.length > 1 ? "s" : ""} ${unknown.join(", ")} (a condition may read ${CONDITION_VARIABLES.join(", ")})`,
    );
  }
  // The bindings are built untyped (plain objects, read as CEL maps); the plan checks them as it reads.
  const run = plan(env, parsed) as unknown as (bindings: ConditionBindings) => unknown;
  return (bindings) => {
    let result: unknown;
    try {
      result = run(bindings);
    } catch (error) {
      return { error: (error as Error).message.split("\n")[0] ?? "error" };
    }
    if (typeof result === "boolean") return result;
    if (isCelError(result)) return { error: result.message.split("\n")[0] ?? "error" };
    return { error: "the condition did not yield true or false" };
  };
}

/**
 * The values a condition sees for one request. Absent facts are absent keys, so `has(context.session)`
 * tells whether there is one. Numbers are CEL doubles; write `100.0` or compare (`<`, `==`) freely.
 * `withTime: false` leaves out `context.time`, for policies none of whose conditions read it.
 */
export function conditionBindings(request: PolicyRequest, now: number, withTime = true): ConditionBindings {
  const { principal, context, intent, resource } = request;
  const who: Record<string, unknown> = {
    id: principal.id,
    kind: principal.kind ?? "",
    roles: principal.roles ?? [],
    attributes: principal.attributes ?? {},
  };
  if (principal.org !== undefined) who.org = principal.org;
  if (principal.team !== undefined) who.team = principal.team;
  if (principal.app !== undefined) who.app = principal.app;
  if (principal.user !== undefined) who.user = principal.user;
  const declared: Record<string, unknown> = { permissions: intent?.permissions ?? [] };
  if (intent?.purpose !== undefined) declared.purpose = intent.purpose;
  // Building a Timestamp is the costly part, and most policies never read the time.
  const facts: Record<string, unknown> = withTime ? { time: timestampFromMs(now) } : {};
  if (context?.session !== undefined) facts.session = context.session;
  if (context?.sourceIp !== undefined) facts.source_ip = context.sourceIp;
  const colon = resource.indexOf(":");
  return {
    principal: who as CelInput,
    action: request.action,
    resource: {
      id: resource,
      kind: colon < 0 ? "" : resource.slice(0, colon),
      name: colon < 0 ? resource : resource.slice(colon + 1),
    },
    params: (request.params ?? {}) as CelInput,
    intent: declared as CelInput,
    context: facts as CelInput,
  };
}
