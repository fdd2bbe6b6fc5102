/** fromFolder over a real temp dir that changes the way kubelet changes a ConfigMap volume. */

import assert from "node:assert/strict";
import { rmSync, writeFileSync } from "node:fs";
import { join } from "node:path";
import { afterEach, test } from "node:test";

import { buildDocument, fromFolder, type FeatureFlags, type FlagsProblem } from "../src/node/index.js";
import { FakeLogger, waitFor } from "./helpers.js";
import { KubeletVolume } from "./kubelet.js";

const KEY = "calendar_sync";
const cleanups: Array<() => unknown> = [];

afterEach(async () => {
  for (const cleanup of cleanups.splice(0).reverse()) await cleanup();
});

function volume(): KubeletVolume {
  const v = new KubeletVolume();
  cleanups.push(() => v.remove());
  return v;
}

function open(path: string, logger = new FakeLogger()): FeatureFlags {
  const flags = fromFolder(path, { reloadIntervalMs: 20, logger });
  cleanups.push(() => flags.close());
  return flags;
}

function doc(percent: number): { text: string; revision: string } {
  return buildDocument({ [KEY]: { enabled: true, rolloutPercent: percent, allowedCohorts: ["beta"] } });
}

test("loads the folder at once and follows kubelet's ..data swap", async () => {
  const v = volume();
  const first = doc(10);
  v.write({ "flags.json": first.text });
  const flags = open(v.dir);
  assert.equal(flags.revision, first.revision, "loaded synchronously");
  assert.equal(flags.get(KEY)?.rolloutPercent, 10);

  const changed: string[][] = [];
  flags.onChange((c) => changed.push([...c.changed]));
  const second = doc(50);
  v.write({ "flags.json": second.text });
  await waitFor(() => flags.revision === second.revision, "the swapped document");
  assert.equal(flags.get(KEY)?.rolloutPercent, 50);
  assert.deepEqual(changed, [[KEY]]);
});

test("the file path works as well as the folder", async () => {
  const v = volume();
  v.write({ "flags.json": doc(10).text });
  const flags = open(join(v.dir, "flags.json"));
  assert.equal(flags.get(KEY)?.rolloutPercent, 10);
  const next = doc(20);
  v.write({ "flags.json": next.text });
  await waitFor(() => flags.revision === next.revision, "the swapped document via the file path");
});

test("a malformed file keeps the last good state, is reported once, and a good one is taken after", async () => {
  const v = volume();
  const good = doc(10);
  v.write({ "flags.json": good.text });
  const logger = new FakeLogger();
  const flags = open(v.dir, logger);
  const problems: FlagsProblem[] = [];
  flags.onError((p) => problems.push(p));

  v.write({ "flags.json": good.text.replace('"rolloutPercent":10', '"rolloutPercent":"ten"') });
  await waitFor(() => problems.length === 1, "the malformed file to be reported");
  assert.equal(flags.revision, good.revision);
  assert.equal(flags.isEnabled(KEY, { cohort: "beta" }), true);
  assert.equal(problems[0]?.origin, join(v.dir, "flags.json"));
  assert.equal(problems[0]?.keptRevision, good.revision);

  v.write({ "flags.json": "{truncated" });
  await waitFor(() => problems.length === 2, "the second bad version to be reported");
  assert.equal(problems[1]?.message, "flags document is not valid JSON");

  const fixed = doc(30);
  v.write({ "flags.json": fixed.text });
  await waitFor(() => flags.revision === fixed.revision, "the fixed document");
  assert.equal(problems.length, 2, "each bad version reported once, not on every poll");
  assert.ok(logger.warnings.every((w) => !w.includes("ten") && !w.includes("truncated")));
});

test("a missing file gives defaults, then the file is picked up when it appears", async () => {
  const v = volume();
  const flags = open(v.dir);
  assert.equal(flags.revision, null);
  assert.equal(flags.isEnabled(KEY, { default: true }), true);
  assert.equal(flags.stats.lastError, "file is missing");
  const first = doc(10);
  v.write({ "flags.json": first.text });
  await waitFor(() => flags.revision === first.revision, "the file that appeared");
});

test("a deleted file keeps the last good state; an in-place rewrite is seen", async () => {
  const v = volume();
  const first = doc(10);
  v.write({ "flags.json": first.text });
  const flags = open(v.dir);
  rmSync(join(v.dir, "flags.json"));
  await waitFor(() => flags.stats.lastError === "file is missing", "the deletion to be reported");
  assert.equal(flags.revision, first.revision);

  // Not kubelet's way, but people edit files by hand: same path, new content.
  const plain = join(v.dir, "plain.json");
  writeFileSync(plain, first.text);
  const direct = open(plain);
  const second = doc(20);
  writeFileSync(plain, second.text);
  await waitFor(() => direct.revision === second.revision, "the rewritten file");
});

test("after close() the folder is no longer polled", async () => {
  const v = volume();
  v.write({ "flags.json": doc(10).text });
  const closed = open(v.dir);
  const live = open(v.dir);
  await closed.close();
  const late = doc(90);
  v.write({ "flags.json": late.text });
  // Both poll every 20 ms: once the live one has seen the swap, the closed one would have too.
  await waitFor(() => live.revision === late.revision, "the live client to see the swap");
  const later = doc(95);
  v.write({ "flags.json": later.text });
  await waitFor(() => live.revision === later.revision, "the live client to see a second swap");
  assert.equal(closed.revision, doc(10).revision);
});
