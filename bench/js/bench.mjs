// JS SDK evaluation: @flagops/sdk vs unleash-client vs the OpenFeature flagd in-process
// provider, same flag (calendar_sync at 25%), same users, one run, fully offline.
//
//     cd bench/js && npm ci && node bench.mjs [--users 10000] [--calls 2000000]
//
// Every outgoing connection (net sockets, fetch) is refused for the whole run and
// counted, so no figure can include a network round trip.

import { mkdtempSync, readFileSync, rmSync, writeFileSync } from "node:fs";
import { createRequire } from "node:module";
import net from "node:net";
import { tmpdir } from "node:os";
import { join } from "node:path";
import { parseArgs } from "node:util";

const KEY = "calendar_sync";
const PERCENT = 25;
const GOAL_NS = 150;

// -- offline guard (installed before any SDK is loaded) ----------------------------------

const attempts = [];
net.Socket.prototype.connect = function refuse(...args) {
  attempts.push(String(args[0]?.port ?? args[0]));
  throw new Error("network disabled during the SDK benchmark");
};
globalThis.fetch = async (url) => {
  attempts.push(String(url));
  throw new TypeError("network disabled during the SDK benchmark");
};

const { FeatureFlags, buildDocument, evaluate, bucket } = await import("@flagops/sdk");
const require = createRequire(import.meta.url);

// -- users and contenders -----------------------------------------------------------------

/** The Python SDK benchmark's users: non-ASCII, e-mail and empty ids, then user-0 ... */
function makeUsers(count) {
  const extras = ["josé", "用户", "ユーザー", "😀", "alice@example.com", ""];
  return [...extras, ...Array.from({ length: count - extras.length }, (_, i) => `user-${i}`)];
}

function flagopsContenders(users) {
  const state = { enabled: true, rolloutPercent: PERCENT, allowedCohorts: ["internal"] };
  const flags = FeatureFlags.fromDocument(buildDocument({ [KEY]: state }).text, { logger: null });
  return [
    {
      name: "@flagops/sdk FeatureFlags.isEnabled",
      cost: 1,
      results: users.map((u) => flags.isEnabled(KEY, { userId: u })),
      runAll() {
        let on = 0;
        for (let i = 0; i < users.length; i++) if (flags.isEnabled(KEY, { userId: users[i] })) on++;
        return on;
      },
    },
    {
      name: "@flagops/sdk evaluate() (parses the entry per call; reference)",
      cost: 10,
      results: users.map((u) => evaluate(state, KEY, { userId: u })),
      runAll() {
        let on = 0;
        for (let i = 0; i < users.length; i++) if (evaluate(state, KEY, { userId: users[i] })) on++;
        return on;
      },
    },
  ];
}

async function unleashContender(users) {
  const { Unleash, InMemStorageProvider } = require("unleash-client");
  const feature = {
    name: KEY,
    enabled: true,
    strategies: [
      {
        name: "flexibleRollout",
        parameters: { rollout: String(PERCENT), stickiness: "userId", groupId: KEY },
        constraints: [],
      },
    ],
  };
  const client = new Unleash({
    appName: "flagops-bench",
    url: "http://127.0.0.1:1/api", // unreachable on purpose: nothing may be fetched
    refreshInterval: 0, // no polling: the bootstrap is all it has
    disableMetrics: true,
    bootstrap: { data: [feature] },
    storageProvider: new InMemStorageProvider(),
    skipInstanceCountWarning: true,
  });
  client.on("error", () => {});
  client.on("warn", () => {});
  await new Promise((resolve, reject) => {
    client.once("ready", resolve);
    setTimeout(() => reject(new Error("unleash-client not ready from its bootstrap")), 10_000).unref();
  });
  const contexts = users.map((u) => ({ userId: u }));
  const results = contexts.map((c) => client.isEnabled(KEY, c));
  if (!results.some(Boolean)) throw new Error("unleash-client answered only false: bootstrap not used");
  return {
    name: "unleash-client isEnabled (bootstrap, offline)",
    cost: 20,
    results,
    close: () => client.destroy(),
    runAll() {
      let on = 0;
      for (let i = 0; i < contexts.length; i++) if (client.isEnabled(KEY, contexts[i])) on++;
      return on;
    },
  };
}

async function flagdContender(users, workdir) {
  const { OpenFeature } = await import("@openfeature/server-sdk");
  const { FlagdProvider } = await import("@openfeature/flagd-provider");
  const path = join(workdir, "flagd.json");
  const variants = { on: true, off: false };
  const targeting = { fractional: [["on", PERCENT], ["off", 100 - PERCENT]] };
  writeFileSync(path, JSON.stringify({ flags: { [KEY]: { state: "ENABLED", variants, defaultVariant: "off", targeting } } }));
  const silent = { error() {}, warn() {}, info() {}, debug() {} };
  const provider = new FlagdProvider(
    { resolverType: "in-process", offlineFlagSourcePath: path, host: "127.0.0.1", port: 1 },
    silent,
  );
  OpenFeature.setLogger(silent);
  await OpenFeature.setProviderAndWait(provider);
  const client = OpenFeature.getClient();
  const contexts = users.map((u) => ({ targetingKey: u }));
  const results = [];
  for (const c of contexts) results.push(await client.getBooleanValue(KEY, false, c));
  if (!results.some(Boolean)) throw new Error("flagd provider answered only defaults: flag file not loaded");
  return {
    name: "OpenFeature server-sdk + flagd in-process (file)",
    cost: 40,
    results,
    note: "fractional: own hash, different users by design",
    close: () => OpenFeature.close(),
    async runAll() {
      let on = 0;
      for (let i = 0; i < contexts.length; i++) if (await client.getBooleanValue(KEY, false, contexts[i])) on++;
      return on;
    },
  };
}

