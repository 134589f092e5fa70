// The agent registry: who the agents are, which keys they sign with, and which tools they may serve.
//
// The store is the source of truth; an in-memory index of keys answers the pipeline's hot-path
// lookups (`resolveKey`) without I/O. Every change goes to the store first, then the index, and is
// recorded as an event.
import {
  Ed25519PublicKey,
  type KeyResolver,
  type ResolvedKey,
  SignetError,
  isAgentId,
} from "@signet/protocol";
import type { EventRecorder } from "../audit/audit-recorder.js";
import type { AgentKeyRecord, AgentRecord, AgentStore, StoreContext } from "../store/types.js";
import { PolicyLoadError, formatProblem } from "../policy/policy-error.js";
import { compilePolicy } from "../policy/compile.js";
import { type PrincipalMatcher, compilePrincipalPattern } from "../policy/glob.js";
import { type AgentDefinition, parseAgentDefinition } from "./agent-definition.js";
import { agentPolicySource } from "./agent-policy.js";

/** A key with its state at a given time. */
export interface AgentKeyView extends AgentKeyRecord {
  readonly state: "active" | "retiring" | "expired" | "revoked";
}

interface IndexedKey {
  readonly key: Ed25519PublicKey;
  record: AgentKeyRecord;
}

/** Parses a public key given as base64url (raw 32 bytes), SPKI PEM, or an OKP JWK (object or JSON). */
export function parsePublicKey(input: unknown): Ed25519PublicKey {
  if (typeof input === "object" && input !== null) return Ed25519PublicKey.fromJwk(input);
  if (typeof input !== "string") {
    throw new SignetError("INVALID_REQUEST", "A public key must be base64url, PEM or JWK", {
      reason: "public_key",
    });
  }
  const text = input.trim();
  if (text.startsWith("-----BEGIN")) return Ed25519PublicKey.fromPem(text);
  if (text.startsWith("{")) {
    let jwk: unknown;
    try {
      jwk = JSON.parse(text);
    } catch {
      throw new SignetError("INVALID_REQUEST", "The public key JWK is not valid JSON", {
        reason: "public_key",
      });
    }
    return Ed25519PublicKey.fromJwk(jwk);
  }
  return Ed25519PublicKey.fromBase64Url(text);
}

function keyState(record: AgentKeyRecord, now: number): AgentKeyView["state"] {
  if (record.revokedAt !== undefined) return "revoked";
  if (record.notAfter !== undefined) return now < record.notAfter ? "retiring" : "expired";
  return "active";
}

/** Told when a key stops verifying at once, so live connections can be notified. */
export type KeyRevokedListener = (agentId: string, kid: string) => void;

/** A change made through this registry, for other runtime instances to apply (see ClusterLink). */
export type RegistryChange =
  | { readonly kind: "deployed"; readonly agentId: string }
  | { readonly kind: "rotated"; readonly agentId: string }
  | { readonly kind: "revoked"; readonly agentId: string; readonly kid: string };

export class AgentRegistry {
  private readonly keys = new Map<string, IndexedKey>();
  /** Tool name → agents whose registration allows serving it. */
  private readonly servedBy = new Map<string, Set<string>>();
  /** Capability → agent → who may request it from that agent. */
  private readonly providers = new Map<string, Map<string, readonly PrincipalMatcher[]>>();
  private readonly revokedListeners: KeyRevokedListener[] = [];
  private readonly deployedListeners: ((agent: AgentRecord) => void)[] = [];
  private readonly changeListeners: ((change: RegistryChange) => void)[] = [];
  /** Every agent, for synchronous readers (policy compilation). */
  private readonly agents = new Map<string, AgentRecord>();

  private constructor(
    private readonly store: AgentStore,
    private readonly events: EventRecorder,
    private readonly options: { keyRotationGraceMs: number; now: () => number },
  ) {}

  /** Opens the registry and loads every key into the hot-path index. */
  static async open(
    store: AgentStore,
    events: EventRecorder,
    options: { keyRotationGraceMs: number; now?: () => number },
  ): Promise<AgentRegistry> {
    const registry = new AgentRegistry(store, events, { now: Date.now, ...options });
    await registry.reload();
    return registry;
  }

