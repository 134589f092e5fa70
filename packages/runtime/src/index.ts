// Public API of @signet/runtime: every export here is public surface, so each is named.
export type { AuditLog, AuditPruneResult, AuditQuery, AuditRecord } from "./audit/audit-log.js";
export {
  type AuditEventInput,
  type AuditRecorderOptions,
  type EventRecorder,
  createAuditRecorder,
  envelopeRef,
} from "./audit/audit-recorder.js";
export { pruneAudit } from "./audit/retention.js";
export { SqliteAuditLog, type SqliteAuditLogOptions } from "./audit/sqlite-audit-log.js";
export {
  API_KEY_PREFIX,
  type CreatedApiKey,
  type NewApiKey,
  createApiKey,
  generateApiKey,
  revokeApiKey,
} from "./auth/api-keys.js";
export {
  API_KEY_HEADER,
  DEV_IDENTITY_HEADER,
  type AuthRequest,
  type Authenticator,
  createAuthenticator,
} from "./auth/authenticator.js";
export {
  type AuthMethod,
  PERMISSIONS,
  type Permission,
  type Principal,
  hasPermission,
} from "./auth/principal.js";
export {
  CONFIG_FILE,
  type ClientAuthMode,
  ConfigError,
  type ConfigOverrides,
  DEFAULT_PORT,
  type RuntimeConfig,
  loadConfig,
  productionProblems,
} from "./config/load-config.js";
export {
  type PolicyExplanation,
  type RuleExplanation,
  explain,
  formatExplanation,
} from "./policy/explain.js";
export { LivePolicy } from "./policy/live-policy.js";
export { PolicyLoadError, type PolicyProblem, formatProblem } from "./policy/policy-error.js";
export {
  type PolicyCheckResult,
  checkPolicyFiles,
  loadPolicyDirectory,
  loadPolicyFiles,
} from "./policy/policy-file.js";
export type { Decision, PolicyRequest } from "./policy/types.js";
export { type AgentDefinition, parseAgentDefinition } from "./registry/agent-definition.js";
export { AgentRegistry, type AgentKeyView, parsePublicKey } from "./registry/agent-registry.js";
export { RUNTIME_VERSION, type Runtime, type RuntimeOptions, createRuntime } from "./runtime.js";
export { createMemoryStores } from "./store/memory.js";
export { type OpenStoresOptions, openStores } from "./store/open.js";
export { openSqliteStores } from "./store/sqlite.js";
export type {
  AgentKeyRecord,
  AgentRecord,
  AgentStore,
  ApiKeyRecord,
  ApiKeyStore,
  PrincipalKind,
  StoreContext,
  Stores,
} from "./store/types.js";
export { createLogger } from "./telemetry/logger.js";
export {
  type CertificateAuthority,
  type DevCertificateOptions,
  type DevCertificatePaths,
  createCertificateAuthority,
  createDevCertificates,
  issueCertificate,
} from "./tls/dev-certs.js";
export { type PeerPrincipal, peerPrincipal } from "./tls/peer-identity.js";
export { type RuntimeTlsOptions, buildTlsOptions } from "./tls/server-options.js";
