// The development policy `signet init` and `signet demo` write: what the demo and the examples need, and nothing more.

/** `policies/development.yaml`. Default deny: whatever no rule here allows is refused. */
export const DEVELOPMENT_POLICY_YAML = `# policies/development.yaml — written by \`signet init\`.
#
# Signet denies by default: an invocation no rule allows is refused with POLICY_DENIED, and the
# refusal names the deciding rule. This file allows what \`signet demo\` and the SDK examples need,
# and nothing more. Edit it, add files beside it (they are read in name order and reloaded on
# change), and check them with \`signet policy check policies/*.yaml\`. See docs/policy.md.
version: 1
layer: global
rules:
  # The demo: alice and bob may run read queries, at most 100 rows at a time.
  - id: demo-database-query
    effect: allow
    principals: [alice, bob]
    actions: [invoke]
    resources: ["tool:database/query"]
    params:
      limit: { min: 1, max: 100 }
      query: { pattern: "^(?i)select\\\\s", max_length: 2000 }
    denied_params: [raw_sql]

  # The SDK examples: the shopper may look up inventory.
  - id: examples-inventory-lookup
    effect: allow
    principals: [shopper]
    actions: [invoke]
    resources: ["tool:inventory/lookup"]

  # Coordination sessions: the demo's agents and the decision example's three agents may start
  # sessions and speak in them. Which session, and who may say what in it, the session decides.
  - id: demo-sessions
    effect: allow
    principals: [alice, bob, db-bot, planner, reviewer, security]
    actions: ["session.*"]
    resources: ["session:*"]

  # Nobody drops tables through an agent, whatever other rules say.
  - id: no-table-drops
    effect: deny
    principals: ["*"]
    actions: ["*"]
    resources: ["tool:database/drop"]
    reason: Dropping tables is never allowed from an agent
`;