  /** Rebuilds the key index from the store (e.g. after another instance changed it). */
  async reload(): Promise<void> {
    const [records, agents] = await Promise.all([this.store.listKeys(), this.store.listAgents()]);
    this.keys.clear();
    for (const record of records) this.index(record);
    this.servedBy.clear();
    this.agents.clear();
    for (const agent of agents) {
      this.indexServes(agent);
      this.agents.set(agent.id, agent);
    }
  }

  private indexServes(agent: AgentRecord): void {
    for (const agents of this.providers.values()) agents.delete(agent.id);
    const capabilities = Array.isArray(agent.definition.capabilities)
      ? (agent.definition.capabilities as string[])
      : [];
    const access = (agent.definition.capability_access ?? {}) as Record<
      string,
      { allowed_requesters?: string[] }
    >;
    for (const capability of capabilities) {
      const requesters = Object.hasOwn(access, capability)
        ? (access[capability]?.allowed_requesters ?? [])
        : [];
      const agents = this.providers.get(capability) ?? new Map<string, readonly PrincipalMatcher[]>();
      agents.set(agent.id, requesters.map(compilePrincipalPattern));
      this.providers.set(capability, agents);
    }
    for (const agents of this.servedBy.values()) agents.delete(agent.id);
    for (const tool of agent.serves) {
      const agents = this.servedBy.get(tool) ?? new Set<string>();
      agents.add(agent.id);
      this.servedBy.set(tool, agents);
    }
  }

  /** Registers a listener told of every change made through this registry (not of applied ones). */
  onChange(listener: (change: RegistryChange) => void): void {
    this.changeListeners.push(listener);
  }

  /**
   * Applies a change another instance made: reloads from the store, then tells this instance's
   * listeners as if the change had been made here (a revoked key's live connections are told; a
   * deployed definition's policy rules are recompiled). It is not announced again.
   */
  async applyRemoteChange(change: RegistryChange): Promise<void> {
    await this.reload();
    if (change.kind === "revoked") {
      for (const listener of this.revokedListeners) listener(change.agentId, change.kid);
    } else if (change.kind === "deployed") {
      const agent = this.agents.get(change.agentId);
      if (agent !== undefined) for (const listener of this.deployedListeners) listener(agent);
    }
  }

  private changed(change: RegistryChange): void {
    for (const listener of this.changeListeners) {
      try {
        listener(change);
      } catch {
        // A listener's failure (a peer link down) never undoes or hides the change itself.
      }
    }
  }

  /** True when some registered agent may serve `tool`. */
  isServedTool(tool: string): boolean {
    return (this.servedBy.get(tool)?.size ?? 0) > 0;
  }

  /** True when some registered agent provides `capability`. */
  isProvidedCapability(capability: string): boolean {
    return (this.providers.get(capability)?.size ?? 0) > 0;
  }

  /** True when `agentId`'s definition lists `capability`. */
  mayProvide(agentId: string, capability: string): boolean {
    return this.providers.get(capability)?.has(agentId) ?? false;
  }

  /**
   * True when `agentId` provides `capability` and its `capability_access` lets `requester` ask for it;
   * with no `agentId`, whether any provider does.
   */
  capabilityAllows(capability: string, requester: { id: string; kind: string }, agentId?: string): boolean {
    const agents = this.providers.get(capability);
    if (agents === undefined) return false;
    const check = (matchers: readonly PrincipalMatcher[]) =>
      matchers.some((matcher) => matcher.test(requester.id, requester.kind));
    if (agentId !== undefined) {
      const matchers = agents.get(agentId);
      return matchers !== undefined && check(matchers);
    }
    for (const matchers of agents.values()) if (check(matchers)) return true;
    return false;
  }

  /** The agents providing `capability` whose capability_access admits `requester`. */
  capabilityProvidersFor(capability: string, requester: { id: string; kind: string }): Set<string> {
    const allowed = new Set<string>();
    for (const [agentId, matchers] of this.providers.get(capability) ?? []) {
      if (matchers.some((matcher) => matcher.test(requester.id, requester.kind))) allowed.add(agentId);
    }
    return allowed;
  }

  /** True when `agentId`'s registration allows it to serve `tool`. */
  mayServe(agentId: string, tool: string): boolean {
    return this.servedBy.get(tool)?.has(agentId) ?? false;
  }

