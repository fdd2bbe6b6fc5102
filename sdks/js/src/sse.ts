/**
 * A streaming parser for server-sent events (WHATWG HTML, "Parsing an event
 * stream"): fed decoded text in arbitrary chunks, it emits whole events.
 * `EventSource` is not used because it cannot send an Authorization header.
 */

export interface SseEvent {
  /** The `event:` field, "message" when absent. */
  readonly type: string;
  readonly data: string;
  /** The last event id seen on this stream ("" when none). */
  readonly lastEventId: string;
}

export class SseParser {
  /** The server's `retry:` reconnection time in ms, if it sent one. */
  retryMs: number | undefined;
  lastEventId = "";
  private pending = "";
  private skipLineFeed = false;
  private data: string[] = [];
  private dataLength = 0;
  private type = "";
  private readonly lineEnd = /[\r\n]/g;

  /** `maxEventChars` bounds one event's data (and one line), so a runaway stream cannot eat memory. */
  constructor(
    private readonly emit: (event: SseEvent) => void,
    private readonly maxEventChars = 16 * 1024 * 1024,
  ) {}

  /** Feed the next chunk of decoded text. Throws RangeError when an event passes `maxEventChars`. */
  push(chunk: string): void {
    let start = 0;
    if (this.skipLineFeed) {
      this.skipLineFeed = false;
      if (chunk.charCodeAt(0) === 10) start = 1;
    }
    const lineEnd = this.lineEnd;
    lineEnd.lastIndex = start;
    let match: RegExpExecArray | null;
    while ((match = lineEnd.exec(chunk)) !== null) {
      const end = match.index;
      const line = this.pending + chunk.slice(start, end);
      this.pending = "";
      start = end + 1;
      if (chunk.charCodeAt(end) === 13) {
        // A CR LF split across chunks must not count as two line ends.
        if (start === chunk.length) this.skipLineFeed = true;
        else if (chunk.charCodeAt(start) === 10) start++;
      }
      this.line(line);
      lineEnd.lastIndex = start;
    }
    this.pending += chunk.slice(start);
    if (this.pending.length > this.maxEventChars) throw new RangeError("server-sent event too large");
  }

  private line(line: string): void {
    if (line === "") {
      this.dispatch();
      return;
    }
    if (line.charCodeAt(0) === 58) return; // ":" a comment, e.g. a keep-alive
    const colon = line.indexOf(":");
    const field = colon < 0 ? line : line.slice(0, colon);
    let value = colon < 0 ? "" : line.slice(colon + 1);
    if (value.charCodeAt(0) === 32) value = value.slice(1);
    switch (field) {
      case "data":
        this.dataLength += value.length + 1;
        if (this.dataLength > this.maxEventChars) throw new RangeError("server-sent event too large");
        this.data.push(value);
        break;
      case "event":
        this.type = value;
        break;
      case "id":
        if (!value.includes("\0")) this.lastEventId = value;
        break;
      case "retry":
        if (/^\d+$/.test(value)) this.retryMs = Number(value);
        break;
      default:
        break; // unknown fields are ignored, as the spec says
    }
  }

  private dispatch(): void {
    const data = this.data;
    const type = this.type || "message";
    this.data = [];
    this.dataLength = 0;
    this.type = "";
    if (data.length === 0) return;
    this.emit({ type, data: data.join("\n"), lastEventId: this.lastEventId });
  }
}
