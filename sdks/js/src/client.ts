/**
 * `FeatureFlags`: what an app asks. Holds the last good document, compiled, with
 * local overrides laid over it; sources (a document, a folder, the relay) feed it.
 */

import { canonicalJson } from "./canonical.js";
import { type DocumentInput, parseDocument } from "./document.js";
import { FlagsDocumentError } from "./errors.js";
import {
  type CompiledFlag,
  type EvaluationDetail,
  type FlagState,
  evaluateCompiledDetail,
  forcedFlag,
  instantOf,
} from "./evaluate.js";
import { murmur3From } from "./murmur3.js";
import { type RelayOptions, relayOrigin, resolveRelayUrl, startRelay } from "./relay.js";
import type { Instant } from "./rfc3339.js";

export interface Logger {
  warn(message: string): void;
  info?(message: string): void;
}

export interface FeatureFlagsOptions {
  /** Where load problems and source events are written; default `console`, null for silence. */
  readonly logger?: Logger | null | undefined;
}

export interface FromRelayOptions extends FeatureFlagsOptions, RelayOptions {
  /** A document to start from (e.g. the mounted file) until the relay answers. */
  readonly initialDocument?: DocumentInput | undefined;
}

export interface IsEnabledOptions {
  /** The user; null/undefined = the user context's, else no user. An empty string is a user id. */
  readonly userId?: string | null | undefined;
  readonly cohort?: string | null | undefined;
  /** The answer for a key the document does not have. */
  readonly default?: boolean | undefined;
}

/** What `onChange` listeners get: a new document, or an override set or cleared. */
export interface FlagsChange {
  readonly cause: "document" | "override";
  readonly revision: string | null;
  readonly previousRevision: string | null;
  /** Keys whose answer may have changed: added, removed or edited flags, or the overridden key. */
  readonly changed: readonly string[];
}

/** What `onError` listeners get: a document or source problem. The last good state stays in use. */
export interface FlagsProblem {
  /** The file path or relay address (no credentials) the problem came from. */
  readonly origin: string;
  readonly message: string;
  /** The revision still in use; null when none loaded yet (every key answers its default). */
  readonly keptRevision: string | null;
}

export interface FlagsStats {
  readonly loads: number;
  readonly errors: number;
  readonly lastError: string | null;
}

/** How a source feeds a `FeatureFlags` (see `FeatureFlags.fromSource`). */
export interface SourceSink {
  /** Take a document if it is valid; true when it is (changed or not), false when rejected and reported. */
  load(document: DocumentInput): boolean;
  /** Report a problem that is not the document's (unreachable relay, missing file). */
  fail(message: string): void;
  info(message: string): void;
  readonly revision: string | null;
}

export interface Source {
  close(): void | Promise<void>;
}

interface Snapshot {
  readonly flags: ReadonlyMap<string, CompiledFlag>;
  readonly revision: string | null;
}

const EMPTY: Snapshot = { flags: new Map(), revision: null };

function nowInstant(): Instant {
  return instantOf(undefined);
}

export class FeatureFlags {
  private snapshot: Snapshot = EMPTY;
  // What isEnabled reads: the document's flags with overrides laid over them,
  // rebuilt on every change so the hot path is one Map lookup.
  private effective: ReadonlyMap<string, CompiledFlag> = EMPTY.flags;
  private readonly overrides = new Map<string, boolean>();
  private contextUserId: string | null = null;
  private contextCohort: string | null = null;
  private readonly changeListeners = new Set<(change: FlagsChange) => void>();
  private readonly errorListeners = new Set<(problem: FlagsProblem) => void>();
  private readonly readyWaiters: Array<(loaded: boolean) => void> = [];
  private readonly sources: Source[] = [];
  private readonly logger: Logger | null;
  private closed = false;
  private loads = 0;
  private errors = 0;
  private lastError: string | null = null;

  /** An empty instance (every key answers its default) until `load` gives it a document. */
  constructor(options: FeatureFlagsOptions = {}) {
    this.logger = options.logger === undefined ? console : options.logger;
  }

  /** Flags from one `flags.json` document (text, bytes or parsed). Throws FlagsDocumentError if malformed. */
  static fromDocument(document: DocumentInput, options: FeatureFlagsOptions = {}): FeatureFlags {
    const flags = new FeatureFlags(options);
    flags.apply(parseDocument(document), "document");
    return flags;
  }