  /** Every registered agent, as last loaded or deployed (no I/O). */
  /** True when `id` is a deployed agent (in this instance's index). */
  hasAgent(id: string): boolean {
    return this.agents.has(id);
  }

  agentsSnapshot(): AgentRecord[] {
    return [...this.agents.values()];
  }

  /** Registers a listener told after an agent is deployed (created or updated). */
  onAgentDeployed(listener: (agent: AgentRecord) => void): void {
    this.deployedListeners.push(listener);
  }

  /** Registers a listener for immediate key revocations. */
  onKeyRevoked(listener: KeyRevokedListener): void {
    this.revokedListeners.push(listener);
  }

  private index(record: AgentKeyRecord): void {
    const existing = this.keys.get(record.kid);
    if (existing !== undefined) existing.record = record;
    else this.keys.set(record.kid, { key: Ed25519PublicKey.fromBase64Url(record.publicKey), record });
  }

  /**
   * The pipeline's key lookup: synchronous, from memory. A key past its rotation grace period or
   * revoked resolves as revoked (`KEY_REVOKED`); an unknown key as undefined (`UNKNOWN_AGENT`).
   */
  readonly resolveKey: KeyResolver = (kid) => {
    const entry = this.keys.get(kid);
    if (entry === undefined) return undefined;
    const state = keyState(entry.record, this.options.now());
    const resolved: ResolvedKey = {
      key: entry.key,
      owner: entry.record.agentId,
      revoked: state === "revoked" || state === "expired",
    };
    return resolved;
  };

  /**
   * Deploys (creates or updates) an agent from its Markdown definition, adding any new public keys.
   * A new agent needs at least one key.
   */
  /**
   * Validates a definition and its keys as `deploy` would — schema, that its tools are served, that
   * its rules compile, that no key belongs to another agent — without storing anything.
   */
  validate(definitionText: string, publicKeys: readonly unknown[]): AgentDefinition {
    const definition = parseAgentDefinition(definitionText, {
      toolExists: (tool) => this.isServedTool(tool),
    });
    for (const key of publicKeys.map(parsePublicKey)) {
      const known = this.keys.get(key.kid);
      if (known !== undefined && known.record.agentId !== definition.name) {
        throw new SignetError("INVALID_REQUEST", "That public key is registered to another agent", {
          reason: "public_key",
        });
      }
    }
    const now = this.options.now();
    const source = agentPolicySource({
      id: definition.name,
      description: definition.description,
      definition: definition.frontmatter,
      serves: definition.serves,
      createdAt: now,
      updatedAt: now,
      deployedBy: "validation",
    });
    if (source !== undefined) {
      try {
        compilePolicy([source]);
      } catch (error) {
        if (error instanceof PolicyLoadError) {
          throw new SignetError(
            "INVALID_REQUEST",
            `Invalid agent definition: ${error.problems.map(formatProblem).join("; ")}`,
            {
              reason: "agent_definition",
            },
          );
        }
        throw error;
      }
    }
    return definition;
  }

  async deploy(
    definitionText: string,
    publicKeys: readonly unknown[],
    ctx: StoreContext,
  ): Promise<{ agent: AgentRecord; keys: AgentKeyView[]; created: boolean }> {
    const definition = this.validate(definitionText, publicKeys);
    const parsedKeys = publicKeys.map(parsePublicKey);
    const existing = await this.store.getAgent(definition.name);
    if (existing === undefined && parsedKeys.length === 0) {
      throw new SignetError("INVALID_REQUEST", "A new agent needs a public key", { reason: "public_key" });
    }
    const now = this.options.now();
    const newKeys: AgentKeyRecord[] = [];
    for (const key of parsedKeys) {
      const known = this.keys.get(key.kid);
      if (known !== undefined) {
        if (known.record.agentId !== definition.name) {
          throw new SignetError("INVALID_REQUEST", "That public key is registered to another agent", {
            reason: "public_key",
          });
        }
        continue;
      }
      if (newKeys.some((k) => k.kid === key.kid)) continue;
      newKeys.push({ kid: key.kid, agentId: definition.name, publicKey: key.toBase64Url(), createdAt: now });
    }
    const agent: AgentRecord = {
      id: definition.name,
      ...(definition.version === undefined ? {} : { version: definition.version }),
      description: definition.description,
      definition: definition.frontmatter,
      serves: definition.serves,
      createdAt: existing?.createdAt ?? now,
      updatedAt: now,
      deployedBy: ctx.actor,
    };
    await this.store.putAgent(agent, newKeys, ctx);
    for (const record of newKeys) this.index(record);
    this.indexServes(agent);
    this.agents.set(agent.id, agent);
    await this.events.record({
      type: "agent_deployed",
      actor: ctx.actor,
      target: `agent:${agent.id}`,
      outcome: "success",
      metadata: {
        created: existing === undefined,
        version: agent.version ?? null,
        added_keys: newKeys.map((k) => k.kid),
      },
    });
    for (const listener of this.deployedListeners) listener(agent);
    this.changed({ kind: "deployed", agentId: agent.id });
    return { agent, keys: await this.listKeys(agent.id), created: existing === undefined };
  }

