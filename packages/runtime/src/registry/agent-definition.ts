// Agent definitions: Markdown with YAML frontmatter, validated (errors name the field and line)
// before anything is deployed, and compiled into the same policy rules as policy files.
import { AGENT_ID_PATTERN, CAPABILITY_NAME_PATTERN, SignetError, TOOL_NAME_PATTERN } from "@signet/protocol";
import { LineCounter, type Node as YamlNode, isMap, isSeq, parseDocument } from "yaml";
import { parseRateLimit } from "../policy/rate-limit.js";

/** Who may request one capability. */
export interface CapabilityAccess {
  /** Principal patterns (`customer-interface`, `admin-*`, `*`). */
  readonly allowed_requesters: readonly string[];
}

/** The agent's memory settings (enforced by the memory work; validated and kept here). */
export interface MemorySettings {
  readonly enabled: boolean;
  readonly scope?: "agent" | "workspace" | "session";
  readonly max_entities?: number;
  readonly max_relations?: number;
}

/** A validated agent definition. */
export interface AgentDefinition {
  readonly name: string;
  readonly version?: string;
  /** Capabilities this agent provides (`capability:NAME` targets). */
  readonly capabilities: readonly string[];
  /** Tools this agent may call. */
  readonly tools: readonly string[];
  /** Tools this agent may serve over /v1/connect. */
  readonly serves: readonly string[];
  /** Who may request each capability. */
  readonly capabilityAccess: Readonly<Record<string, CapabilityAccess>>;
  /** `{ capability: "50/minute" }`. */
  readonly rateLimits: Readonly<Record<string, string>>;
  readonly memory?: MemorySettings;
  readonly security: { readonly require_auth: boolean };
  /** The Markdown body: the agent's description. */
  readonly description: string;
  /** The whole frontmatter, as written. */
  readonly frontmatter: Readonly<Record<string, unknown>>;
}

const FRONTMATTER = /^(---\r?\n)([\s\S]*?)\r?\n---[ \t]*(?:\r?\n|$)/;
const MAX_DEFINITION_BYTES = 256 * 1024;
const KNOWN_KEYS = new Set([
  "name",
  "version",
  "description",
  "capabilities",
  "tools",
  "serves",
  "capability_access",
  "rate_limits",
  "memory",
  "security",
]);
const REQUESTER_PATTERN = /^(?:(?:agent|user|service):)?[a-z0-9*][a-z0-9._*-]{0,127}$/;

/** A definition problem: the field, its line in the file, and what is wrong. */
export class AgentDefinitionError extends SignetError {
  constructor(
    readonly field: string,
    readonly line: number | undefined,
    problem: string,
  ) {
    super(
      "INVALID_REQUEST",
      `Invalid agent definition: ${field}${line === undefined ? "" : ` (line ${line})`}: ${problem}`,
      {
        reason: "agent_definition",
      },
    );
  }
}

/** Reads the frontmatter with positions, so every error can point at its line. */
class Frontmatter {
  constructor(
    private readonly root: YamlNode,
    private readonly lines: LineCounter,
    private readonly firstLine: number,
  ) {}

  private node(path: readonly (string | number)[]): YamlNode | undefined {
    let current: unknown = this.root;
    for (const key of path) {
      if (isMap(current) || isSeq(current)) current = current.get(key, true);
      else return undefined;
    }
    return current as YamlNode | undefined;
  }

  lineOf(path: readonly (string | number)[]): number | undefined {
    for (let depth = path.length; depth >= 0; depth--) {
      const range = this.node(path.slice(0, depth))?.range;
      if (range !== undefined && range !== null) return this.lines.linePos(range[0]).line + this.firstLine;
    }
    return undefined;
  }