// -- timing -------------------------------------------------------------------------------

/** Best ns/call per contender over `rounds` rounds that take turns (load bursts hit all alike). */
async function timeInterleaved(contenders, calls, userCount, rounds = 7) {
  const best = contenders.map(() => Infinity);
  for (let round = 0; round < rounds; round++) {
    for (const [i, contender] of contenders.entries()) {
      const repeats = Math.max(1, Math.floor(calls / contender.cost / userCount));
      const start = process.hrtime.bigint();
      for (let r = 0; r < repeats; r++) await contender.runAll();
      const elapsed = Number(process.hrtime.bigint() - start);
      best[i] = Math.min(best[i], elapsed / (repeats * userCount));
    }
  }
  return best;
}

// -- bucket agreement with unleash-client -------------------------------------------------

function bucketMismatches(count) {
  const { normalizedStrategyValue } = require("unleash-client/lib/strategy/util");
  let mismatches = 0;
  for (let i = 0; i < count; i++) {
    const user = `user-${i}`;
    if (bucket(KEY, user) !== normalizedStrategyValue(user, KEY)) mismatches++;
  }
  const nonAscii = ["josé", "用户", "ユーザー", "😀"].map((u) => ({
    user: u,
    flagops: bucket(KEY, u),
    unleashClient: normalizedStrategyValue(u, KEY),
  }));
  return { mismatches, nonAscii };
}

function machine() {
  let model = "unknown CPU";
  try {
    const line = readFileSync("/proc/cpuinfo", "utf8").split("\n").find((l) => l.startsWith("model name"));
    if (line) model = line.split(":")[1].trim();
  } catch {}
  return `${model}, Node ${process.version}`;
}

function pad(text, width, right = false) {
  return right ? String(text).padStart(width) : String(text).padEnd(width);
}

async function main() {
  const { values } = parseArgs({ options: { users: { type: "string", default: "10000" }, calls: { type: "string", default: "2000000" } } });
  const users = makeUsers(Number(values.users));
  const workdir = mkdtempSync(join(tmpdir(), "flagops-bench-js-"));
  const problems = [];
  const contenders = flagopsContenders(users);
  const ours = contenders[0].results;
  let unleash = null;
  try {
    unleash = await unleashContender(users);
    contenders.push(unleash);
  } catch (err) {
    problems.push(`unleash-client: ${err.message}`);
  }
  try {
    contenders.push(await flagdContender(users, workdir));
  } catch (err) {
    problems.push(`flagd provider: ${err.message}`);
  }
  const timings = await timeInterleaved(contenders, Number(values.calls), users.length);

  console.log(`JS SDK evaluation, flag '${KEY}' at ${PERCENT}%, ${users.length.toLocaleString("en")} users; ${machine()}`);
  console.log(`${pad("SDK", 64)} ${pad("ns/call", 10, true)} ${pad("vs flagops", 11, true)} ${pad("enabled", 8, true)}`);
  contenders.forEach((c, i) => {
    const share = c.results.filter(Boolean).length / users.length;
    const ratio = `${(timings[i] / timings[0]).toFixed(timings[i] / timings[0] < 10 ? 1 : 0)}x`;
    const note = c.note ? `  (${c.note})` : "";
    console.log(`${pad(c.name, 64)} ${pad(timings[i].toFixed(0), 10, true)} ${pad(ratio, 11, true)} ${pad((share * 100).toFixed(2) + "%", 8, true)}${note}`);
  });
  console.log(`goal isEnabled <= ${GOAL_NS} ns/call: ${timings[0] <= GOAL_NS ? "met" : "MISSED"} (${timings[0].toFixed(0)} ns)`);

  if (unleash !== null) {
    const differ = users.filter((u, i) => ours[i] !== unleash.results[i]);
    const asciiDiffer = differ.filter((u) => /^[\x00-\x7f]*$/.test(u));
    console.log(`answers vs unleash-client over the same ${users.length.toLocaleString("en")} users: ${differ.length} differ` +
      ` (${asciiDiffer.length} with ASCII ids; non-ASCII: ${differ.map((u) => JSON.stringify(u)).join(", ") || "none"})`);
    if (asciiDiffer.length > 0) problems.push(`${asciiDiffer.length} ASCII users answered differently from unleash-client`);
    const { mismatches, nonAscii } = bucketMismatches(10_000);
    console.log(`bucket (1..100) mismatches vs unleash-client normalizedStrategyValue, 10,000 users user-0..: ${mismatches}`);
    if (mismatches > 0) problems.push(`${mismatches} buckets differ from unleash-client`);
    for (const { user, flagops, unleashClient } of nonAscii) {
      console.log(`  non-ASCII ${JSON.stringify(user)}: flagops bucket ${flagops} (UTF-8), unleash-client ${unleashClient} (murmurhash3js hashes charCode & 0xff)`);
    }
  }
  console.log(`network connection attempts during the run: ${attempts.length}`);
  if (attempts.length > 0) problems.push(`${attempts.length} network attempts`);
  for (const c of contenders) await c.close?.();
  rmSync(workdir, { recursive: true, force: true });
  for (const problem of problems) console.log(`PROBLEM: ${problem}`);
  return problems.length === 0 ? 0 : 1;
}

process.exitCode = await main();
