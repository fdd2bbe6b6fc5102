/** @flagops/sdk: flagops feature flags, evaluated locally. Runs in Node 20+ and browsers. */

export {
  FeatureFlags,
  type FeatureFlagsOptions,
  type FlagsChange,
  type FlagsProblem,
  type FlagsStats,
  type FromRelayOptions,
  type IsEnabledOptions,
  type Logger,
  type Source,
  type SourceSink,
} from "./client.js";
export { SCHEMA_VERSION, buildDocument, parseDocument, revisionOf, type DocumentInput, type ParsedDocument } from "./document.js";
export { FlagsDocumentError } from "./errors.js";
export {
  compileFlag,
  evaluate,
  evaluateDetail,
  type CompiledFlag,
  type EvaluationContext,
  type EvaluationDetail,
  type FlagState,
  type Reason,
} from "./evaluate.js";
export { bucket, murmur3, murmur3Bytes } from "./murmur3.js";
export type { RelayOptions } from "./relay.js";
export { parseRfc3339, type Instant } from "./rfc3339.js";
