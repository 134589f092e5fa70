// Agent definitions: Markdown with YAML frontmatter, validated before anything is deployed.
import { AGENT_ID_PATTERN, SignetError, TOOL_NAME_PATTERN } from "@signet/protocol";
import { parse as parseYaml } from "yaml";

/** A validated agent definition. The policy issue extends the schema; unknown keys are kept. */
export interface AgentDefinition {
  readonly name: string;
  readonly version?: string;
  /** Tool names this agent may serve over /v1/connect. */
  readonly serves: readonly string[];
  /** The Markdown body: the agent's description. */
  readonly description: string;
  /** The whole frontmatter, as written. */
  readonly frontmatter: Readonly<Record<string, unknown>>;
}

const FRONTMATTER = /^---\r?\n([\s\S]*?)\r?\n---[ \t]*(?:\r?\n|$)/;
const MAX_DEFINITION_BYTES = 256 * 1024;

function invalid(reason: string): never {
  throw new SignetError("INVALID_REQUEST", `Invalid agent definition: ${reason}`, {
    reason: "agent_definition",
  });
}

/**
 * Parses and validates an agent definition file.
 *
 * Example:
 * ```ts
 * parseAgentDefinition("---\nname: billing-bot\nserves: [invoices/create]\n---\nCreates invoices.");
 * ```
 */
export function parseAgentDefinition(text: string): AgentDefinition {
  if (Buffer.byteLength(text, "utf8") > MAX_DEFINITION_BYTES) invalid("larger than 256 KiB");
  const match = FRONTMATTER.exec(text.replace(/^\uFEFF/, ""));
  if (match === null) invalid("missing YAML frontmatter between --- lines");
  let frontmatter: unknown;
  try {
    // Plain YAML only: no custom tags, no merge keys, a bounded alias count against billion-laughs input.
    frontmatter = parseYaml(match[1]!, { schema: "core", merge: false, maxAliasCount: 16 });
  } catch (error) {
    return invalid(`frontmatter is not valid YAML (${(error as Error).message.split("\n")[0]})`);
  }
  if (typeof frontmatter !== "object" || frontmatter === null || Array.isArray(frontmatter)) {
    invalid("frontmatter must be a mapping");
  }
  const fields = frontmatter as Record<string, unknown>;
  const name = fields.name;
  if (typeof name !== "string" || !AGENT_ID_PATTERN.test(name)) {
    invalid("name must be a bare agent id (lower case letters, digits, . _ -; at most 128)");
  }
  const version = fields.version;
  if (version !== undefined && (typeof version !== "string" || version.length === 0 || version.length > 64)) {
    invalid('version must be a string such as "1.0.0"');
  }
  const serves = fields.serves ?? [];
  if (!Array.isArray(serves) || serves.length > 256) invalid("serves must be a list of tool names");
  for (const tool of serves) {
    if (
      typeof tool !== "string" ||
      !TOOL_NAME_PATTERN.test(tool) ||
      tool.endsWith("/") ||
      tool.includes("//")
    ) {
      invalid(`serves: "${String(tool).slice(0, 140)}" is not a tool name`);
    }
  }
  if (new Set(serves).size !== serves.length) invalid("serves lists a tool twice");
  return {
    name,
    ...(version === undefined ? {} : { version }),
    serves: serves as string[],
    description: text.slice(match[0].length).trim(),
    frontmatter: fields,
  };
}
