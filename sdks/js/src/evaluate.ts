/**
 * The normative flag evaluation (DESIGN.md, "Evaluation"), steps 3 to 6.
 *
 * Overrides (step 1) and unknown keys (step 2) belong to `FeatureFlags`. A flag
 * entry is compiled once into a `CompiledFlag` so the hot path parses nothing.
 */

import { FlagsDocumentError } from "./errors.js";
import { type HashState, hashPrefix, murmur3From } from "./murmur3.js";
import { type Instant, compareInstants, instantOfDate, instantOfMillis, parseRfc3339 } from "./rfc3339.js";

export const ALL_COHORTS = "all";

/** One flag's entry in `flags.json` (schema 1). */
export interface FlagState {
  readonly enabled: boolean;
  readonly rolloutPercent: number;
  readonly allowedCohorts?: readonly string[];
  readonly startDate?: string | null;
  readonly endDate?: string | null;
  readonly stage?: string | null;
  readonly metadata?: Readonly<Record<string, unknown>>;
}

/** Why a flag evaluated as it did; the OFREP reasons the relay also uses. */
export type Reason = "DISABLED" | "TARGETING_MATCH" | "STATIC" | "SPLIT" | "DEFAULT";

export interface EvaluationDetail {
  readonly value: boolean;
  readonly reason: Reason;
}

export interface EvaluationContext {
  /** The user; null/undefined = no user. An empty string is a user id, as in Unleash. */
  readonly userId?: string | null | undefined;
  readonly cohort?: string | null | undefined;
  /** When to evaluate the `[startDate, endDate)` window: a Date or an RFC 3339 text; default now. */
  readonly now?: Date | string | undefined;
}

/** One flag's state, validated and parsed once, ready for the hot path. */
export interface CompiledFlag {
  readonly key: string;
  readonly enabled: boolean;
  readonly percent: number;
  readonly cohorts: ReadonlySet<string>;
  readonly allCohorts: boolean;
  readonly start: Instant | null;
  readonly end: Instant | null;
  readonly windowed: boolean;
  /** enabled, no dates, no "all", 0 < percent < 100: the shortcut `FeatureFlags` takes. */
  readonly plain: boolean;
  /** murmur3 state after `"<key>:"`. */
  readonly prefix: HashState;
  /** The entry as `flags.json` writes it: every field present, frozen. */
  readonly state: Readonly<Required<FlagState>>;
}

function isObject(value: unknown): value is Record<string, unknown> {
  return typeof value === "object" && value !== null && !Array.isArray(value);
}

function describeKey(key: string): string {
  return JSON.stringify(key);
}

function dateOf(key: string, value: unknown): Instant | null {
  if (value === null || value === undefined) return null;
  if (typeof value !== "string") {
    throw new FlagsDocumentError(`flag ${describeKey(key)}: dates must be RFC 3339 strings or null`);
  }
  try {
    return parseRfc3339(value);
  } catch (err) {
    throw new FlagsDocumentError(`flag ${describeKey(key)}: ${(err as Error).message}`);
  }
}

/** Compile one flag's `flags.json` entry. Throws FlagsDocumentError on a malformed entry. */
export function compileFlag(key: string, state: unknown): CompiledFlag {
  if (!isObject(state)) throw new FlagsDocumentError(`flag ${describeKey(key)}: must be a JSON object`);
  const enabled = state["enabled"];
  const percent = state["rolloutPercent"] ?? 0;
  const cohorts = state["allowedCohorts"] ?? [];
  if (typeof enabled !== "boolean") {
    throw new FlagsDocumentError(`flag ${describeKey(key)}: enabled must be a boolean`);
  }
  if (typeof percent !== "number" || !Number.isInteger(percent) || percent < 0 || percent > 100) {
    throw new FlagsDocumentError(`flag ${describeKey(key)}: rolloutPercent must be an integer 0..100`);
  }
  if (!Array.isArray(cohorts) || !cohorts.every((c) => typeof c === "string")) {
    throw new FlagsDocumentError(`flag ${describeKey(key)}: allowedCohorts must be a list of strings`);
  }
  const start = dateOf(key, state["startDate"]);
  const end = dateOf(key, state["endDate"]);
  const cohortSet: ReadonlySet<string> = new Set(cohorts as string[]);
  const windowed = start !== null || end !== null;
  const allCohorts = cohortSet.has(ALL_COHORTS);
  return {
    key,
    enabled,
    percent,
    cohorts: cohortSet,
    allCohorts,
    start,
    end,
    windowed,
    plain: enabled && !windowed && !allCohorts && percent > 0 && percent < 100,
    prefix: hashPrefix(`${key}:`),
    state: Object.freeze({
      allowedCohorts: Object.freeze([...(cohorts as string[])]),
      enabled,
      endDate: (state["endDate"] as string | null | undefined) ?? null,
      metadata: Object.freeze({ ...(isObject(state["metadata"]) ? state["metadata"] : {}) }),
      rolloutPercent: percent,
      stage: typeof state["stage"] === "string" ? state["stage"] : null,
      startDate: (state["startDate"] as string | null | undefined) ?? null,
    }),
  };
}

