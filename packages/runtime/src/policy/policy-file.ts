// Policy files (`policies/*.yaml`): parsed with line positions, validated by the rule schema, and
// compiled together. Every problem names the file, the line and the rule.
import { readFileSync, readdirSync, statSync } from "node:fs";
import { join } from "node:path";
import { type Document, LineCounter, isNode, parseDocument } from "yaml";
import { compilePolicy } from "./compile.js";
import type { CompiledPolicy } from "./engine.js";
import { PolicyLoadError, type PolicyProblem } from "./policy-error.js";
import { type FieldPath, formatPath, readPolicyDocument } from "./rule-schema.js";
import type { PolicySource, RuleDefinition, SourceLocation } from "./types.js";

const MAX_FILE_BYTES = 1024 * 1024;

/** The result of reading one file: its rules (those without problems) and its problems. */
export interface PolicyFileResult {
  readonly source: PolicySource;
  readonly problems: readonly PolicyProblem[];
}

/** The line and column where the node at `path` starts, or where its nearest existing parent does. */
function locate(document: Document, lines: LineCounter, path: FieldPath): { line: number; column: number } {
  for (let depth = path.length; depth >= 0; depth--) {
    const node: unknown = depth === 0 ? document.contents : document.getIn(path.slice(0, depth), true);
    if (isNode(node) && node.range !== undefined && node.range !== null) {
      const position = lines.linePos(node.range[0]);
      return { line: Math.max(1, position.line), column: Math.max(1, position.col) };
    }
  }
  return { line: 1, column: 1 };
}

/**
 * Parses one policy file's text. Never throws: a file with problems yields the rules that are valid
 * and a problem for each one that is not.
 *
 * Example: `parsePolicyFile(readFileSync("policies/dev.yaml", "utf8"), "policies/dev.yaml")`.
 */
export function parsePolicyFile(text: string, file: string): PolicyFileResult {
  const empty: PolicySource = { name: file, layer: "global", rules: [] };
  if (Buffer.byteLength(text, "utf8") > MAX_FILE_BYTES) {
    return { source: empty, problems: [{ file, message: "the file is larger than 1 MiB" }] };
  }
  const lines = new LineCounter();
  // Plain YAML only: no custom tags, no merge keys, few aliases (no billion-laughs input).
  const document = parseDocument(text.replace(/^\uFEFF/, ""), {
    lineCounter: lines,
    schema: "core",
    merge: false,
    uniqueKeys: true,
    prettyErrors: true,
  });
  if (document.errors.length > 0) {
    return {
      source: empty,
      problems: document.errors.map((error) => {
        const position = error.linePos?.[0];
        return {
          file,
          ...(position === undefined
            ? {}
            : { line: Math.max(1, position.line), column: Math.max(1, position.col) }),
          message: `not valid YAML: ${error.message.split("\n")[0]!.replace(/ at line \d+, column \d+:?$/, "")}`,
        };
      }),
    };
  }
  let raw: unknown;
  try {
    raw = document.toJS({ maxAliasCount: 16 });
  } catch (error) {
    return {
      source: empty,
      problems: [{ file, message: `not usable YAML: ${(error as Error).message.split("\n")[0]}` }],
    };
  }
  const read = readPolicyDocument(raw);
  const problems: PolicyProblem[] = read.problems.map((problem) => {
    // Inside a rule, name the field relative to the rule: the rule itself is named beside it.
    const inRule = problem.path[0] === "rules" && typeof problem.path[1] === "number";
    const field = formatPath(inRule ? problem.path.slice(2) : problem.path) || (inRule ? "rule" : "document");
    return {
      file,
      ...locate(document, lines, problem.path),
      ...(problem.rule === undefined ? {} : { rule: problem.rule }),
      message: `${field}: ${problem.message}`,
    };
  });

  const rules: RuleDefinition[] = [];
  const locations: Record<string, SourceLocation> = {};
  const firstLine = new Map<string, number>();
  read.rules.forEach((rule, index) => {
    if (rule === undefined) return;
    const at = locate(document, lines, ["rules", index]);
    const earlier = firstLine.get(rule.id);
    if (earlier !== undefined) {
      problems.push({
        file,
        ...locate(document, lines, ["rules", index, "id"]),
        rule: rule.id,
        message: `id: already used by the rule at line ${earlier}`,
      });
      return;
    }
    firstLine.set(rule.id, at.line);
    rules.push(rule);
    locations[rule.id] = { file, line: at.line, column: at.column };
  });
  problems.sort((a, b) => (a.line ?? 0) - (b.line ?? 0) || (a.column ?? 0) - (b.column ?? 0));
  return {
    source: {
      name: file,
      layer: read.layer,
      ...(read.scope === undefined ? {} : { scope: read.scope }),
      rules,
      locations,
    },
    problems,
  };
}

