// Drives mode machines the way the session service does, but with every input deep-frozen and every
// result checked to be plain JSON, so each test also proves that `apply` neither mutates nor leaks.
import { type JsonValue, type SignetError, isSignetError } from "@signet/protocol";
import fc from "fast-check";
import { expect } from "vitest";
import type {
  JsonObject,
  ModeContext,
  ModeMachine,
  ModeMessage,
  ModeStep,
} from "../../../src/sessions/types.js";

/**
 * JSON values as a parsed envelope body holds them: fast-check's jsonValue includes -0, which JSON text
 * never carries (it is written 0), and which the state checks here rightly call not JSON.
 */
export function wireJson(constraints: fc.JsonSharedConstraints = {}): fc.Arbitrary<fc.JsonValue> {
  return fc.jsonValue(constraints).map((value) => JSON.parse(JSON.stringify(value)) as fc.JsonValue);
}

export const AT = 1_767_225_600_000;

/** Freezes `value` and everything it holds; a write to it then throws (ES modules are strict). */
export function deepFreeze<T>(value: T): T {
  if (typeof value === "object" && value !== null && !Object.isFrozen(value)) {
    Object.freeze(value);
    for (const member of Object.values(value)) deepFreeze(member);
  }
  return value;
}

export function modeContext(
  config: JsonObject = {},
  participants: readonly string[] = ["alice", "bob", "carol"],
  initiator = "alice",
): ModeContext {
  return deepFreeze({ initiator, participants: [...participants], config });
}

export function msg(sender: string, kind: string, body: Record<string, unknown> = {}, at = AT): ModeMessage {
  return { sender, kind, body: body as JsonObject, at };
}

/** Throws unless `value` is what JSON.parse could have produced: no undefined, no classes, no -0. */
export function assertPlainJson(value: unknown, path = "$"): asserts value is JsonValue {
  if (value === null || typeof value === "string" || typeof value === "boolean") return;
  if (typeof value === "number") {
    if (!Number.isFinite(value) || Object.is(value, -0)) throw new Error(`${path}: ${value} is not JSON`);
    return;
  }
  if (Array.isArray(value)) {
    value.forEach((item, index) => assertPlainJson(item, `${path}[${index}]`));
    return;
  }
  if (typeof value === "object" && Object.getPrototypeOf(value) === Object.prototype) {
    for (const [key, member] of Object.entries(value)) assertPlainJson(member, `${path}.${key}`);
    return;
  }
  throw new Error(`${path}: ${typeof value} is not JSON`);
}

/** `machine.init` on a frozen context, checked to give plain JSON. */
export function start<S extends JsonValue>(machine: ModeMachine<S>, context: ModeContext): S {
  const state = machine.init(deepFreeze(context));
  assertPlainJson(state);
  return state;
}

/** One `apply` on frozen inputs: the inputs read back unchanged and the step is plain JSON. */
export function step<S extends JsonValue>(
  machine: ModeMachine<S>,
  state: S,
  message: ModeMessage,
  context: ModeContext,
): ModeStep<S> {
  const before = JSON.stringify([state, message, context]);
  try {
    const result = machine.apply(deepFreeze(state), deepFreeze(message), deepFreeze(context));
    assertPlainJson(result.state);
    if (result.outcome !== undefined) assertPlainJson(result.outcome);
    expect(JSON.parse(JSON.stringify(result.state))).toStrictEqual(result.state);
    return result;
  } finally {
    expect(JSON.stringify([state, message, context])).toBe(before);
  }
}

/** Starts a session and applies `messages` in order; only the last may resolve it. */
export function play<S extends JsonValue>(
  machine: ModeMachine<S>,
  context: ModeContext,
  messages: readonly ModeMessage[],
): ModeStep<S> {
  let current: ModeStep<S> = { state: start(machine, context) };
  messages.forEach((message, index) => {
    current = step(machine, current.state, message, context);
    if (current.outcome !== undefined && index < messages.length - 1) {
      throw new Error(`message ${index} (${message.kind}) resolved the session early`);
    }
  });
  return current;
}

/** The SignetError `run` throws; fails the test when it throws nothing or something else. */
export function refusal(run: () => unknown): SignetError {
  try {
    run();
  } catch (error) {
    if (isSignetError(error)) return error;
    throw error;
  }
  throw new Error("expected a SignetError, but the call succeeded");
}

