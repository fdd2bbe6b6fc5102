/** flags.json: the same canonical text and revision as the Python operator, and strict checks. */

import assert from "node:assert/strict";
import { test } from "node:test";

import { buildDocument, FlagsDocumentError, parseDocument, revisionOf } from "../src/index.js";
import { canonicalJson } from "../src/canonical.js";
import { fixture } from "./helpers.js";

// Written by flagops.flags.build_document (Python): non-ASCII and astral keys, control characters.
const pythonText = fixture("python-document.json");

test("a document the Python operator wrote parses, and its revision checks out", () => {
  const parsed = parseDocument(pythonText);
  const doc = JSON.parse(pythonText) as { revision: string; flags: object };
  assert.equal(parsed.revision, doc.revision);
  assert.equal(revisionOf(doc.flags), doc.revision);
  assert.deepEqual([...parsed.flags.keys()].sort(), Object.keys(doc.flags).sort());
});

test("canonical JSON reproduces the Python text byte for byte (code point key order, escapes)", () => {
  assert.equal(canonicalJson(JSON.parse(pythonText)), pythonText);
});

test("buildDocument writes what parseDocument reads, whatever the key order", () => {
  const a = buildDocument({ b: { enabled: true, rolloutPercent: 5 }, a: { enabled: false, rolloutPercent: 0 } });
  const b = buildDocument({ a: { enabled: false, rolloutPercent: 0 }, b: { enabled: true, rolloutPercent: 5 } });
  assert.equal(a.text, b.text);
  assert.equal(parseDocument(a.text).revision, a.revision);
  assert.deepEqual(parseDocument(new TextEncoder().encode(a.text)).flags.get("b")?.state, {
    allowedCohorts: [],
    enabled: true,
    endDate: null,
    metadata: {},
    rolloutPercent: 5,
    stage: null,
    startDate: null,
  });
});

test("unknown per-flag fields are ignored, so an old app follows a newer operator", () => {
  const flags = { k: { enabled: true, rolloutPercent: 10, futureField: { x: 1 } } };
  const parsed = parseDocument({ schema: 1, revision: revisionOf(flags), flags });
  assert.equal(parsed.flags.get("k")?.percent, 10);
});

function withFlags(flags: Record<string, unknown>): object {
  return { schema: 1, revision: revisionOf(flags), flags };
}

test("malformed documents are rejected with a reason that never echoes their content", () => {
  const good = { enabled: true, rolloutPercent: 10 };
  const cases: Array<[unknown, string]> = [
    ['{"schema": 1, "flags": {"secret-value', "not valid JSON"],
    [new Uint8Array([0xff, 0xfe, 0x7b]), "not UTF-8"],
    ["[]", "must be a JSON object"],
    [{ schema: 2, revision: revisionOf({}), flags: {} }, "unsupported schema"],
    [{ schema: 1, revision: revisionOf({}) }, "no 'flags' object"],
    [{ schema: 1, flags: {} }, "no 'revision' string"],
    [{ schema: 1, revision: revisionOf({}), flags: { k: good } }, "revision does not match"],
    [withFlags({ "": good }), "non-empty"],
    [withFlags({ k: { enabled: true } }), "rolloutPercent must be present"],
    [withFlags({ k: { ...good, rolloutPercent: -1 } }), "rolloutPercent"],
    [withFlags({ k: { ...good, allowedCohorts: null } }), "allowedCohorts"],
    [withFlags({ k: { ...good, stage: 3 } }), "stage"],
    [withFlags({ k: { ...good, metadata: "secret-value" } }), "metadata"],
    [withFlags({ k: { ...good, startDate: "secret-value" } }), "RFC 3339"],
    [withFlags({ ok: good, k: [] }), "must be a JSON object"],
  ];
  for (const [input, words] of cases) {
    assert.throws(
      () => parseDocument(input as string),
      (err: unknown) =>
        err instanceof FlagsDocumentError && err.message.includes(words) && !err.message.includes("secret"),
      `${words}: ${String(input).slice(0, 40)}`,
    );
  }
});

test("flag keys that are Object.prototype names are ordinary flags", () => {
  const parsed = parseDocument(withFlags({ constructor: { enabled: true, rolloutPercent: 100 } }));
  assert.equal(parsed.flags.get("constructor")?.enabled, true);
  assert.equal(parsed.flags.get("toString"), undefined);
});
