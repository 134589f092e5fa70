// The index a decision reads: rules by action, then by resource key, then (for large groups) by
// principal key and role, so a decision looks at the few rules that can match, not all of them.
//
// Resource keys: a pattern is filed under its literal text up to the last `:` or `/` before its first
// wildcard (`tool:database/**` under `tool:database`); a resource is looked up under "", each of its
// prefixes ending before a `:` or `/`, and itself. Principal keys work the same way with `-`, `.`, `_`
// as separators (`agent:team7-*` under `team7`). A pattern that matches a value always has its key
// among the value's keys, so the index never hides a rule that would match.
import type { CompiledRule } from "./compile.js";
import { resourcePatternKey } from "./glob.js";
import { targetMatches } from "./target.js";
import type { PolicyRequest } from "./types.js";

/** Rules filed under one key. Large groups are indexed again by principal. */
export interface RuleGroup {
  readonly rules: CompiledRule[];
  byPrincipal?: Map<string, CompiledRule[]>;
  byRole?: Map<string, CompiledRule[]>;
  /** Rules no principal key can find: `*`, `c*`, kinds only. */
  others?: CompiledRule[];
}

/** Rules under one action key: exact resource patterns by the pattern, globs by their key. */
export interface ResourceBuckets {
  readonly exact: Map<string, RuleGroup>;
  readonly prefix: Map<string, RuleGroup>;
}

export interface RuleIndex {
  /** Rules with exact action names, by action. */
  readonly byAction: Map<string, ResourceBuckets>;
  /** Rules with an action glob (`memory.*`, `*`). */
  readonly anyAction: ResourceBuckets;
}

/** Groups smaller than this are scanned; from this size on they are indexed by principal. */
export const GROUP_INDEX_MIN = 12;

function isPrincipalSeparator(code: number): boolean {
  return code === 45 || code === 46 || code === 95; // - . _
}

/** The principal key of an id pattern (the part after `KIND:`), or undefined when it has none. */
export function principalPatternKey(pattern: string): string | undefined {
  const colon = pattern.indexOf(":");
  const id = colon < 0 ? pattern : pattern.slice(colon + 1);
  const star = id.indexOf("*");
  if (star < 0) return id;
  let cut = -1;
  for (let i = 0; i < star; i++) if (isPrincipalSeparator(id.charCodeAt(i))) cut = i;
  return cut <= 0 ? undefined : id.slice(0, cut);
}

/** The keys a principal id is looked up under: its prefixes ending before a separator, and itself. */
export function principalKeys(id: string): string[] {
  const keys: string[] = [];
  for (let i = 1; i < id.length; i++) if (isPrincipalSeparator(id.charCodeAt(i))) keys.push(id.slice(0, i));
  keys.push(id);
  return keys;
}

function file(map: Map<string, RuleGroup>, key: string, rule: CompiledRule): void {
  const group = map.get(key);
  if (group === undefined) map.set(key, { rules: [rule] });
  else if (group.rules[group.rules.length - 1] !== rule) group.rules.push(rule);
}

function fileList(map: Map<string, CompiledRule[]>, key: string, rule: CompiledRule): void {
  const list = map.get(key);
  if (list === undefined) map.set(key, [rule]);
  else if (list[list.length - 1] !== rule) list.push(rule);
}

function indexGroup(group: RuleGroup): void {
  const byPrincipal = new Map<string, CompiledRule[]>();
  const byRole = new Map<string, CompiledRule[]>();
  const others: CompiledRule[] = [];
  for (const rule of group.rules) {
    const keys = rule.principals?.map((matcher) => principalPatternKey(matcher.pattern));
    if (keys !== undefined && keys.every((key) => key !== undefined)) {
      for (const key of keys) fileList(byPrincipal, key, rule);
    } else if (keys === undefined && rule.roles !== undefined) {
      for (const role of rule.roles) fileList(byRole, role, rule);
    } else {
      others.push(rule);
    }
  }
  group.byPrincipal = byPrincipal;
  group.byRole = byRole;
  group.others = others;
}

