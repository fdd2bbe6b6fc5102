/**
 * The published flag document: `flags.json` (DESIGN.md, "The flag ConfigMap").
 *
 *     {"schema": 1, "revision": "<sha256 of the canonical flags object>",
 *      "flags": {"<key>": {"enabled": ..., "rolloutPercent": ..., ...}}}
 *
 * Checked as strictly as the Python SDK checks it: a document with a wrong
 * schema, a revision that does not match its flags, or any invalid entry is
 * rejected whole, so a reader keeps its last good state instead.
 */

import { canonicalJson } from "./canonical.js";
import { FlagsDocumentError } from "./errors.js";
import { type CompiledFlag, type FlagState, compileFlag } from "./evaluate.js";
import { sha256Hex } from "./sha256.js";

export const SCHEMA_VERSION = 1;

/** A validated document: its revision and every flag, compiled. */
export interface ParsedDocument {
  readonly revision: string;
  readonly flags: ReadonlyMap<string, CompiledFlag>;
}

/** What `parseDocument` takes: the JSON text, its UTF-8 bytes, or the parsed object. */
export type DocumentInput = string | Uint8Array | object;

const utf8Encoder = new TextEncoder();

/** sha256 hex of the canonical JSON of a document's `flags` object. */
export function revisionOf(flags: object): string {
  return sha256Hex(utf8Encoder.encode(canonicalJson(flags)));
}

/** The canonical `flags.json` text for `flags` and its revision (what the operator writes). */
export function buildDocument(flags: Readonly<Record<string, FlagState>>): {
  text: string;
  revision: string;
} {
  const entries: Record<string, unknown> = {};
  for (const key of Object.keys(flags)) entries[key] = checkedFlag(key, flags[key]).state;
  const revision = revisionOf(entries);
  return { text: canonicalJson({ schema: SCHEMA_VERSION, revision, flags: entries }), revision };
}

function isObject(value: unknown): value is Record<string, unknown> {
  return typeof value === "object" && value !== null && !Array.isArray(value);
}

function toObject(input: DocumentInput): unknown {
  if (typeof input !== "string" && !(input instanceof Uint8Array)) return input;
  let text: string;
  try {
    text = typeof input === "string" ? input : new TextDecoder("utf-8", { fatal: true }).decode(input);
  } catch {
    throw new FlagsDocumentError("flags document is not valid JSON: not UTF-8");
  }
  try {
    return JSON.parse(text) as unknown;
  } catch {
    // V8's message quotes the text: never pass it on.
    throw new FlagsDocumentError("flags document is not valid JSON");
  }
}

// The stricter checks of the Python SDK's FlagState model, over what compileFlag checks.
function checkedFlag(key: string, entry: unknown): CompiledFlag {
  if (typeof key !== "string" || key === "") throw new FlagsDocumentError("flag keys must be non-empty strings");
  if (!isObject(entry)) throw new FlagsDocumentError(`flag ${JSON.stringify(key)}: must be a JSON object`);
  const problem = (field: string, want: string): FlagsDocumentError =>
    new FlagsDocumentError(`flag ${JSON.stringify(key)}: ${field} must be ${want}`);
  if (!("rolloutPercent" in entry)) throw problem("rolloutPercent", "present");
  if (entry["allowedCohorts"] === null) throw problem("allowedCohorts", "a list of strings");
  for (const field of ["stage", "startDate", "endDate"]) {
    const value = entry[field];
    if (value !== undefined && value !== null && typeof value !== "string") throw problem(field, "a string or null");
  }
  if (entry["metadata"] !== undefined && !isObject(entry["metadata"])) throw problem("metadata", "an object");
  return compileFlag(key, entry);
}

/**
 * Validate a `flags.json` document and compile its flags. Unknown per-flag fields
 * are ignored, so an older app keeps following a newer operator.
 * Throws FlagsDocumentError naming the problem (never echoing the document).
 */
export function parseDocument(input: DocumentInput): ParsedDocument {
  const doc = toObject(input);
  if (!isObject(doc)) throw new FlagsDocumentError("flags document must be a JSON object");
  if (doc["schema"] !== SCHEMA_VERSION) {
    throw new FlagsDocumentError(`flags document has unsupported schema (expected ${SCHEMA_VERSION})`);
  }
  const flagsObj = doc["flags"];
  if (!isObject(flagsObj)) throw new FlagsDocumentError("flags document has no 'flags' object");
  const revision = doc["revision"];
  if (typeof revision !== "string") throw new FlagsDocumentError("flags document has no 'revision' string");
  let computed: string;
  try {
    computed = revisionOf(flagsObj);
  } catch {
    throw new FlagsDocumentError("flags document holds values JSON cannot");
  }
  if (revision !== computed) throw new FlagsDocumentError("flags document revision does not match its flags");
  const flags = new Map<string, CompiledFlag>();
  for (const key of Object.keys(flagsObj)) flags.set(key, checkedFlag(key, flagsObj[key]));
  return { revision, flags };
}
