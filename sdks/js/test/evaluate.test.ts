/** Hashing, dates and reasons: what the vectors pin only indirectly. */

import assert from "node:assert/strict";
import { createHash } from "node:crypto";
import { test } from "node:test";

import { bucket, evaluate, evaluateDetail, FlagsDocumentError, murmur3, murmur3Bytes, parseRfc3339 } from "../src/index.js";
import { hashPrefix, murmur3From } from "../src/murmur3.js";
import { sha256Hex } from "../src/sha256.js";

const utf8 = new TextEncoder();

test("murmur3 matches published MurmurHash3 x86_32 values", () => {
  assert.equal(murmur3Bytes(new Uint8Array()), 0);
  assert.equal(murmur3("hello"), 0x248bfa47);
  assert.equal(murmur3("The quick brown fox jumps over the lazy dog"), 0x2e4ff723);
});

test("murmur3 over a string equals murmur3 over its UTF-8 bytes, for every tail length and script", () => {
  const pieces = ["a", "é", "用", "😀", "👩‍💻", "\u0800", "\uffff", "\u{10ffff}", "0"];
  for (let i = 0; i < 2000; i++) {
    let text = "";
    for (let n = i % 13; n >= 0; n--) text += pieces[(i * 7 + n * 3) % pieces.length];
    assert.equal(murmur3(text), murmur3Bytes(utf8.encode(text)), JSON.stringify(text));
    const points = Array.from(text); // split between code points, never inside a surrogate pair
    const split = i % (points.length + 1);
    const prefix = hashPrefix(points.slice(0, split).join(""));
    assert.equal(murmur3From(prefix, points.slice(split).join("")), murmur3(text));
  }
});

test("lone surrogates hash as their WTF-8 bytes, the buckets the Python SDK gives (surrogatepass)", () => {
  // Buckets from flagops.flags.evaluate.bucket (Python, mmh3 over str.encode("utf-8", "surrogatepass")).
  assert.equal(bucket("calendar_sync", "\ud800"), 27);
  assert.equal(bucket("calendar_sync", "a\udfffb"), 4);
  assert.equal(bucket("calendar_sync", "\ude00\ud83d"), 1);
  assert.equal(bucket("k", "x\ud83d"), 67);
  assert.equal(bucket("calendar_sync", "😀\ud83d"), 42);
  assert.equal(murmur3("\ud800"), murmur3Bytes(new Uint8Array([0xed, 0xa0, 0x80])));
});

test("sha256 matches node:crypto", () => {
  for (const length of [0, 1, 55, 56, 63, 64, 65, 119, 120, 1000, 100_000]) {
    const data = new Uint8Array(length).map((_, i) => (i * 31 + length) & 0xff);
    assert.equal(sha256Hex(data), createHash("sha256").update(data).digest("hex"), `length ${length}`);
  }
});

test("RFC 3339: offsets, fractions truncated to microseconds, invalid dates rejected", () => {
  assert.deepEqual(parseRfc3339("1970-01-01T00:00:00Z"), { seconds: 0, micros: 0 });
  assert.deepEqual(parseRfc3339("2026-06-01T14:00:00+02:00"), parseRfc3339("2026-06-01T12:00:00Z"));
  assert.deepEqual(parseRfc3339("2026-06-01t12:00:00.1234567z").micros, 123456);
  assert.deepEqual(parseRfc3339("0001-01-01T00:00:00Z").seconds, -62135596800);
  assert.equal(parseRfc3339("2024-02-29T00:00:00Z").seconds, Date.UTC(2024, 1, 29) / 1000);
  for (const bad of ["2026-02-29T00:00:00Z", "2026-06-01T24:00:00Z", "2026-06-01T12:00:60Z", "2026-06-01",
    "2026-06-01T12:00:00", "0000-01-01T00:00:00Z", "2026-13-01T00:00:00Z", "2026-06-01T12:00:00+24:00", " 2026-06-01T12:00:00Z"]) {
    assert.throws(() => parseRfc3339(bad), RangeError, bad);
  }
});

test("reasons: DISABLED, TARGETING_MATCH, STATIC, SPLIT (0% too), DEFAULT", () => {
  const flag = (over: object): object => ({ enabled: true, rolloutPercent: 25, allowedCohorts: ["beta"], ...over });
  const now = "2026-06-01T12:00:00Z";
  assert.deepEqual(evaluateDetail(flag({ enabled: false }), "k", { cohort: "beta" }), { value: false, reason: "DISABLED" });
  assert.deepEqual(evaluateDetail(flag({ endDate: now }), "k", { cohort: "beta", now }), { value: false, reason: "DISABLED" });
  assert.deepEqual(evaluateDetail(flag({}), "k", { cohort: "beta" }), { value: true, reason: "TARGETING_MATCH" });
  assert.deepEqual(evaluateDetail(flag({ allowedCohorts: ["all"] }), "k"), { value: true, reason: "TARGETING_MATCH" });
  assert.deepEqual(evaluateDetail(flag({ rolloutPercent: 100 }), "k"), { value: true, reason: "STATIC" });
  assert.deepEqual(evaluateDetail(flag({ rolloutPercent: 0 }), "k"), { value: false, reason: "SPLIT" });
  assert.deepEqual(evaluateDetail(flag({ rolloutPercent: 0 }), "k", { userId: "u" }), { value: false, reason: "SPLIT" });
  assert.deepEqual(evaluateDetail(flag({}), "k", { userId: null }), { value: false, reason: "DEFAULT" });
  const split = evaluateDetail(flag({ rolloutPercent: 50 }), "calendar_sync", { userId: "user-1" });
  assert.deepEqual(split, { value: bucket("calendar_sync", "user-1") <= 50, reason: "SPLIT" });
});

test("a bad now is refused even for a flag without a window", () => {
  assert.throws(() => evaluate({ enabled: true, rolloutPercent: 100 }, "k", { now: "yesterday" }), RangeError);
  assert.throws(() => evaluate({ enabled: true, rolloutPercent: 100 }, "k", { now: new Date("x") }), RangeError);
});

test("the empty string is a user id; null and undefined are not", () => {
  const state = { enabled: true, rolloutPercent: 56 };
  assert.equal(bucket("calendar_sync", ""), 56);
  assert.equal(evaluate(state, "calendar_sync", { userId: "" }), true);
  assert.equal(evaluate(state, "calendar_sync", { userId: null }), false);
  assert.equal(evaluate(state, "calendar_sync", {}), false);
});

test("a malformed entry throws FlagsDocumentError naming the flag, never the value", () => {
  const bad: Array<[object | null, string]> = [
    [null, "must be a JSON object"],
    [{ enabled: "yes", rolloutPercent: 1 }, "enabled"],
    [{ enabled: true, rolloutPercent: 101 }, "rolloutPercent"],
    [{ enabled: true, rolloutPercent: 2.5 }, "rolloutPercent"],
    [{ enabled: true, rolloutPercent: 1, allowedCohorts: [1] }, "allowedCohorts"],
    [{ enabled: true, rolloutPercent: 1, startDate: "secret-2026" }, "RFC 3339"],
    [{ enabled: true, rolloutPercent: 1, endDate: 5 }, "dates"],
  ];
  for (const [state, words] of bad) {
    assert.throws(
      () => evaluate(state, "k"),
      (err: unknown) => err instanceof FlagsDocumentError && err.message.includes('"k"') && err.message.includes(words) && !err.message.includes("secret"),
      JSON.stringify(state),
    );
  }
});
