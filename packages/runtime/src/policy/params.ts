// Parameter constraints and forbidden parameters, compiled once into checks that name what failed.
import { RE2JS } from "@bufbuild/re2";
import type { ParamConstraint } from "./types.js";

/** Returns undefined when the parameters pass, or why they do not (naming the parameter, never its value). */
export type ParamCheck = (params: Readonly<Record<string, unknown>>) => string | undefined;

// Own keys only: an inherited key such as `constructor` is never a parameter.
const has = Object.hasOwn;

/** Why a pattern is refused (RE2 syntax: no look-around or back-references), or undefined. */
export function patternProblem(pattern: string): string | undefined {
  try {
    RE2JS.compile(pattern);
    return undefined;
  } catch (error) {
    return `is not an RE2 regular expression (${(error as Error).message.split("\n")[0]})`;
  }
}

/**
 * Compiles one parameter's constraint. Patterns run on RE2, in time linear in the input, because the
 * input is the caller's.
 *
 * Example: `compileParamConstraint("amount", { max: 100 })({ amount: 500 })` → `"params.amount is above 100"`.
 */
export function compileParamConstraint(name: string, constraint: ParamConstraint): ParamCheck {
  const label = `params.${name}`;
  const values = constraint.values === undefined ? undefined : new Set<unknown>(constraint.values);
  const { min, max, maxLength, required } = constraint;
  const regex = constraint.pattern === undefined ? undefined : RE2JS.compile(constraint.pattern);
  return (params) => {
    if (!has(params, name)) return required === true ? `${label} is required` : undefined;
    const value = params[name];
    if (values !== undefined && !values.has(value)) return `${label} is not one of the allowed values`;
    if (min !== undefined || max !== undefined) {
      if (typeof value !== "number" || !Number.isFinite(value)) return `${label} must be a number`;
      if (min !== undefined && value < min) return `${label} is below ${min}`;
      if (max !== undefined && value > max) return `${label} is above ${max}`;
    }
    // Length before pattern: the cheap bound also bounds the regular expression's input.
    if (maxLength !== undefined) {
      if (typeof value !== "string" && !Array.isArray(value)) return `${label} must be a string or a list`;
      if (value.length > maxLength) return `${label} is longer than ${maxLength}`;
    }
    if (regex !== undefined) {
      if (typeof value !== "string") return `${label} must be a string`;
      if (!regex.test(value)) return `${label} does not match the allowed pattern`;
    }
    return undefined;
  };
}

/** Compiles `denied_params`: the first forbidden parameter present, or undefined. */
export function compileDeniedParams(names: readonly string[]): ParamCheck {
  return (params) => {
    for (const name of names) if (has(params, name)) return `params.${name} is not allowed`;
    return undefined;
  };
}