/** A flag that is `value` for everyone: how `FeatureFlags` applies an override. */
export function forcedFlag(key: string, value: boolean): CompiledFlag {
  return compileFlag(key, { enabled: value, rolloutPercent: 100, allowedCohorts: [ALL_COHORTS] });
}

/** The instant of `now` (a Date, an RFC 3339 text, or undefined for the current time). */
export function instantOf(now: Date | string | undefined): Instant {
  if (now === undefined) return instantOfMillis(Date.now());
  if (typeof now === "string") return parseRfc3339(now);
  return instantOfDate(now);
}

function outsideWindow(flag: CompiledFlag, now: Instant): boolean {
  return (
    (flag.start !== null && compareInstants(now, flag.start) < 0) ||
    (flag.end !== null && compareInstants(now, flag.end) >= 0)
  );
}

/** Steps 3-6 over a compiled flag, with the reason. `now` is only read for a windowed flag. */
export function evaluateCompiledDetail(
  flag: CompiledFlag,
  userId: string | null | undefined,
  cohort: string | null | undefined,
  now: () => Instant,
): EvaluationDetail {
  if (!flag.enabled || (flag.windowed && outsideWindow(flag, now()))) return DISABLED;
  if (flag.allCohorts || (cohort != null && flag.cohorts.has(cohort))) return TARGETING_MATCH;
  const percent = flag.percent;
  if (percent >= 100) return STATIC;
  if (percent <= 0) return SPLIT_OFF;
  if (userId == null) return NO_USER;
  return murmur3From(flag.prefix, String(userId)) % 100 < percent ? SPLIT_ON : SPLIT_OFF;
}

const DISABLED: EvaluationDetail = Object.freeze({ value: false, reason: "DISABLED" });
const TARGETING_MATCH: EvaluationDetail = Object.freeze({ value: true, reason: "TARGETING_MATCH" });
const STATIC: EvaluationDetail = Object.freeze({ value: true, reason: "STATIC" });
const SPLIT_ON: EvaluationDetail = Object.freeze({ value: true, reason: "SPLIT" });
const SPLIT_OFF: EvaluationDetail = Object.freeze({ value: false, reason: "SPLIT" });
const NO_USER: EvaluationDetail = Object.freeze({ value: false, reason: "DEFAULT" });

/**
 * Whether flag `key` with `flags.json` entry `state` (a `FlagState`) is on for this
 * user at `now`. Throws FlagsDocumentError on a malformed entry, RangeError on a bad `now`.
 */
export function evaluate(state: unknown, key: string, context: EvaluationContext = {}): boolean {
  return evaluateDetail(state, key, context).value;
}

/**
 * `evaluate` with the reason: DISABLED (off or outside the window), TARGETING_MATCH
 * (a cohort decided), STATIC (100%), SPLIT (the percentage decided, 0% included),
 * DEFAULT (0 < percent < 100 but no user id). Throws FlagsDocumentError on a malformed entry.
 */
export function evaluateDetail(
  state: unknown,
  key: string,
  context: EvaluationContext = {},
): EvaluationDetail {
  const flag = compileFlag(key, state);
  const now = instantOf(context.now); // checked even when the flag has no window
  return evaluateCompiledDetail(flag, context.userId, context.cohort, () => now);
}
