/**
 * The relay's document stream (DESIGN.md, "The relay"):
 *
 * - `GET <url>/v1/flags/stream`: server-sent events, the whole `flags.json`
 *   document as `data:` on connect and on every change;
 * - `GET <url>/v1/flags.json`: the document, `ETag` = revision, 304 on `If-None-Match`.
 *
 * Uses `fetch` and a streaming SSE parser (not EventSource, which cannot send
 * `Authorization`), so it runs in Node 20 and in browsers. After a drop it
 * catches up with a conditional GET, then reopens the stream, backing off
 * exponentially with jitter while the relay is unreachable.
 */

import type { SourceSink, Source } from "./client.js";
import { SseParser } from "./sse.js";

export interface RelayOptions {
  /** Sent as `Authorization: Bearer <token>`; never logged. */
  readonly token?: string | undefined;
  /** More request headers (e.g. `X-API-Key`). */
  readonly headers?: Readonly<Record<string, string>> | undefined;
  /** The fetch to use; default the global one. */
  readonly fetch?: typeof fetch | undefined;
  /** First reconnect delay, doubled per failed attempt up to `maxRetryMs` (jittered to 50-100%). */
  readonly minRetryMs?: number | undefined;
  readonly maxRetryMs?: number | undefined;
  /** Reconnect when the stream has sent nothing (not even a keep-alive) for this long. */
  readonly idleTimeoutMs?: number | undefined;
}

/** `path` under the base address: appended to its path, its query kept. */
function endpoint(base: string, path: string): string {
  const url = new URL(base);
  url.pathname = url.pathname.replace(/\/+$/, "") + path;
  return url.toString();
}

/**
 * The relay's base address as an absolute URL; a relative one (a browser page's
 * "/relay") resolves against the page. Throws TypeError when it is not a URL.
 */
export function resolveRelayUrl(url: string): URL {
  const page = (globalThis as { location?: { href?: string } }).location?.href;
  try {
    return new URL(url, page);
  } catch {
    throw new TypeError("the relay address is not a valid URL");
  }
}

/** The relay address as shown in logs and `onError`: no user info, query or fragment. */
export function relayOrigin(url: URL): string {
  return `${url.origin}${url.pathname.replace(/\/+$/, "")}`;
}

class RelayStream implements Source {
  /** The relay's base address; a query on it (e.g. a namespace) is kept on every request. */
  private readonly base: string;
  // The ETag the document endpoint last sent, and the revision it came with: sent back
  // verbatim while that revision is in use, whatever quoting the server chose.
  private etag: { value: string; revision: string } | null = null;
  private readonly abort = new AbortController();
  private readonly fetch: typeof fetch;
  private readonly minRetryMs: number;
  private readonly maxRetryMs: number;
  private readonly idleTimeoutMs: number;
  private readonly headers: Record<string, string>;
  private lastEventId = "";
  private serverRetryMs: number | undefined;
  private readonly done: Promise<void>;

  constructor(
    url: URL,
    private readonly sink: SourceSink,
    options: RelayOptions,
  ) {
    this.base = url.toString();
    this.fetch = options.fetch ?? globalThis.fetch.bind(globalThis);
    this.minRetryMs = options.minRetryMs ?? 500;
    this.maxRetryMs = Math.max(this.minRetryMs, options.maxRetryMs ?? 30_000);
    this.idleTimeoutMs = options.idleTimeoutMs ?? 60_000;
    this.headers = { ...options.headers };
    if (options.token !== undefined) this.headers["Authorization"] = `Bearer ${options.token}`;
    this.done = this.run();
  }

  async close(): Promise<void> {
    this.abort.abort();
    await this.done;
  }

  private get closed(): boolean {
    return this.abort.signal.aborted;
  }

  private async run(): Promise<void> {
    let failures = 0;
    for (let first = true; !this.closed; first = false) {
      let delayMs: number | undefined;
      try {
        // After a drop, a conditional GET catches up at once (304 when nothing changed).
        if (!first) await this.catchUp();
        if (await this.stream()) {
          failures = 0;
        } else {
          failures++;
          this.sink.fail("relay stream ended before it sent a good document");
        }
      } catch (err) {
        if (this.closed) break;
        failures++;
        delayMs = err instanceof RelayHttpError ? err.retryAfterMs : undefined;
        this.sink.fail(describe(err));
      }
      // Retry-After is the least the server asks for; never less than the back-off.
      await this.sleep(Math.max(delayMs ?? 0, this.backoff(failures)));
    }
  }

  private backoff(failures: number): number {
    const base = this.serverRetryMs ?? this.minRetryMs;
    const capped = Math.min(this.maxRetryMs, base * 2 ** Math.min(Math.max(failures - 1, 0), 30));
    return capped / 2 + (Math.random() * capped) / 2;
  }

