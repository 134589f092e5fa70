// roles.yaml: role definitions read with line positions and validated at start; every problem names the
// file, the line and the key at fault.
import { readFileSync } from "node:fs";
import { type Document, LineCounter, isMap, isNode, isScalar, parseDocument } from "yaml";
import { ConfigError } from "../config/load-config.js";
import { isPermissionGrant } from "./principal.js";
import {
  DEFAULT_ROLES,
  type RoleCatalogue,
  type RoleDefinition,
  isRoleName,
  roleCatalogue,
} from "./roles.js";

const MAX_FILE_BYTES = 256 * 1024;
const MAX_ROLES = 256;
const MAX_GRANTS = 64;
const MAX_DESCRIPTION = 256;
const TOP_LEVEL_KEYS: ReadonlySet<string> = new Set(["version", "include_defaults", "roles"]);
const ROLE_KEYS: ReadonlySet<string> = new Set(["description", "permissions"]);

/** One thing wrong with a roles file. */
export interface RolesFileProblem {
  readonly file: string;
  readonly line?: number;
  readonly column?: number;
  /** The key at fault, dotted: `roles.auditor.permissions[1]`. */
  readonly key?: string;
  readonly message: string;
}

/** `roles.yaml:7:9: roles.auditor.permissions[1]: unknown permission "audit:raed"`. */
export function formatRolesProblem(problem: RolesFileProblem): string {
  const where =
    problem.line === undefined
      ? problem.file
      : `${problem.file}:${problem.line}${problem.column === undefined ? "" : `:${problem.column}`}`;
  return `${where}: ${problem.key === undefined ? "" : `${problem.key}: `}${problem.message}`;
}

/** What a roles file holds once read: its roles, and whether the built-in roles stay beside them. */
export interface RolesFileResult {
  readonly roles: readonly RoleDefinition[];
  readonly includeDefaults: boolean;
  readonly problems: readonly RolesFileProblem[];
}

type Path = readonly (string | number)[];

function formatKey(path: Path): string {
  return path
    .map((part, index) => (typeof part === "number" ? `[${part}]` : index === 0 ? part : `.${part}`))
    .join("");
}

/**
 * The line and column where the node at `path` starts, or where its nearest existing parent does. With
 * `key`, the position of the mapping key itself (an unknown key, a bad role name) rather than its value.
 */
function locate(
  document: Document,
  lines: LineCounter,
  path: Path,
  key = false,
): { line: number; column: number } {
  if (key && path.length > 0) {
    const parent: unknown = path.length === 1 ? document.contents : document.getIn(path.slice(0, -1), true);
    if (isMap(parent)) {
      const pair = parent.items.find((item) => isScalar(item.key) && item.key.value === path.at(-1));
      const range = isNode(pair?.key) ? pair.key.range : undefined;
      if (range !== undefined && range !== null) {
        const position = lines.linePos(range[0]);
        return { line: Math.max(1, position.line), column: Math.max(1, position.col) };
      }
    }
  }
  for (let depth = path.length; depth >= 0; depth--) {
    const node: unknown = depth === 0 ? document.contents : document.getIn(path.slice(0, depth), true);
    if (isNode(node) && node.range !== undefined && node.range !== null) {
      const position = lines.linePos(node.range[0]);
      return { line: Math.max(1, position.line), column: Math.max(1, position.col) };
    }
  }
  return { line: 1, column: 1 };
}

function isMapping(value: unknown): value is Record<string, unknown> {
  return typeof value === "object" && value !== null && !Array.isArray(value);
}

/**
 * Parses the text of a roles file. Never throws: every problem is returned, each with its line.
 *
 * ```yaml
 * version: 1
 * include_defaults: true        # keep viewer, developer and operator unless redefined here
 * roles:
 *   auditor:
 *     description: Reads and exports the audit log
 *     permissions: [audit:read, audit:export]
 * ```
 *
 * Example: `parseRolesFile(readFileSync(path, "utf8"), path)`.
 */