  /**
   * Flags that follow the relay's document stream at `url` (the relay's base address).
   * Until the first document arrives every key answers its default (see `ready()`);
   * after that a relay outage keeps the last good state. A relative `url` resolves
   * against the page (browsers); a query on it is kept on every request.
   * Throws TypeError when `url` is not a URL.
   */
  static fromRelay(url: string, options: FromRelayOptions = {}): FeatureFlags {
    const base = resolveRelayUrl(url);
    return FeatureFlags.fromSource(
      relayOrigin(base),
      (sink) => {
        if (options.initialDocument !== undefined) sink.load(options.initialDocument);
        return startRelay(base, sink, options);
      },
      options,
    );
  }

  /** Flags fed by a source: `start` gets a sink to load documents into and returns the source to close. */
  static fromSource(
    origin: string,
    start: (sink: SourceSink) => Source,
    options: FeatureFlagsOptions = {},
  ): FeatureFlags {
    const flags = new FeatureFlags(options);
    flags.sources.push(start(flags.sinkFor(origin)));
    return flags;
  }

  // -- evaluation ---------------------------------------------------------------------

  /** DESIGN.md's evaluation: override, then unknown key -> default, then the flag. */
  isEnabled(key: string, options?: IsEnabledOptions): boolean {
    const flag = this.effective.get(key);
    if (flag === undefined) return options?.default ?? false;
    let userId = options?.userId;
    let cohort = options?.cohort;
    if (userId == null) userId = this.contextUserId;
    if (cohort == null) cohort = this.contextCohort;
    if (flag.plain) {
      // Steps 4 and 6 inlined for the common case.
      if (cohort !== null && flag.cohorts.has(cohort)) return true;
      if (userId === null) return false;
      return murmur3From(flag.prefix, typeof userId === "string" ? userId : String(userId)) % 100 < flag.percent;
    }
    return evaluateCompiledDetail(flag, userId, cohort, nowInstant).value;
  }

  /** `isEnabled` with the reason; an unknown key gives `{value: default, reason: "DEFAULT"}`. */
  isEnabledDetail(key: string, options?: IsEnabledOptions): EvaluationDetail {
    const flag = this.effective.get(key);
    if (flag === undefined) return { value: options?.default ?? false, reason: "DEFAULT" };
    return evaluateCompiledDetail(
      flag,
      options?.userId ?? this.contextUserId,
      options?.cohort ?? this.contextCohort,
      nowInstant,
    );
  }

  /**
   * The user (and cohort) `isEnabled` uses when a call does not name them. Instance-wide:
   * meant for a browser tab or a CLI acting for one user; servers pass `userId` per call.
   */
  setUserContext(userId: string | null | undefined, cohort?: string | null): void {
    this.contextUserId = userId ?? null;
    this.contextCohort = cohort ?? null;
  }

  /** Force `key` to `value` locally, above everything the document says (also for unknown keys). */
  setOverride(key: string, value: boolean): void {
    const had = this.overrides.get(key);
    this.overrides.set(key, Boolean(value));
    this.rebuild();
    if (had !== Boolean(value)) this.emitChange("override", this.snapshot.revision, [key]);
  }

  clearOverride(key: string): void {
    if (!this.overrides.delete(key)) return;
    this.rebuild();
    this.emitChange("override", this.snapshot.revision, [key]);
  }

  /** Revision of the document in use; null until one loaded. */
  get revision(): string | null {
    return this.snapshot.revision;
  }

  get stats(): FlagsStats {
    return { loads: this.loads, errors: this.errors, lastError: this.lastError };
  }

  /** The document's flag keys, sorted (overrides do not show here). */
  keys(): string[] {
    return [...this.snapshot.flags.keys()].sort();
  }

  /** A copy of the flag's `flags.json` entry, or undefined for an unknown key. */
  get(key: string): FlagState | undefined {
    const flag = this.snapshot.flags.get(key);
    return flag === undefined ? undefined : structuredClone(flag.state) as FlagState;
  }

  // -- loading ------------------------------------------------------------------------