export function expectRule(run: () => unknown, reason: string): void {
  expect(refusal(run)).toMatchObject({ code: "SESSION_RULE_VIOLATION", details: { reason } });
}

export function expectInvalidBody(run: () => unknown): void {
  expect(refusal(run)).toMatchObject({ code: "INVALID_REQUEST", details: { reason: "session_body" } });
}

export function expectInvalidConfig(run: () => unknown): void {
  expect(refusal(run)).toMatchObject({ code: "INVALID_REQUEST", details: { reason: "session_config" } });
}

/** Bodies that are not objects, or objects with a member no verb defines. */
export const MALFORMED_BODIES: readonly unknown[] = [null, [], "propose", 42, { surprise: true }];

/**
 * A message whose body is usually right for its verb, and sometimes garbage: `bodies` maps each verb
 * to an arbitrary of well-formed (if not always allowed) bodies; `weights` makes some verbs likelier
 * (default 1), so that random runs get deep enough to resolve.
 */
export function messageArbitrary(
  participants: readonly string[],
  bodies: Readonly<Record<string, fc.Arbitrary<Record<string, unknown>>>>,
  garbageKeys: readonly string[],
  weights: Readonly<Record<string, number>> = {},
): fc.Arbitrary<ModeMessage> {
  const verbs = Object.keys(bodies);
  const weightedVerb = fc.oneof(
    ...verbs.map((verb) => ({ weight: weights[verb] ?? 1, arbitrary: fc.constant(verb) })),
  );
  const garbage = fc.oneof(
    fc.dictionary(fc.constantFrom(...garbageKeys, "extra"), wireJson({ maxDepth: 2 }), {
      maxKeys: 4,
      noNullPrototype: true,
    }),
    wireJson({ maxDepth: 2 }),
  );
  const kindAndBody = fc.oneof(
    {
      weight: 16,
      arbitrary: weightedVerb.chain((kind) => fc.tuple(fc.constant(kind), bodies[kind]!)),
    },
    { weight: 2, arbitrary: fc.tuple(fc.constantFrom(...verbs), garbage) },
    {
      weight: 1,
      arbitrary: fc.tuple(fc.constantFrom("bogus", "constructor", "__proto__", "start"), garbage),
    },
  );
  return fc
    .tuple(fc.constantFrom(...participants), kindAndBody, fc.integer({ min: AT, max: AT + 86_400_000 }))
    .map(([sender, [kind, body], at]) => msg(sender, kind, body as Record<string, unknown>, at));
}

/**
 * Runs random message sequences through `machine`: every step either succeeds on frozen inputs with
 * plain-JSON results, or throws a SignetError whose code and reason are among those documented;
 * once resolved, every further message is refused. `onOutcome` checks the mode's own invariants.
 */
export function assertRandomRuns<S extends JsonValue>(
  machine: ModeMachine<S>,
  context: ModeContext,
  messages: fc.Arbitrary<ModeMessage>,
  ruleReasons: readonly string[],
  onOutcome: (outcome: JsonObject, state: S, history: readonly ModeMessage[]) => void,
  numRuns = 300,
): void {
  fc.assert(
    fc.property(fc.array(messages, { minLength: 5, maxLength: 40, size: "max" }), (sequence) => {
      let state = start(machine, context);
      let resolved = false;
      const accepted: ModeMessage[] = [];
      for (const message of sequence) {
        try {
          const result = step(machine, state, message, context);
          expect(resolved).toBe(false);
          state = result.state;
          accepted.push(message);
          if (result.outcome !== undefined) {
            resolved = true;
            onOutcome(result.outcome, state, accepted);
          }
        } catch (error) {
          if (!isSignetError(error)) throw error;
          if (error.code === "INVALID_REQUEST") {
            expect(error.details.reason).toBe("session_body");
          } else {
            expect(error.code).toBe("SESSION_RULE_VIOLATION");
            expect(ruleReasons).toContain(error.details.reason);
            if (resolved) expect(["unknown_verb", "session_resolved"]).toContain(error.details.reason);
          }
        }
      }
    }),
    { numRuns },
  );
}