export function parseRolesFile(text: string, file: string): RolesFileResult {
  const failed = (problems: RolesFileProblem[]): RolesFileResult => ({
    roles: [],
    includeDefaults: true,
    problems,
  });
  if (Buffer.byteLength(text, "utf8") > MAX_FILE_BYTES) {
    return failed([{ file, message: "the file is larger than 256 KiB" }]);
  }
  const lines = new LineCounter();
  // Plain YAML only: no custom tags, no merge keys; duplicate keys are an error, not a silent override.
  const document = parseDocument(text.replace(/^\uFEFF/, ""), {
    lineCounter: lines,
    schema: "core",
    merge: false,
    uniqueKeys: true,
    prettyErrors: true,
  });
  if (document.errors.length > 0) {
    return failed(
      document.errors.map((error) => {
        const position = error.linePos?.[0];
        return {
          file,
          ...(position === undefined
            ? {}
            : { line: Math.max(1, position.line), column: Math.max(1, position.col) }),
          message: `not valid YAML: ${error.message.split("\n")[0]!.replace(/ at line \d+, column \d+:?$/, "")}`,
        };
      }),
    );
  }
  let raw: unknown;
  try {
    raw = document.toJS({ maxAliasCount: 16 });
  } catch (error) {
    return failed([{ file, message: `not usable YAML: ${(error as Error).message.split("\n")[0]}` }]);
  }

  const problems: RolesFileProblem[] = [];
  const problem = (path: Path, message: string, at: "key" | "value" = "value"): void => {
    problems.push({
      file,
      ...locate(document, lines, path, at === "key"),
      ...(path.length === 0 ? {} : { key: formatKey(path) }),
      message,
    });
  };

  const roles: RoleDefinition[] = [];
  let includeDefaults = true;
  if (raw === null || raw === undefined) return { roles, includeDefaults, problems };
  if (!isMapping(raw)) {
    problem([], "the top level must be a mapping with a `roles` key");
    return { roles, includeDefaults, problems };
  }
  for (const key of Object.keys(raw)) {
    if (!TOP_LEVEL_KEYS.has(key)) {
      problem([key], "unknown key (expected version, include_defaults, roles)", "key");
    }
  }
  if (raw.version !== undefined && raw.version !== 1) problem(["version"], "must be 1");
  if (raw.include_defaults !== undefined) {
    if (typeof raw.include_defaults === "boolean") includeDefaults = raw.include_defaults;
    else problem(["include_defaults"], "must be true or false");
  }
  const section = raw.roles;
  if (section !== undefined && section !== null) {
    if (!isMapping(section)) {
      problem(["roles"], "must be a mapping of role name to { description, permissions }");
    } else {
      const names = Object.keys(section);
      if (names.length > MAX_ROLES) problem(["roles"], `at most ${MAX_ROLES} roles`);
      for (const name of names.slice(0, MAX_ROLES)) {
        const role = readRole(name, section[name], file, problem);
        if (role !== undefined) roles.push(role);
      }
    }
  }
  problems.sort((a, b) => (a.line ?? 0) - (b.line ?? 0) || (a.column ?? 0) - (b.column ?? 0));
  return { roles, includeDefaults, problems };
}

function readRole(
  name: string,
  value: unknown,
  file: string,
  problem: (path: Path, message: string, at?: "key" | "value") => void,
): RoleDefinition | undefined {
  const path = ["roles", name];
  let ok = true;
  if (!isRoleName(name)) {
    problem(path, "not a role name: a lower-case letter, then up to 63 of a-z, 0-9, _ and -", "key");
    ok = false;
  }
  if (!isMapping(value)) {
    problem(path, "must be a mapping with permissions (a list) and an optional description");
    return undefined;
  }
  for (const key of Object.keys(value)) {
    if (!ROLE_KEYS.has(key)) {
      problem([...path, key], "unknown key (expected description, permissions)", "key");
      ok = false;
    }
  }
  const { description = "", permissions } = value;
  if (typeof description !== "string" || description.length > MAX_DESCRIPTION) {
    problem([...path, "description"], `must be text of at most ${MAX_DESCRIPTION} characters`);
    ok = false;
  }
  if (!Array.isArray(permissions)) {
    problem([...path, "permissions"], "required: a list of permissions such as [agent:read, keys:*]");
    return undefined;
  }
  if (permissions.length > MAX_GRANTS) {
    problem([...path, "permissions"], `at most ${MAX_GRANTS} permissions`);
    ok = false;
  }
  const grants: RoleDefinition["permissions"][number][] = [];
  permissions.forEach((grant: unknown, index) => {
    if (isPermissionGrant(grant)) {
      if (!grants.includes(grant)) grants.push(grant);
      return;
    }
    ok = false;
    problem(
      [...path, "permissions", index],
      typeof grant === "string"
        ? `unknown permission "${grant.slice(0, 64)}" (see docs/security.md for the list; wildcards are * and FAMILY:*)`
        : "must be a permission name",
    );
  });
  if (!ok) return undefined;
  return { name, description: description as string, permissions: grants, source: file };
}

/**
 * Reads the roles file at `path` and returns the roles in effect: the built-in roles (unless the file
 * says `include_defaults: false`) with the file's roles over them. A missing file means the built-in
 * roles alone, unless `required` (the path was configured explicitly, so a missing file is a mistake).
 * Throws a ConfigError listing every problem, each with file, line and key.
 *
 * Example: `const roles = loadRoleCatalogue(join(dataDir, "roles.yaml"), { required: false });`
 */
export function loadRoleCatalogue(path: string, options: { readonly required: boolean }): RoleCatalogue {
  let text: string;
  try {
    text = readFileSync(path, "utf8");
  } catch (error) {
    const code = (error as NodeJS.ErrnoException).code ?? "error";
    if (code === "ENOENT" && !options.required) return roleCatalogue(DEFAULT_ROLES);
    throw new ConfigError([
      formatRolesProblem({
        file: path,
        key: "rbac.roles_file",
        message: code === "ENOENT" ? "no such file" : `cannot read (${code})`,
      }),
    ]);
  }
  const result = parseRolesFile(text, path);
  if (result.problems.length > 0) throw new ConfigError(result.problems.map(formatRolesProblem));
  return roleCatalogue([...(result.includeDefaults ? DEFAULT_ROLES : []), ...result.roles]);
}
