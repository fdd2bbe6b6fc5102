/** Every case of tests/vectors/evaluation.json, through each way the SDK evaluates. */

import assert from "node:assert/strict";
import { readFileSync } from "node:fs";
import { test } from "node:test";

import { FeatureFlags, bucket, buildDocument, evaluate, evaluateDetail, type FlagState } from "../src/index.js";
import { repoFile } from "./helpers.js";

interface VectorCase {
  name: string;
  state: FlagState;
  key: string;
  userId: string | null;
  cohort: string | null;
  now: string;
  expected: boolean;
  unleashBucket?: number;
}

const vectors = JSON.parse(readFileSync(repoFile("tests/vectors/evaluation.json"), "utf8")) as {
  cases: VectorCase[];
};

function label(c: VectorCase, index: number): string {
  return `#${index} ${c.name} (key ${c.key}, user ${JSON.stringify(c.userId)}, cohort ${JSON.stringify(c.cohort)})`;
}

test("the vectors file has cases", () => {
  assert.ok(vectors.cases.length >= 500, `only ${vectors.cases.length} cases`);
});

test("evaluate() passes every vector", () => {
  vectors.cases.forEach((c, i) => {
    const got = evaluate(c.state, c.key, { userId: c.userId, cohort: c.cohort, now: c.now });
    assert.equal(got, c.expected, label(c, i));
  });
});

test("evaluate() with now as a Date agrees where the vector's instant has whole milliseconds", () => {
  let checked = 0;
  vectors.cases.forEach((c, i) => {
    const now = new Date(c.now);
    if (!/\.\d{4,}/.test(c.now)) {
      checked++;
      assert.equal(evaluate(c.state, c.key, { userId: c.userId, cohort: c.cohort, now }), c.expected, label(c, i));
    }
  });
  assert.ok(checked > 500);
});

test("evaluateDetail() gives the vector's value and a reason that fits it", () => {
  vectors.cases.forEach((c, i) => {
    const { value, reason } = evaluateDetail(c.state, c.key, { userId: c.userId, cohort: c.cohort, now: c.now });
    assert.equal(value, c.expected, label(c, i));
    const expectedReasons = value ? ["TARGETING_MATCH", "STATIC", "SPLIT"] : ["DISABLED", "SPLIT", "DEFAULT"];
    assert.ok(expectedReasons.includes(reason), `${label(c, i)}: reason ${reason}`);
  });
});

test("FeatureFlags.isEnabled passes every vector without a date window", () => {
  let checked = 0;
  vectors.cases.forEach((c, i) => {
    if (c.state.startDate != null || c.state.endDate != null) return;
    checked++;
    const flags = FeatureFlags.fromDocument(buildDocument({ [c.key]: c.state }).text, { logger: null });
    const got = flags.isEnabled(c.key, { userId: c.userId, cohort: c.cohort, default: !c.expected });
    assert.equal(got, c.expected, label(c, i));
  });
  assert.ok(checked > 400);
});

test("buckets equal Unleash's normalizedHash where the vectors know it", () => {
  const known = vectors.cases.filter((c) => c.unleashBucket !== undefined);
  assert.ok(known.length >= 10);
  for (const c of known) assert.equal(bucket(c.key, c.userId as string), c.unleashBucket, `${c.key}:${c.userId}`);
});
