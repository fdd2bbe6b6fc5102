/** FeatureFlags.fromRelay against a real loopback HTTP server speaking the relay's SSE contract. */

import assert from "node:assert/strict";
import { afterEach, test } from "node:test";

import { buildDocument, FeatureFlags, type FlagsProblem, type FromRelayOptions } from "../src/index.js";
import { FakeRelay } from "./fake-relay.js";
import { FakeLogger, waitFor } from "./helpers.js";

const KEY = "calendar_sync";
const TOKEN = "good-token";
const cleanups: Array<() => unknown> = [];

afterEach(async () => {
  for (const cleanup of cleanups.splice(0).reverse()) await cleanup();
});

function doc(percent: number): { text: string; revision: string } {
  return buildDocument({ [KEY]: { enabled: true, rolloutPercent: percent, allowedCohorts: ["beta"] } });
}

async function relay(percent = 10): Promise<FakeRelay> {
  const first = doc(percent);
  const server = new FakeRelay(first.text, first.revision, TOKEN);
  await server.start();
  cleanups.push(() => server.stop());
  return server;
}

function follow(server: FakeRelay, options: FromRelayOptions = {}): FeatureFlags {
  const flags = FeatureFlags.fromRelay(`${server.url}/`, {
    token: TOKEN,
    minRetryMs: 10,
    maxRetryMs: 80,
    logger: new FakeLogger(),
    ...options,
  });
  cleanups.push(() => flags.close());
  return flags;
}

test("takes the document the stream sends on connect, then every change, with the bearer token", async () => {
  const server = await relay(10);
  const flags = follow(server);
  assert.equal(await flags.ready(), true);
  assert.equal(flags.get(KEY)?.rolloutPercent, 10);
  assert.equal(server.streamRequests()[0]?.authorization, `Bearer ${TOKEN}`);

  const changes: string[] = [];
  flags.onChange((c) => changes.push(c.revision ?? ""));
  const next = doc(40);
  server.publish(next.text, next.revision);
  await waitFor(() => flags.revision === next.revision, "the pushed document");
  assert.deepEqual(changes, [next.revision]);
  assert.equal(server.streamRequests().length, 1, "one connection carried both documents");
});

test("after the server drops the stream: conditional GET (304 when unchanged), then a new stream", async () => {
  const server = await relay(10);
  const flags = follow(server);
  await flags.ready();
  const revision = flags.revision;

  server.dropConnections();
  await waitFor(() => server.streamRequests().length === 2 && server.openStreams === 1, "the reconnected stream");
  assert.deepEqual(
    server.documentRequests().map((r) => [r.ifNoneMatch, r.status]),
    [[`"${revision}"`, 304]],
  );
  assert.equal(server.streamRequests()[1]?.lastEventId, "1", "Last-Event-ID resumes");

  // A change made while the stream is down arrives through the catch-up GET.
  const next = doc(60);
  server.dropConnections();
  server.publish(next.text, next.revision);
  await waitFor(() => flags.revision === next.revision, "the document changed during the drop");
  await waitFor(() => server.documentRequests().length === 2, "the second catch-up GET");
  assert.equal(server.documentRequests()[1]?.status, 200);
});

test("a relay that goes away: last good state kept, errors reported, back-off, recovery", async () => {
  const server = await relay(10);
  const flags = follow(server);
  await flags.ready();
  const problems: FlagsProblem[] = [];
  flags.onError((p) => problems.push(p));

  await server.stop();
  await waitFor(() => problems.length >= 3, "several failed reconnects");
  assert.equal(flags.get(KEY)?.rolloutPercent, 10);
  assert.equal(flags.isEnabled(KEY, { cohort: "beta" }), true);
  assert.match(problems[0]?.message ?? "", /^relay unreachable/);
  assert.equal(problems[0]?.origin, server.url);

  const next = doc(70);
  server.publish(next.text, next.revision);
  await server.start();
  await waitFor(() => flags.revision === next.revision, "the document after the relay came back");
  await waitFor(() => server.openStreams === 1, "the stream open again");
});

test("HTTP errors are reported and retried; a 503 stream with a working document endpoint still serves", async () => {
  const server = await relay(10);
  server.streamStatus = 503;
  const flags = follow(server);
  const problems: string[] = [];
  flags.onError((p) => problems.push(p.message));
  await waitFor(() => problems.length >= 1, "the refused stream");
  assert.equal(problems[0], "relay stream answered HTTP 503");
  // The retry's catch-up GET delivers the document although the stream is refused.
  await waitFor(() => flags.revision === doc(10).revision, "the document from the catch-up GET");
  server.streamStatus = null;
  await waitFor(() => server.openStreams === 1, "the stream once the relay allows it");
});

