// The JSON Schema of signet.yaml: every key, its type and its limits, checked at start.

const agentIdPattern = "^[a-z0-9][a-z0-9._-]{0,127}$";

/** Schema for the YAML file after `${VAR}` interpolation; unknown keys are refused so typos surface. */
export const CONFIG_SCHEMA = {
  type: "object",
  additionalProperties: false,
  properties: {
    env: { type: "string", enum: ["development", "production"] },
    server: {
      type: "object",
      additionalProperties: false,
      properties: {
        host: { type: "string", minLength: 1 },
        port: { type: "integer", minimum: 0, maximum: 65535 },
        allow_insecure: { type: "boolean" },
        body_limit_bytes: { type: "integer", minimum: 1024, maximum: 64 * 1024 * 1024 },
        shutdown_timeout_ms: { type: "integer", minimum: 0, maximum: 600_000 },
        trust_proxy: {
          anyOf: [{ type: "boolean" }, { type: "array", items: { type: "string", minLength: 1 } }],
        },
      },
    },
    tls: {
      type: "object",
      additionalProperties: false,
      properties: {
        cert_path: { type: "string", minLength: 1 },
        key_path: { type: "string", minLength: 1 },
        client_ca_path: { type: "string" },
        client_auth: { type: "string", enum: ["none", "optional", "required"] },
      },
    },
    auth: {
      type: "object",
      additionalProperties: false,
      properties: {
        api_keys: { type: "boolean" },
        jwt: {
          type: "object",
          additionalProperties: false,
          required: ["issuer", "audience", "algorithms"],
          properties: {
            issuer: { type: "string", minLength: 1 },
            audience: {
              anyOf: [
                { type: "string", minLength: 1 },
                { type: "array", minItems: 1, items: { type: "string", minLength: 1 } },
              ],
            },
            algorithms: { type: "array", minItems: 1, items: { type: "string", minLength: 1 } },
            jwks_url: { type: "string", minLength: 1 },
            static_keys: { type: "array", items: { type: "string", minLength: 1 } },
            clock_tolerance_sec: { type: "integer", minimum: 0, maximum: 300 },
            permissions_claim: { type: "string", minLength: 1 },
            principal_kind: { type: "string", enum: ["agent", "user", "service"] },
          },
        },
        mtls: {
          type: "object",
          additionalProperties: false,
          properties: {
            spiffe: {
              type: "object",
              additionalProperties: { type: "string", pattern: agentIdPattern },
            },
            principals: {
              type: "object",
              additionalProperties: {
                type: "object",
                additionalProperties: false,
                properties: {
                  kind: { type: "string", enum: ["agent", "user", "service"] },
                  permissions: { type: "array", items: { type: "string" } },
                },
              },
            },
          },
        },
      },
    },
    storage: {
      type: "object",
      additionalProperties: false,
      properties: {
        database_url: { type: "string" },
        sqlite_path: { type: "string", minLength: 1 },
      },
    },
    runtime: {
      type: "object",
      additionalProperties: false,
      properties: {
        signing_key_path: { type: "string", minLength: 1 },
      },
    },
    redaction: {
      type: "object",
      additionalProperties: false,
      properties: {
        paths: { type: "array", items: { type: "string", minLength: 1 } },
        detectors: {
          oneOf: [
            { type: "string", enum: ["all", "none"] },
            {
              type: "array",
              items: { type: "string", enum: ["private_key", "bearer", "api_key", "card", "email"] },
            },
          ],
        },
        sensitive_keys: {
          oneOf: [
            { type: "string", enum: ["default", "none"] },
            { type: "array", items: { type: "string", minLength: 1 } },
          ],
        },
        mask: { type: "string", minLength: 1, maxLength: 64 },
      },
    },
    audit: {
      type: "object",
      additionalProperties: false,
      properties: {
        path: { type: "string", minLength: 1 },
        synchronous: { type: "string", enum: ["FULL", "NORMAL"] },
        checkpoint_every: { type: "integer", minimum: 1, maximum: 1_000_000 },
        checkpoint_interval_ms: { type: "integer", minimum: 0, maximum: 3_600_000 },
        retention_days: { type: "integer", minimum: 0, maximum: 36_500 },
        prune_interval_ms: { type: "integer", minimum: 1000, maximum: 7 * 24 * 3600 * 1000 },
        busy_timeout_ms: { type: "integer", minimum: 0, maximum: 60_000 },
      },
    },
    registry: {
      type: "object",
      additionalProperties: false,
      properties: {
        key_rotation_grace_ms: { type: "integer", minimum: 0, maximum: 30 * 24 * 3600 * 1000 },
      },
    },
    envelopes: {
      type: "object",
      additionalProperties: false,
      properties: {
        max_bytes: { type: "integer", minimum: 1024, maximum: 64 * 1024 * 1024 },
        max_depth: { type: "integer", minimum: 2, maximum: 512 },
        freshness_window_ms: { type: "integer", minimum: 1000, maximum: 3_600_000 },
        idempotency_retention_ms: { type: "integer", minimum: 1000, maximum: 30 * 24 * 3600 * 1000 },
      },
    },
    policy: {
      type: "object",
      additionalProperties: false,
      properties: {
        dir: { type: "string", minLength: 1 },
        watch: { type: "boolean" },
        debounce_ms: { type: "integer", minimum: 10, maximum: 60_000 },
      },
    },
    rbac: {
      type: "object",
      additionalProperties: false,
      properties: {
        roles_file: { type: "string", minLength: 1 },
        cache_ttl_ms: { type: "integer", minimum: 0, maximum: 300_000 },
      },
    },
    routing: {
      type: "object",
      additionalProperties: false,
      properties: {
        call_timeout_ms: { type: "integer", minimum: 100, maximum: 3_600_000 },
        max_in_flight: { type: "integer", minimum: 1, maximum: 10_000 },
        heartbeat_ms: { type: "integer", minimum: 100, maximum: 600_000 },
      },
    },
    // Coordination sessions (docs/sessions.md "Lifecycle").
    sessions: {
      type: "object",
      additionalProperties: false,
      properties: {
        default_ttl_ms: { type: "integer", minimum: 1000, maximum: 2_592_000_000 },
        max_ttl_ms: { type: "integer", minimum: 1000, maximum: 2_592_000_000 },
        max_participants: { type: "integer", minimum: 2, maximum: 1000 },
        sweep_interval_ms: { type: "integer", minimum: 100, maximum: 3_600_000 },
        retention_days: { type: "integer", minimum: 0, maximum: 36_500 },
        watch_poll_ms: { type: "integer", minimum: 10, maximum: 60_000 },
        watch_heartbeat_ms: { type: "integer", minimum: 100, maximum: 600_000 },
      },
    },
    // Rate limits (docs/operations.md "Rate limits"): per sender, per client address, and where counted.
    rate_limits: {
      type: "object",
      additionalProperties: false,
      properties: {
        backend: { type: "string", enum: ["memory", "redis"] },
        messages_per_minute: { type: "integer", minimum: 1, maximum: 100_000_000 },
        session_starts_per_minute: { type: "integer", minimum: 1, maximum: 100_000_000 },
        unauthenticated_per_minute: { type: "integer", minimum: 1, maximum: 100_000_000 },
      },
    },
    redis: {
      type: "object",
      additionalProperties: false,
      properties: {
        url: { type: "string", pattern: "^$|^rediss?://" },
        key_prefix: { type: "string", minLength: 1, maxLength: 128 },
        command_timeout_ms: { type: "integer", minimum: 10, maximum: 60_000 },
        connect_timeout_ms: { type: "integer", minimum: 100, maximum: 60_000 },
      },
    },
    logging: {
      type: "object",
      additionalProperties: false,
      properties: {
        level: { type: "string", enum: ["fatal", "error", "warn", "info", "debug", "trace", "silent"] },
        debug: { type: "boolean" },
      },
    },
  },
} as const;
