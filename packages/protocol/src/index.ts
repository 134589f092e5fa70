// Public API of @signet/protocol: every export here is public surface, so each is named.
export {
  AuditChain,
  type AuditChainState,
  type AuditEntryDraft,
  type SealedAuditEntry,
} from "./audit/chain.js";
export {
  CHECKPOINT_DOMAIN,
  type Checkpoint,
  type CheckpointFields,
  RUNTIME_KEY_DOMAIN,
  RuntimeKeyChain,
  type RuntimeKeyPeriod,
  type RuntimeKeyRecord,
  checkpointHash,
  parseCheckpoint,
  signCheckpoint,
  signRuntimeKeyRecord,
  verifyCheckpointSignature,
  verifyRuntimeKeyChain,
} from "./audit/checkpoint.js";
export {
  AUDIT_ENTRY_DOMAIN,
  AUDIT_ENTRY_ID_PATTERN,
  AUDIT_ERROR_CODE_PATTERN,
  AUDIT_EVENT_TYPES,
  AUDIT_EVENT_TYPE_PATTERN,
  AUDIT_GENESIS_HASH,
  AUDIT_OUTCOMES,
  AUDIT_TIME_PATTERN,
  type AuditEntry,
  type AuditEntryFields,
  type AuditEnvelopeRef,
  type AuditEventType,
  type AuditOutcome,
  type EncodedAuditEntry,
  auditEntryHash,
  auditEntryText,
  encodeAuditEntry,
  formatAuditTime,
  parseAuditEntry,
  parseAuditTime,
} from "./audit/entry.js";
export {
  type AuditExportRecord,
  auditExportEntryLine,
  auditExportFromJson,
  auditExportRecordLine,
  parseAuditExportNdjson,
  verifyAuditNdjson,
} from "./audit/export-format.js";
export {
  MerkleFrontier,
  MerkleTree,
  consistencyProofFromSubtrees,
  emptyMerkleRoot,
  inclusionProofFromSubtrees,
  merkleConsistencyProof,
  merkleInclusionProof,
  merkleLeafHash,
  merkleNodeHash,
  merkleRoot,
  sha256ContentHash,
  sha256HashBytes,
  verifyMerkleConsistency,
  verifyMerkleInclusion,
} from "./audit/merkle.js";
export {
  type ConsistencyProofDocument,
  type InclusionProofDocument,
  createConsistencyProof,
  createInclusionProof,
  verifyCheckpointConsistency,
  verifyInclusionInCheckpoint,
} from "./audit/proofs.js";
export {
  type AuditAnchor,
  type AuditExport,
  type AuditExportEntry,
  AuditLogVerifier,
  type AuditProblem,
  type AuditProblemKind,
  type AuditVerifyOptions,
  type AuditVerifyReport,
  createAuditAnchor,
  verifyAuditExport,
} from "./audit/verify.js";
export {
  type ClientFrame,
  DELIVERY_DOMAIN,
  type Delivery,
  type ErrorFrame,
  type Frame,
  type HelloFrame,
  type InvokeFrame,
  type KeyRevokedFrame,
  MAX_FRAME_BYTES,
  type PingFrame,
  type PongFrame,
  type ResultFrame,
  type ServerFrame,
  type WelcomeFrame,
  parseClientFrame,
  parseServerFrame,
  serializeFrame,
  signDelivery,
  verifyDelivery,
} from "./connect/frames.js";
export {
  type ContentHash,
  HASH_ALGORITHMS,
  type HashAlgorithm,
  hashBytes,
  hashJson,
  isContentHash,
  parseContentHash,
} from "./crypto/content-hash.js";
export {
  Ed25519PrivateKey,
  type Ed25519PrivateJwk,
  Ed25519PublicKey,
  type Ed25519PublicJwk,
  PublicKeyCache,
  hasCanonicalScalar,
  keyIdFromRaw,
  publicKeyDefect,
} from "./crypto/ed25519.js";
export { fromBase64Url, fromHex, toBase64Url, toHex } from "./crypto/encoding.js";
export {
  BODY_TYPE_PATTERN,
  FIELD_LIMITS,
  KEY_ID_PATTERN,
  SESSION_FIELD_PATTERN,
  SESSION_ID_PATTERN,
  SIGNATURE_PATTERN,
  TYPE_PATTERN,
  assertEnvelopeShape,
} from "./envelope/fields.js";
export {
  RECEIPT_DOMAIN,
  type Receipt,
  type ReceiptFields,
  signReceipt,
  verifyReceipt,
} from "./envelope/receipt.js";
export {
  runtimeSigningInput,
  signRuntimeDocument,
  verifyRuntimeDocument,
} from "./envelope/runtime-signed.js";
export {
  SESSION_COMMITMENT_DOMAIN,
  SESSION_HISTORY_ORIGIN,
  SESSION_RECEIPT_DOMAIN,
  type SessionReceiptFields,
  chainSessionHistory,
  sessionHistoryHash,
  verifySessionCommitment,
  verifySessionReceipt,
} from "./envelope/session-commitment.js";
export {
  ENVELOPE_DOMAIN,
  type EnvelopeDraft,
  type SignedEnvelope,
  canonicalHeader,
  envelopeHash,
  envelopeHashOfSigningInput,
  serializeEnvelope,
  signEnvelope,
  signingInput,
} from "./envelope/signing.js";
export {
  type DecisionRef,
  ENVELOPE_FIELDS,
  type Envelope,
  type EnvelopeHeader,
  type EnvelopeType,
  HEADER_FIELDS,
  type Intent,
  PROTOCOL_VERSION,
  type Provenance,
  type RequestRef,
} from "./envelope/types.js";
export {
  type KeyResolver,
  type ResolvedKey,
  type VerifiedEnvelope,
  type VerifyOptions,
  assertFresh,
  assertResultAnswers,
  verifyEnvelope,
} from "./envelope/verify.js";
export {
  ERROR_CODES,
  type ErrorCode,
  type ErrorCodeInfo,
  errorInfo,
  isErrorCode,
} from "./errors/registry.js";
export {
  type ErrorDetails,
  SignetError,
  type WireError,
  fromWireError,
  isSignetError,
} from "./errors/signet-error.js";
export {
  AGENT_ID_PATTERN,
  CAPABILITY_NAME_PATTERN,
  TOOL_NAME_PATTERN,
  type Target,
  type TargetKind,
  formatTarget,
  isAgentId,
  parseTarget,
} from "./identities.js";
export { MESSAGE_ID_PATTERN, NONCE_PATTERN, isMessageId, newMessageId, newNonce } from "./ids.js";
export { type JsonValue, MAX_CANONICAL_DEPTH, canonicalBytes, canonicalize } from "./json/canonical-json.js";
export {
  DETECTOR_NAMES,
  type DetectorName,
  detectorMask,
  isDetectorName,
  redactText,
} from "./redaction/detectors.js";
export { type PathSegment, type PathSelector, parseRedactionPath } from "./redaction/json-path.js";
export {
  DEFAULT_REDACTION_MASK,
  DEFAULT_SENSITIVE_KEYS,
  MAX_REDACTION_DEPTH,
  type Redaction,
  type RedactionKind,
  type RedactionPlan,
  type RedactionResult,
  type RedactionSpec,
  compileRedactionPlan,
  redact,
} from "./redaction/redaction-plan.js";
export {
  DEFAULT_MAX_BYTES,
  DEFAULT_MAX_DEPTH,
  type MemberSpan,
  type StrictJsonDocument,
  type StrictJsonLimits,
  decodeJsonText,
  parseStrictJson,
  parseStrictJsonDocument,
} from "./json/strict-json.js";