function emptyBuckets(): ResourceBuckets {
  return { exact: new Map(), prefix: new Map() };
}

/** Files every rule under its action and resource keys, then indexes the large groups by principal. */
export function buildRuleIndex(rules: readonly CompiledRule[], groupIndexMin: number): RuleIndex {
  const index: RuleIndex = { byAction: new Map(), anyAction: emptyBuckets() };
  for (const rule of rules) {
    for (const action of rule.actions) {
      let buckets = index.anyAction;
      if (action.exact) {
        buckets = index.byAction.get(action.pattern) ?? emptyBuckets();
        index.byAction.set(action.pattern, buckets);
      }
      for (const resource of rule.resources) {
        if (resource.exact) file(buckets.exact, resource.pattern, rule);
        else file(buckets.prefix, resourcePatternKey(resource.pattern), rule);
      }
    }
  }
  for (const buckets of [...index.byAction.values(), index.anyAction]) {
    for (const group of [...buckets.exact.values(), ...buckets.prefix.values()]) {
      if (group.rules.length >= groupIndexMin) indexGroup(group);
    }
  }
  return index;
}

/** One lookup's state: the request, the de-duplication stamp, what was found. */
interface Lookup {
  readonly request: PolicyRequest;
  readonly stamp: number;
  readonly found: CompiledRule[];
  principalKeys: string[] | undefined;
}

function take(rules: readonly CompiledRule[], lookup: Lookup): void {
  const { stamp, request, found } = lookup;
  for (let i = 0; i < rules.length; i++) {
    const rule = rules[i]!;
    if (rule.stamp === stamp) continue;
    rule.stamp = stamp;
    if (targetMatches(rule, request)) found.push(rule);
  }
}

function takeGroup(group: RuleGroup | undefined, lookup: Lookup): void {
  if (group === undefined) return;
  const { byPrincipal, byRole, others } = group;
  if (byPrincipal === undefined) return take(group.rules, lookup);
  if (byPrincipal.size > 0) {
    const keys = (lookup.principalKeys ??= principalKeys(lookup.request.principal.id));
    for (let i = 0; i < keys.length; i++) {
      const rules = byPrincipal.get(keys[i]!);
      if (rules !== undefined) take(rules, lookup);
    }
  }
  const roles = lookup.request.principal.roles;
  if (byRole!.size > 0 && roles !== undefined) {
    for (let i = 0; i < roles.length; i++) {
      const rules = byRole!.get(roles[i]!);
      if (rules !== undefined) take(rules, lookup);
    }
  }
  if (others!.length > 0) take(others!, lookup);
}

function collect(buckets: ResourceBuckets, lookup: Lookup): void {
  const { resource } = lookup.request;
  takeGroup(buckets.exact.get(resource), lookup);
  const { prefix } = buckets;
  if (prefix.size === 0) return;
  takeGroup(prefix.get(""), lookup);
  for (let i = 0; i < resource.length; i++) {
    const code = resource.charCodeAt(i);
    if (code === 58 || code === 47) takeGroup(prefix.get(resource.slice(0, i)), lookup); // : and /
  }
  takeGroup(prefix.get(resource), lookup);
}

function byOrder(a: CompiledRule, b: CompiledRule): number {
  return a.order - b.order;
}

/**
 * The rules whose target matches the request, in evaluation order. `stamp` must be new for every
 * lookup: it marks the rules already looked at, which several keys may offer.
 */
export function collectMatching(index: RuleIndex, request: PolicyRequest, stamp: number): CompiledRule[] {
  const lookup: Lookup = { request, stamp, found: [], principalKeys: undefined };
  const byAction = index.byAction.get(request.action);
  if (byAction !== undefined) collect(byAction, lookup);
  collect(index.anyAction, lookup);
  if (lookup.found.length > 1) lookup.found.sort(byOrder);
  return lookup.found;
}