  fail(path: readonly (string | number)[], problem: string): never {
    const field = path
      .map((part) => (typeof part === "number" ? `[${part}]` : part))
      .join(".")
      .replace(/\.\[/g, "[");
    throw new AgentDefinitionError(field || "frontmatter", this.lineOf(path), problem);
  }
}

function isObject(value: unknown): value is Record<string, unknown> {
  return typeof value === "object" && value !== null && !Array.isArray(value);
}

function nameList(fm: Frontmatter, value: unknown, field: string, pattern: RegExp, what: string): string[] {
  if (value === undefined) return [];
  if (!Array.isArray(value) || value.length > 256) fm.fail([field], `must be a list of ${what}`);
  const seen = new Set<string>();
  value.forEach((item, index) => {
    if (typeof item !== "string" || !pattern.test(item) || item.endsWith("/") || item.includes("//")) {
      fm.fail([field, index], `"${String(item).slice(0, 140)}" is not a ${what.replace(/s$/, "")}`);
    }
    if (seen.has(item)) fm.fail([field, index], `"${item}" is listed twice`);
    seen.add(item);
  });
  return value as string[];
}

/**
 * Parses and validates an agent definition file. Errors are `AgentDefinitionError`s (code
 * `INVALID_REQUEST`) naming the field and its line.
 *
 * Example:
 * ```ts
 * parseAgentDefinition("---\nname: billing-bot\nserves: [invoices/create]\n---\nCreates invoices.");
 * ```
 */
export function parseAgentDefinition(
  text: string,
  options: { readonly toolExists?: (tool: string) => boolean } = {},
): AgentDefinition {
  if (Buffer.byteLength(text, "utf8") > MAX_DEFINITION_BYTES) {
    throw new AgentDefinitionError("file", undefined, "larger than 256 KiB");
  }
  const source = text.replace(/^\uFEFF/, "");
  const match = FRONTMATTER.exec(source);
  if (match === null)
    throw new AgentDefinitionError("frontmatter", 1, "missing YAML frontmatter between --- lines");
  const lines = new LineCounter();
  // Plain YAML only: core schema, no merge keys, a bounded alias count against billion-laughs input.
  const document = parseDocument(match[2]!, {
    schema: "core",
    merge: false,
    lineCounter: lines,
    prettyErrors: false,
  });
  const firstLine = 1; // the frontmatter starts on line 2 of the file; LineCounter lines are 1-based
  if (document.errors.length > 0) {
    const error = document.errors[0]!;
    const line = error.linePos?.[0]?.line;
    throw new AgentDefinitionError(
      "frontmatter",
      line === undefined ? undefined : line + firstLine,
      `not valid YAML (${error.message.split("\n")[0]})`,
    );
  }
  let frontmatter: unknown;
  try {
    frontmatter = document.toJS({ maxAliasCount: 16 });
  } catch (error) {
    throw new AgentDefinitionError(
      "frontmatter",
      undefined,
      `not valid YAML (${(error as Error).message.split("\n")[0]})`,
    );
  }
  const fm: Frontmatter = new Frontmatter(document.contents as YamlNode, lines, firstLine);
  if (!isObject(frontmatter)) fm.fail([], "must be a mapping");
  for (const key of Object.keys(frontmatter)) if (!KNOWN_KEYS.has(key)) fm.fail([key], "unknown key");

  const name = frontmatter.name;
  if (typeof name !== "string" || !AGENT_ID_PATTERN.test(name)) {
    fm.fail(["name"], "must be a bare agent id (lower case letters, digits, . _ -; at most 128)");
  }
  const version = frontmatter.version;
  if (version !== undefined && (typeof version !== "string" || version.length === 0 || version.length > 64)) {
    fm.fail(["version"], 'must be a string such as "1.0.0"');
  }
  const capabilities = nameList(
    fm,
    frontmatter.capabilities,
    "capabilities",
    CAPABILITY_NAME_PATTERN,
    "capability names",
  );
  const tools = nameList(fm, frontmatter.tools, "tools", TOOL_NAME_PATTERN, "tool names");
  const serves = nameList(fm, frontmatter.serves, "serves", TOOL_NAME_PATTERN, "tool names");
  if (options.toolExists !== undefined) {
    tools.forEach((tool, index) => {
      if (!serves.includes(tool) && options.toolExists?.(tool) !== true) {
        fm.fail(["tools", index], `no registered agent serves "${tool}"`);
      }
    });
  }

  const capabilityAccess: Record<string, CapabilityAccess> = {};
  const access = frontmatter.capability_access;
  if (access !== undefined) {
    if (!isObject(access))
      fm.fail(["capability_access"], "must map capability names to { allowed_requesters }");
    for (const [capability, entry] of Object.entries(access)) {
      if (!capabilities.includes(capability)) {
        fm.fail(["capability_access", capability], `"${capability}" is not in capabilities`);
      }
      if (!isObject(entry) || !Array.isArray(entry.allowed_requesters)) {
        fm.fail(["capability_access", capability], "must be { allowed_requesters: [...] }");
      }
      for (const key of Object.keys(entry)) {
        if (key !== "allowed_requesters") fm.fail(["capability_access", capability, key], "unknown key");
      }
      const requesters = entry.allowed_requesters as unknown[];
      requesters.forEach((requester, index) => {
        if (typeof requester !== "string" || !REQUESTER_PATTERN.test(requester)) {
          fm.fail(
            ["capability_access", capability, "allowed_requesters", index],
            "is not a principal pattern",
          );
        }
      });
      capabilityAccess[capability] = { allowed_requesters: requesters as string[] };
    }
  }

  const rateLimits: Record<string, string> = {};
  const limits = frontmatter.rate_limits;
  if (limits !== undefined) {
    if (!isObject(limits))
      fm.fail(["rate_limits"], 'must map capability names to limits such as "50/minute"');
    for (const [capability, limit] of Object.entries(limits)) {
      if (!capabilities.includes(capability))
        fm.fail(["rate_limits", capability], `"${capability}" is not in capabilities`);
      if (typeof limit !== "string")
        fm.fail(["rate_limits", capability], 'must be a limit such as "50/minute"');
      let parsed;
      try {
        parsed = parseRateLimit(limit);
      } catch {
        parsed = undefined;
      }
      if (parsed === undefined)
        fm.fail(["rate_limits", capability], `"${limit}" is not a limit such as "50/minute"`);
      rateLimits[capability] = limit;
    }
  }

  let memory: MemorySettings | undefined;
  if (frontmatter.memory !== undefined) {
    const value = frontmatter.memory;
    if (!isObject(value)) fm.fail(["memory"], "must be a mapping");
    for (const key of Object.keys(value)) {
      if (!["enabled", "scope", "max_entities", "max_relations"].includes(key))
        fm.fail(["memory", key], "unknown key");
    }
    if (typeof value.enabled !== "boolean") fm.fail(["memory", "enabled"], "must be true or false");
    if (value.scope !== undefined && !["agent", "workspace", "session"].includes(value.scope as string)) {
      fm.fail(["memory", "scope"], "must be agent, workspace or session");
    }
    for (const key of ["max_entities", "max_relations"] as const) {
      const limit = value[key];
      if (limit !== undefined && (typeof limit !== "number" || !Number.isSafeInteger(limit) || limit < 0)) {
        fm.fail(["memory", key], "must be a non-negative integer");
      }
    }
    memory = value as unknown as MemorySettings;
  }

  let requireAuth = true;
  if (frontmatter.security !== undefined) {
    const value = frontmatter.security;
    if (!isObject(value)) fm.fail(["security"], "must be a mapping");
    for (const key of Object.keys(value))
      if (key !== "require_auth") fm.fail(["security", key], "unknown key");
    if (value.require_auth !== undefined && value.require_auth !== true) {
      // Every call is authenticated in Signet; a definition cannot opt out.
      fm.fail(["security", "require_auth"], "can only be true: every call to Signet is authenticated");
    }
    requireAuth = true;
  }

  const body = source.slice(match[0].length).trim();
  const description =
    typeof frontmatter.description === "string" && body === "" ? frontmatter.description : body;
  return {
    name,
    ...(version === undefined ? {} : { version: version }),
    capabilities,
    tools,
    serves,
    capabilityAccess,
    rateLimits,
    ...(memory === undefined ? {} : { memory }),
    security: { require_auth: requireAuth },
    description,
    frontmatter,
  };
}