  /**
   * Take a new document. A malformed one is reported (log, `onError`, `stats`) and
   * the last good state stays in use. True when the document is valid and in use.
   */
  load(document: DocumentInput, origin = "document"): boolean {
    let parsed;
    try {
      parsed = parseDocument(document);
    } catch (err) {
      this.report(origin, err instanceof FlagsDocumentError ? err.message : "unexpected error reading the document");
      return false;
    }
    this.apply(parsed, origin);
    return true;
  }

  /** Resolves true once a document is in use, false if closed before one arrived. */
  ready(): Promise<boolean> {
    if (this.snapshot.revision !== null) return Promise.resolve(true);
    if (this.closed) return Promise.resolve(false);
    return new Promise((resolve) => this.readyWaiters.push(resolve));
  }

  // -- listeners ----------------------------------------------------------------------

  /** Call `listener` after every change of what `isEnabled` may answer. Returns the unsubscribe function. */
  onChange(listener: (change: FlagsChange) => void): () => void {
    this.changeListeners.add(listener);
    return () => this.changeListeners.delete(listener);
  }

  /** Call `listener` on every rejected document or source problem. Returns the unsubscribe function. */
  onError(listener: (problem: FlagsProblem) => void): () => void {
    this.errorListeners.add(listener);
    return () => this.errorListeners.delete(listener);
  }

  /** Stop every source. Evaluation keeps answering from the last state. */
  async close(): Promise<void> {
    if (this.closed) return;
    this.closed = true;
    for (const resolve of this.readyWaiters.splice(0)) resolve(false);
    await Promise.all(this.sources.splice(0).map((source) => source.close()));
  }

  // -- internals ----------------------------------------------------------------------

  private sinkFor(origin: string): SourceSink {
    const snapshotOf = (): Snapshot => this.snapshot;
    return {
      load: (document) => this.load(document, origin),
      fail: (message) => this.report(origin, message),
      info: (message) => this.logger?.info?.(`flags from ${origin}: ${message}`),
      get revision() {
        return snapshotOf().revision;
      },
    };
  }

  private apply(parsed: { revision: string; flags: ReadonlyMap<string, CompiledFlag> }, origin: string): void {
    this.loads++;
    const previous = this.snapshot;
    if (parsed.revision === previous.revision) return;
    const changed = changedKeys(previous.flags, parsed.flags);
    this.snapshot = { flags: parsed.flags, revision: parsed.revision };
    this.rebuild();
    this.logger?.info?.(`flags from ${origin}: revision ${parsed.revision}, ${parsed.flags.size} flags`);
    for (const resolve of this.readyWaiters.splice(0)) resolve(true);
    this.emitChange("document", previous.revision, changed);
  }

  private rebuild(): void {
    if (this.overrides.size === 0) {
      this.effective = this.snapshot.flags;
      return;
    }
    const effective = new Map(this.snapshot.flags);
    for (const [key, value] of this.overrides) effective.set(key, forcedFlag(key, value));
    this.effective = effective;
  }

  private emitChange(cause: FlagsChange["cause"], previousRevision: string | null, changed: string[]): void {
    const change: FlagsChange = { cause, revision: this.snapshot.revision, previousRevision, changed };
    for (const listener of [...this.changeListeners]) {
      try {
        listener(change);
      } catch {
        this.logger?.warn("flags onChange listener threw; other listeners still ran");
      }
    }
  }

  private report(origin: string, message: string): void {
    this.errors++;
    this.lastError = message;
    const kept = this.snapshot.revision;
    this.logger?.warn(
      `flags from ${origin} not loaded: ${message}; keeping revision ${kept ?? "none (all flags default)"}`,
    );
    const problem: FlagsProblem = { origin, message, keptRevision: kept };
    for (const listener of [...this.errorListeners]) {
      try {
        listener(problem);
      } catch {
        this.logger?.warn("flags onError listener threw; other listeners still ran");
      }
    }
  }
}

function changedKeys(
  before: ReadonlyMap<string, CompiledFlag>,
  after: ReadonlyMap<string, CompiledFlag>,
): string[] {
  const changed: string[] = [];
  for (const [key, flag] of after) {
    const old = before.get(key);
    if (old === undefined || canonicalJson(old.state) !== canonicalJson(flag.state)) changed.push(key);
  }
  for (const key of before.keys()) if (!after.has(key)) changed.push(key);
  return changed.sort();
}