  private sleep(ms: number): Promise<void> {
    return new Promise((resolve) => {
      if (this.closed) return resolve();
      const onAbort = (): void => {
        clearTimeout(timer);
        resolve();
      };
      const timer = setTimeout(() => {
        this.abort.signal.removeEventListener("abort", onAbort);
        resolve();
      }, ms);
      this.abort.signal.addEventListener("abort", onAbort, { once: true });
    });
  }

  private async catchUp(): Promise<void> {
    const headers: Record<string, string> = { ...this.headers, Accept: "application/json" };
    const revision = this.sink.revision;
    if (revision !== null) {
      headers["If-None-Match"] = this.etag?.revision === revision ? this.etag.value : `"${revision}"`;
    }
    const response = await this.fetch(endpoint(this.base, "/v1/flags.json"), {
      headers,
      signal: this.abort.signal,
      cache: "no-store",
    });
    if (response.status === 304) return;
    if (!response.ok) throw RelayHttpError.of("document", response);
    if (this.sink.load(await response.text())) {
      const etag = response.headers.get("etag");
      const loaded = this.sink.revision;
      this.etag = etag !== null && loaded !== null ? { value: etag, revision: loaded } : null;
    }
  }

  /** One stream connection. Resolves true if it delivered a good document before it ended. */
  private async stream(): Promise<boolean> {
    const connection = new AbortController();
    const onClose = (): void => connection.abort();
    this.abort.signal.addEventListener("abort", onClose, { once: true });
    const headers: Record<string, string> = {
      ...this.headers,
      Accept: "text/event-stream",
      "Cache-Control": "no-cache",
    };
    if (this.lastEventId !== "") headers["Last-Event-ID"] = this.lastEventId;
    let idle: ReturnType<typeof setTimeout> | undefined;
    const resetIdle = (): void => {
      clearTimeout(idle);
      idle = setTimeout(() => connection.abort(), this.idleTimeoutMs);
    };
    let delivered = false;
    try {
      resetIdle();
      const response = await this.fetch(endpoint(this.base, "/v1/flags/stream"), {
        headers,
        signal: connection.signal,
        cache: "no-store",
      });
      if (!response.ok) throw RelayHttpError.of("stream", response);
      const type = response.headers.get("content-type") ?? "";
      if (!type.startsWith("text/event-stream") || response.body === null) {
        await response.body?.cancel();
        throw new Error("relay stream is not text/event-stream");
      }
      const parser = new SseParser((event) => {
        if (this.sink.load(event.data)) delivered = true;
      });
      const reader = response.body.pipeThrough(new TextDecoderStream()).getReader();
      try {
        for (;;) {
          const { value, done } = await reader.read();
          if (done) break;
          resetIdle();
          parser.push(value);
          this.lastEventId = parser.lastEventId;
          this.serverRetryMs = parser.retryMs ?? this.serverRetryMs;
        }
      } finally {
        reader.releaseLock();
      }
      if (delivered) this.sink.info("relay stream ended; reconnecting");
      return delivered;
    } catch (err) {
      if (this.closed) throw err;
      const reason = connection.signal.aborted ? "relay stream idle too long" : describe(err);
      if (!delivered) throw err instanceof RelayHttpError ? err : new Error(reason);
      // A stream that worked and then dropped is an ordinary reconnect, not a failure.
      this.sink.info(`${reason}; reconnecting`);
      return true;
    } finally {
      clearTimeout(idle);
      this.abort.signal.removeEventListener("abort", onClose);
      connection.abort();
    }
  }
}

class RelayHttpError extends Error {
  override readonly name = "RelayHttpError";

  constructor(
    message: string,
    readonly retryAfterMs: number | undefined,
  ) {
    super(message);
  }

  static of(what: string, response: Response): RelayHttpError {
    void response.body?.cancel().catch(() => undefined);
    const hint = response.status === 401 || response.status === 403 ? " (check the token and its scope)" : "";
    return new RelayHttpError(
      `relay ${what} answered HTTP ${response.status}${hint}`,
      retryAfter(response.headers.get("retry-after")),
    );
  }
}

function retryAfter(value: string | null): number | undefined {
  if (value === null) return undefined;
  if (/^\d+$/.test(value.trim())) return Number(value.trim()) * 1000;
  const at = Date.parse(value);
  return Number.isNaN(at) ? undefined : Math.max(0, at - Date.now());
}

// Error text for logs: names the failure, never a header (the token) or a body.
function describe(err: unknown): string {
  if (err instanceof RelayHttpError) return err.message;
  if (err instanceof Error) {
    const cause = (err as Error & { cause?: { code?: unknown } }).cause;
    const code = typeof cause?.code === "string" ? ` (${cause.code})` : "";
    if (err.name === "TypeError" && err.message === "fetch failed") return `relay unreachable${code}`;
    if (err instanceof RangeError || err.message.startsWith("relay ")) return err.message;
    return `relay connection failed: ${err.name}${code}`;
  }
  return "relay connection failed";
}

/** Start following the relay's document stream; the returned Source stops it. */
export function startRelay(url: URL, sink: SourceSink, options: RelayOptions = {}): Source {
  return new RelayStream(url, sink, options);
}
