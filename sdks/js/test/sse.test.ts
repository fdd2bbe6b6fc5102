/** The streaming SSE parser: framing across arbitrary chunk boundaries. */

import assert from "node:assert/strict";
import { test } from "node:test";

import { SseParser, type SseEvent } from "../src/sse.js";

function parse(chunks: string[], max?: number): { events: SseEvent[]; parser: SseParser } {
  const events: SseEvent[] = [];
  const parser = new SseParser((e) => events.push(e), max);
  for (const chunk of chunks) parser.push(chunk);
  return { events, parser };
}

const STREAM = ": keep-alive\r\nretry: 1500\r\nid: 7\r\nevent: flags\r\ndata: {\"a\":\r\ndata:1}\r\n\r\ndata: two\n\n: bye\n";

test("fields, comments, multi-line data, ids and retry", () => {
  const { events, parser } = parse([STREAM]);
  assert.deepEqual(events, [
    { type: "flags", data: '{"a":\n1}', lastEventId: "7" },
    { type: "message", data: "two", lastEventId: "7" },
  ]);
  assert.equal(parser.retryMs, 1500);
});

test("the same events whatever the chunking, a CR LF split across chunks included", () => {
  const whole = parse([STREAM]).events;
  for (let size = 1; size <= STREAM.length; size++) {
    const chunks: string[] = [];
    for (let i = 0; i < STREAM.length; i += size) chunks.push(STREAM.slice(i, i + size));
    assert.deepEqual(parse(chunks).events, whole, `chunk size ${size}`);
  }
  assert.deepEqual(parse(["data: x\r", "\n", "\r", "\n"]).events, [{ type: "message", data: "x", lastEventId: "" }]);
  assert.deepEqual(parse(["data: x\r", "\r"]).events.length, 1, "bare CR line ends count");
});

test("events without data are not dispatched; an unfinished event waits for its blank line", () => {
  assert.deepEqual(parse(["event: x\n\n", "id: 3\n\n"]).events, []);
  assert.deepEqual(parse(["data: half"]).events, []);
});

test("an event larger than the bound throws instead of growing without limit", () => {
  assert.throws(() => parse(["data: 0123456789\n", "data: 0123456789\n"], 15), RangeError);
  assert.throws(() => parse(["data: " + "x".repeat(100)], 50), RangeError);
});