test("the base address's query is kept; the server's ETag goes back verbatim", async () => {
  const server = await relay(10);
  server.streamStatus = 503; // only the document endpoint answers: every retry is a catch-up GET
  server.bareEtag = true;
  const flags = FeatureFlags.fromRelay(`${server.url}?namespace=meal-plan`, {
    token: TOKEN,
    minRetryMs: 10,
    maxRetryMs: 20,
    logger: null,
  });
  cleanups.push(() => flags.close());
  await waitFor(() => server.documentRequests().some((r) => r.status === 304), "a 304 for the bare ETag");
  const revision = doc(10).revision;
  assert.equal(flags.revision, revision);
  assert.deepEqual(
    server.documentRequests().slice(0, 2).map((r) => [r.ifNoneMatch, r.status]),
    [[undefined, 200], [revision, 304]],
  );
  assert.ok(server.requests.every((r) => r.query === "?namespace=meal-plan"));
});

test("an address that is not a URL throws at once", () => {
  assert.throws(() => FeatureFlags.fromRelay("not a url", { logger: null }), TypeError);
});

test("a malformed event keeps the last good state; the next good one is taken", async () => {
  const server = await relay(10);
  const flags = follow(server);
  await flags.ready();
  const good = flags.revision;
  const problems: string[] = [];
  flags.onError((p) => problems.push(p.message));

  server.sendEvent('{"schema":1,"revision":"x","flags":{}}');
  server.sendEvent("not json at all");
  server.sendEvent(doc(10).text.replace('"rolloutPercent":10', '"rolloutPercent":1000'));
  await waitFor(() => problems.length === 3, "three rejected events");
  assert.deepEqual(problems, [
    "flags document revision does not match its flags",
    "flags document is not valid JSON",
    "flags document revision does not match its flags",
  ]);
  assert.equal(flags.revision, good);

  const next = doc(20);
  server.sendEvent(JSON.stringify(JSON.parse(next.text), null, 2)); // multi-line data: still one document
  await waitFor(() => flags.revision === next.revision, "the good document after the bad ones");
  assert.equal(server.streamRequests().length, 1, "bad events do not cost the connection");
});

test("a wrong token: 401 reported without the token, no state", async () => {
  const server = await relay(10);
  const logger = new FakeLogger();
  const flags = follow(server, { token: "wrong-secret-token", logger });
  await waitFor(() => flags.stats.errors >= 2, "two refused attempts");
  assert.equal(flags.revision, null);
  assert.match(flags.stats.lastError ?? "", /^relay (stream|document) answered HTTP 401 \(check the token and its scope\)$/);
  assert.ok(logger.warnings.length >= 2);
  assert.ok(logger.warnings.every((w) => !w.includes("wrong-secret-token")));
});

test("an initial document serves until the relay answers", async () => {
  const server = await relay(10);
  server.streamStatus = 503;
  const boot = doc(99);
  const flags = follow(server, { initialDocument: boot.text, minRetryMs: 5000, maxRetryMs: 5000 });
  assert.equal(flags.revision, boot.revision);
  await waitFor(() => flags.stats.errors === 1, "the refused stream");
  assert.equal(flags.revision, boot.revision);
  assert.equal(server.streamRequests().length, 1, "Retry-After: 0 does not cut the back-off short");
});

test("a silent stream is abandoned after the idle timeout and reopened", async () => {
  const server = await relay(10);
  server.sendOnConnect = false;
  const flags = follow(server, { idleTimeoutMs: 100 });
  await waitFor(() => server.streamRequests().length >= 2, "a reconnect after the idle timeout");
  assert.equal(flags.stats.lastError, "relay stream idle too long");
  server.sendOnConnect = true;
  await flags.ready();
  assert.equal(flags.revision, doc(10).revision);
});

test("close() ends the stream and every retry", async () => {
  const server = await relay(10);
  const flags = follow(server);
  await flags.ready();
  await flags.close();
  await waitFor(() => server.openStreams === 0, "the server to see the stream close");
  const before = server.requests.length;
  server.dropConnections();
  const next = doc(50);
  server.publish(next.text, next.revision);
  // A second client proves time passed for retries; the closed one made none.
  const other = follow(server);
  await other.ready();
  assert.equal(server.requests.length, before + 1);
  assert.notEqual(flags.revision, next.revision);
});
