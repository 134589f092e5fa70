// Public API of @signet/sdk: every export here is public surface, so each is named. No server code.
export {
  Agent,
  type AgentErrorInfo,
  type AgentOptions,
  type AgentSession,
  type AgentState,
  type CallContext,
  type Invocation,
  type ReconnectOptions,
  type ToolHandler,
  type ToolOptions,
} from "./agent.js";
export {
  AuthConfig,
  type AuthKind,
  type ClientCertificate,
  type ExpectedSenderOptions,
} from "./auth-config.js";
export { type CallerKeyMode } from "./caller-keys.js";
export {
  type BuildEnvelopeOptions,
  type EnvelopeOptions,
  type InvokeOptions,
  type InvokeResponse,
  type InvokeToolOptions,
  type ResultTrust,
  type SendOptions,
  type SignalOptions,
  SignetClient,
  type SignetClientOptions,
  type SubmitOptions,
  type SubmitResponse,
  type ToolCallResult,
} from "./client.js";
export { type ConnectionOptions } from "./connection.js";
export {
  CoordinationSession,
  type SessionCallOptions,
  type SessionOptions,
  type SessionResponse,
  type SessionStartOptions,
} from "./coordination-session.js";
export {
  type AnyProtocolError,
  AuditUnavailableError,
  DuplicateMessageError,
  ERROR_CLASSES,
  ForbiddenError,
  HashMismatchError,
  IdentityMismatchError,
  type IdentityMismatchOptions,
  InternalError,
  InvalidEnvelopeError,
  InvalidPayloadError,
  InvalidRequestError,
  InvalidSessionIdError,
  KeyRevokedError,
  ModeNotSupportedError,
  NotFoundError,
  PayloadTooLargeError,
  PermissionDeniedError,
  type ProtocolErrorClass,
  type ProtocolErrorFields,
  QuotaExceededError,
  RateLimitedError,
  ReplayDetectedError,
  SdkError,
  type SdkErrorOptions,
  SessionAlreadyExistsError,
  SessionNotFoundError,
  SessionNotOpenError,
  SessionRuleViolationError,
  SignatureInvalidError,
  SignetProtocolError,
  StaleMessageError,
  TargetUnavailableError,
  TimeoutError,
  ToolError,
  type ToolErrorBody,
  UnauthenticatedError,
  UnavailableError,
  UnknownAgentError,
  UnknownToolError,
  UnsupportedProtocolVersionError,
  errorFromWire,
  isProtocolError,
  protocolError,
} from "./errors.js";
export { type InputSchema } from "./input-schema.js";
export { REGISTRY_RETRYABLE_CODES, RetryPolicy, type RetryPolicyOptions } from "./retry-policy.js";
export {
  type AttemptBudget,
  type CallBudget,
  type RetryEvent,
  type RetrySendOptions,
  retrySend,
} from "./retry-send.js";
export { type RuntimeKeyInput } from "./runtime-key.js";
export {
  type CommitmentExpectation,
  verifySessionCommitment,
  verifySessionReceipt,
} from "./session-commitment.js";
export {
  DecisionSession,
  type DecisionEvaluation,
  type DecisionObjection,
  type DecisionStartOptions,
  HandoffSession,
  ProposalSession,
  type ProposalCounter,
  type ProposalOffer,
  QuorumSession,
  type QuorumStartOptions,
  TaskSession,
  type TaskAssignment,
  type TaskProgress,
} from "./session-modes.js";
export {
  type AnyCase,
  type DecisionRecommendation,
  type DecisionVote,
  type ObjectionSeverity,
} from "./session-values.js";
export {
  SessionLifecycleWatcher,
  type SessionWatchOptions,
  type WatchReconnectOptions,
} from "./session-watcher.js";
export {
  type JsonObject,
  type SessionCommitment,
  type SessionReceipt,
  type SessionEvent,
  type SessionEventType,
  type SessionMessage,
  type SessionMode,
  type SessionStatus,
  type SessionView,
} from "./session-wire.js";
export { type SigningKeyInput } from "./signing-key.js";

export const PACKAGE_NAME = "@signet/sdk";
