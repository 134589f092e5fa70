// `${VAR}` and `${VAR:-default}` in configuration strings, resolved from the environment.
//
// Interpolation runs on parsed YAML string values, never on the raw text, so an environment value
// can never inject YAML structure.

const REFERENCE = /\$\{([A-Za-z_][A-Za-z0-9_]*)(?::-([^}]*))?\}/g;

/** Raised when a referenced variable is unset and has no default. */
export class MissingVariableError extends Error {
  constructor(
    readonly variable: string,
    readonly path: string,
  ) {
    super(`${path}: environment variable ${variable} is not set and has no default`);
    this.name = "MissingVariableError";
  }
}

/**
 * Replaces every `${VAR}` / `${VAR:-default}` in `text`. `$${` escapes a literal `${`.
 *
 * Example: `interpolate("${HOME:-/root}/x", process.env, "data_dir")`.
 */
export function interpolate(text: string, env: NodeJS.ProcessEnv, path: string): string {
  const escaped = text.split("$${");
  return escaped
    .map((part) =>
      part.replace(REFERENCE, (_match, name: string, fallback: string | undefined) => {
        const value = env[name];
        if (value !== undefined && value !== "") return value;
        if (fallback !== undefined) return fallback;
        throw new MissingVariableError(name, path);
      }),
    )
    .join("${");
}

/** Interpolates every string in a parsed YAML document, returning a new value. */
export function interpolateDeep(value: unknown, env: NodeJS.ProcessEnv, path = ""): unknown {
  if (typeof value === "string") return interpolate(value, env, path || "(root)");
  if (Array.isArray(value))
    return value.map((item, index) => interpolateDeep(item, env, `${path}[${index}]`));
  if (typeof value === "object" && value !== null) {
    const out: Record<string, unknown> = {};
    for (const [key, item] of Object.entries(value)) {
      out[key] = interpolateDeep(item, env, path ? `${path}.${key}` : key);
    }
    return out;
  }
  return value;
}