function readPolicyFile(path: string): PolicyFileResult {
  let text: string;
  try {
    if (statSync(path).size > MAX_FILE_BYTES) {
      return {
        source: { name: path, layer: "global", rules: [] },
        problems: [{ file: path, message: "the file is larger than 1 MiB" }],
      };
    }
    text = readFileSync(path, "utf8");
  } catch (error) {
    const code = (error as NodeJS.ErrnoException).code ?? "error";
    return {
      source: { name: path, layer: "global", rules: [] },
      problems: [{ file: path, message: `cannot read (${code})` }],
    };
  }
  return parsePolicyFile(text, path);
}

/** The policy files of a directory: `*.yaml` and `*.yml`, not hidden, in name order. */
export function listPolicyFiles(dir: string): string[] {
  return readdirSync(dir, { withFileTypes: true })
    .filter((entry) => entry.isFile() && !entry.name.startsWith(".") && /\.ya?ml$/.test(entry.name))
    .map((entry) => entry.name)
    .sort()
    .map((name) => join(dir, name));
}

/**
 * Reads and compiles policy files, with any extra sources (rules compiled from agent definitions).
 * Throws a PolicyLoadError listing every problem in every file.
 */
export function loadPolicyFiles(
  paths: readonly string[],
  extraSources: readonly PolicySource[] = [],
): CompiledPolicy {
  const results = paths.map(readPolicyFile);
  const problems = results.flatMap((result) => result.problems);
  if (problems.length > 0) throw new PolicyLoadError(problems);
  return compilePolicy([...results.map((result) => result.source), ...extraSources]);
}

/**
 * Loads every policy file of a directory (name order is evaluation order within a layer). An empty
 * directory is a policy with no rules, which denies everything.
 *
 * Example: `const policy = loadPolicyDirectory(".signet/policies")`.
 */
export function loadPolicyDirectory(dir: string, extraSources: readonly PolicySource[] = []): CompiledPolicy {
  let files: string[];
  try {
    files = listPolicyFiles(dir);
  } catch (error) {
    const code = (error as NodeJS.ErrnoException).code ?? "error";
    throw new PolicyLoadError([
      { file: dir, message: code === "ENOENT" ? "no such directory" : `cannot list (${code})` },
    ]);
  }
  return loadPolicyFiles(files, extraSources);
}

/** What `signet policy check` reports. */
export interface PolicyCheckResult {
  readonly ok: boolean;
  readonly files: number;
  /** Rules read without problems of their own. */
  readonly rules: number;
  readonly problems: readonly PolicyProblem[];
}

/**
 * Validates policy files together (so duplicate ids across files are found) without throwing.
 *
 * Example: `const { ok, problems } = checkPolicyFiles(["policies/dev.yaml"]); problems.map(formatProblem)`.
 */
export function checkPolicyFiles(paths: readonly string[]): PolicyCheckResult {
  const results = paths.map(readPolicyFile);
  const problems: PolicyProblem[] = results.flatMap((result) => result.problems);
  const rules = results.reduce((count, result) => count + result.source.rules.length, 0);
  try {
    compilePolicy(results.map((result) => result.source));
  } catch (error) {
    if (!(error instanceof PolicyLoadError)) throw error;
    problems.push(...error.problems);
  }
  return { ok: problems.length === 0, files: paths.length, rules, problems };
}