  async getAgent(id: string): Promise<AgentRecord | undefined> {
    return isAgentId(id) ? this.store.getAgent(id) : undefined;
  }

  async listAgents(): Promise<AgentRecord[]> {
    return this.store.listAgents();
  }

  async listKeys(agentId: string): Promise<AgentKeyView[]> {
    const now = this.options.now();
    return (await this.store.listKeys(agentId)).map((record) => ({
      ...record,
      state: keyState(record, now),
    }));
  }

  private async requireAgent(agentId: string): Promise<AgentRecord> {
    const agent = await this.getAgent(agentId);
    if (agent === undefined) throw new SignetError("NOT_FOUND", "No such agent");
    return agent;
  }

  /**
   * Rotates an agent's key: the new key is active at once; every other active key keeps verifying
   * for the grace period (default from config), then stops.
   */
  async rotateKey(
    agentId: string,
    publicKey: unknown,
    ctx: StoreContext,
    graceMs: number = this.options.keyRotationGraceMs,
  ): Promise<AgentKeyView[]> {
    await this.requireAgent(agentId);
    const key = parsePublicKey(publicKey);
    if (this.keys.has(key.kid)) {
      throw new SignetError("INVALID_REQUEST", "That public key is already registered", {
        reason: "public_key",
      });
    }
    const now = this.options.now();
    const record: AgentKeyRecord = { kid: key.kid, agentId, publicKey: key.toBase64Url(), createdAt: now };
    await this.store.addKey(record, ctx);
    this.index(record);
    const retired: string[] = [];
    for (const old of await this.store.listKeys(agentId)) {
      if (old.kid === key.kid || keyState(old, now) !== "active") continue;
      const updated = await this.store.updateKey(old.kid, { notAfter: now + graceMs }, ctx);
      if (updated !== undefined) {
        this.index(updated);
        retired.push(updated.kid);
      }
    }
    await this.events.record({
      type: "key_rotated",
      actor: ctx.actor,
      target: `agent:${agentId}`,
      outcome: "success",
      metadata: { new_kid: key.kid, retiring: retired, grace_ms: graceMs },
    });
    this.changed({ kind: "rotated", agentId });
    return this.listKeys(agentId);
  }

  /** Revokes a key at once: from this call on it verifies nothing (`KEY_REVOKED`). */
  async revokeKey(agentId: string, kid: string, reason: string, ctx: StoreContext): Promise<AgentKeyView> {
    await this.requireAgent(agentId);
    const current = await this.store.getKey(kid);
    if (current === undefined || current.agentId !== agentId)
      throw new SignetError("NOT_FOUND", "No such key");
    const updated =
      current.revokedAt === undefined
        ? await this.store.updateKey(kid, { revokedAt: this.options.now(), revokedReason: reason }, ctx)
        : current;
    if (updated === undefined) throw new SignetError("NOT_FOUND", "No such key");
    this.index(updated);
    for (const listener of this.revokedListeners) listener(agentId, kid);
    this.changed({ kind: "revoked", agentId, kid });
    await this.events.record({
      type: "key_revoked",
      actor: ctx.actor,
      target: `agent:${agentId}`,
      outcome: "success",
      metadata: { kid, reason },
    });
    return { ...updated, state: keyState(updated, this.options.now()) };
  }
}
