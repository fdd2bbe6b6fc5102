/** FeatureFlags over a document: overrides, user context, listeners, last good state. */

import assert from "node:assert/strict";
import { test } from "node:test";

import { bucket, buildDocument, FeatureFlags, FlagsDocumentError, type FlagsChange, type FlagState } from "../src/index.js";
import { FakeLogger } from "./helpers.js";

const KEY = "calendar_sync";

function doc(flags: Record<string, FlagState>): string {
  return buildDocument(flags).text;
}

function users(count: number): string[] {
  return Array.from({ length: count }, (_, i) => `user-${i}`);
}

const base = doc({ [KEY]: { enabled: true, rolloutPercent: 25, allowedCohorts: ["beta"] } });

test("isEnabled: unknown key gives the default, the percentage follows the buckets", () => {
  const flags = FeatureFlags.fromDocument(base, { logger: null });
  assert.equal(flags.isEnabled("nope"), false);
  assert.equal(flags.isEnabled("nope", { default: true }), true);
  assert.equal(flags.isEnabled(KEY), false, "no user: off");
  assert.equal(flags.isEnabled(KEY, { cohort: "beta" }), true);
  for (const u of users(500)) assert.equal(flags.isEnabled(KEY, { userId: u }), bucket(KEY, u) <= 25, u);
  assert.deepEqual(flags.keys(), [KEY]);
  assert.equal(flags.get(KEY)?.rolloutPercent, 25);
  assert.equal(flags.get("nope"), undefined);
});

test("get() returns a copy: editing it changes nothing", () => {
  const flags = FeatureFlags.fromDocument(base, { logger: null });
  const entry = flags.get(KEY) as { rolloutPercent: number };
  entry.rolloutPercent = 100;
  assert.equal(flags.get(KEY)?.rolloutPercent, 25);
});

test("setUserContext fills in what a call leaves out, each part separately", () => {
  const flags = FeatureFlags.fromDocument(base, { logger: null });
  const on = users(200).find((u) => bucket(KEY, u) <= 25) as string;
  const off = users(200).find((u) => bucket(KEY, u) > 25) as string;
  flags.setUserContext(on);
  assert.equal(flags.isEnabled(KEY), true);
  assert.equal(flags.isEnabled(KEY, { userId: off }), false);
  flags.setUserContext(off, "beta");
  assert.equal(flags.isEnabled(KEY), true, "cohort from the context");
  assert.equal(flags.isEnabledDetail(KEY).reason, "TARGETING_MATCH");
  flags.setUserContext(null);
  assert.equal(flags.isEnabled(KEY), false);
  assert.deepEqual(flags.isEnabledDetail(KEY), { value: false, reason: "DEFAULT" });
});

test("overrides win, also for unknown keys, and notify listeners", () => {
  const flags = FeatureFlags.fromDocument(base, { logger: null });
  const changes: FlagsChange[] = [];
  flags.onChange((c) => changes.push(c));
  flags.setOverride(KEY, true);
  flags.setOverride("unknown", true);
  assert.equal(flags.isEnabled(KEY), true);
  assert.equal(flags.isEnabled("unknown"), true);
  flags.setOverride(KEY, false);
  assert.equal(flags.isEnabled(KEY, { cohort: "beta" }), false);
  flags.clearOverride(KEY);
  assert.equal(flags.isEnabled(KEY, { cohort: "beta" }), true);
  flags.clearOverride(KEY); // no override left: no event
  assert.deepEqual(
    changes.map((c) => [c.cause, c.changed]),
    [["override", [KEY]], ["override", ["unknown"]], ["override", [KEY]], ["override", [KEY]]],
  );
  assert.equal(flags.keys().includes("unknown"), false);
});

test("a new document notifies with the changed keys; the same revision notifies nothing", () => {
  const flags = FeatureFlags.fromDocument(base, { logger: null });
  const changes: FlagsChange[] = [];
  const unsubscribe = flags.onChange((c) => changes.push(c));
  const first = flags.revision;
  const next = doc({
    [KEY]: { enabled: true, rolloutPercent: 50, allowedCohorts: ["beta"] },
    other: { enabled: true, rolloutPercent: 100 },
  });
  assert.equal(flags.load(next), true);
  assert.equal(flags.load(next), true);
  assert.equal(changes.length, 1);
  assert.deepEqual(changes[0], {
    cause: "document",
    revision: flags.revision,
    previousRevision: first,
    changed: [KEY, "other"],
  });
  unsubscribe();
  flags.load(base);
  assert.equal(changes.length, 1);
});

test("a malformed document keeps the last good state and is reported, not thrown", () => {
  const logger = new FakeLogger();
  const flags = FeatureFlags.fromDocument(base, { logger });
  const problems: string[] = [];
  flags.onError((p) => problems.push(`${p.origin}: ${p.message} (kept ${p.keptRevision})`));
  const revision = flags.revision;
  const bad = base.replace('"rolloutPercent":25', '"rolloutPercent":250');
  assert.equal(flags.load(bad, "test"), false);
  assert.equal(flags.load("{not json", "test"), false);
  assert.equal(flags.revision, revision);
  assert.equal(flags.isEnabled(KEY, { cohort: "beta" }), true);
  assert.deepEqual(problems, [
    `test: flags document revision does not match its flags (kept ${revision})`,
    `test: flags document is not valid JSON (kept ${revision})`,
  ]);
  assert.equal(flags.stats.errors, 2);
  assert.equal(logger.warnings.length, 2);
  assert.match(logger.warnings[0] ?? "", /^flags from test not loaded: .*; keeping revision [0-9a-f]{64}$/);
});

test("fromDocument throws on a malformed document: a developer's mistake, seen at once", () => {
  assert.throws(() => FeatureFlags.fromDocument("{}"), FlagsDocumentError);
});

test("an empty instance answers defaults until a document loads; ready() resolves then", async () => {
  const flags = new FeatureFlags({ logger: null });
  assert.equal(flags.revision, null);
  assert.equal(flags.isEnabled(KEY, { default: true }), true);
  const ready = flags.ready();
  flags.load(base);
  assert.equal(await ready, true);
  const closed = new FeatureFlags({ logger: null });
  const never = closed.ready();
  await closed.close();
  assert.equal(await never, false);
});

test("a throwing listener does not stop the others", () => {
  const flags = FeatureFlags.fromDocument(base, { logger: new FakeLogger() });
  let called = 0;
  flags.onChange(() => {
    throw new Error("boom");
  });
  flags.onChange(() => called++);
  flags.setOverride(KEY, true);
  assert.equal(called, 1);
});

test("windowed flags use the current time", () => {
  const flags = FeatureFlags.fromDocument(
    doc({
      past: { enabled: true, rolloutPercent: 100, endDate: "2000-01-01T00:00:00Z" },
      current: { enabled: true, rolloutPercent: 100, startDate: "2000-01-01T00:00:00Z", endDate: "9999-12-31T23:59:59Z" },
    }),
    { logger: null },
  );
  assert.equal(flags.isEnabled("past"), false);
  assert.equal(flags.isEnabled("current"), true);
});
