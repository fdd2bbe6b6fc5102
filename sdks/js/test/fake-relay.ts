/**
 * FakeRelay: a real HTTP server on loopback that speaks the relay's document
 * contract (DESIGN.md, "The relay"): `GET /v1/flags.json` with ETag/304 and
 * `GET /v1/flags/stream` as server-sent events, behind a bearer token. Unit tests only.
 */

import { createServer, type IncomingMessage, type Server, type ServerResponse } from "node:http";
import type { AddressInfo, Socket } from "node:net";

export interface RecordedRequest {
  readonly path: string;
  readonly query: string;
  readonly authorization: string | undefined;
  readonly ifNoneMatch: string | undefined;
  readonly lastEventId: string | undefined;
  readonly status: number;
}

export class FakeRelay {
  readonly requests: RecordedRequest[] = [];
  /** Status to answer stream requests with instead of streaming (e.g. 503), while set. */
  streamStatus: number | null = null;
  /** When false, a new stream gets headers but no document (to test the idle timeout). */
  sendOnConnect = true;
  /** Send the ETag as the bare revision instead of the quoted form RFC 9110 asks for. */
  bareEtag = false;
  private server: Server | null = null;
  private readonly streams = new Set<ServerResponse>();
  private readonly sockets = new Set<Socket>();
  private port = 0;
  private eventId = 0;

  constructor(
    private document: string,
    private revision: string,
    private readonly token = "good-token",
  ) {}

  get url(): string {
    return `http://127.0.0.1:${this.port}`;
  }

  get openStreams(): number {
    return this.streams.size;
  }

  streamRequests(): RecordedRequest[] {
    return this.requests.filter((r) => r.path === "/v1/flags/stream");
  }

  documentRequests(): RecordedRequest[] {
    return this.requests.filter((r) => r.path === "/v1/flags.json");
  }

  /** Listen on loopback (the same port again after a stop). */
  async start(): Promise<void> {
    const server = createServer((req, res) => this.handle(req, res));
    server.on("connection", (socket) => {
      this.sockets.add(socket);
      socket.on("close", () => this.sockets.delete(socket));
    });
    await new Promise<void>((resolve, reject) => {
      server.once("error", reject);
      server.listen(this.port, "127.0.0.1", () => resolve());
    });
    this.port = (server.address() as AddressInfo).port;
    this.server = server;
  }

  /** Stop listening and cut every connection, as a crashed relay would. */
  async stop(): Promise<void> {
    const server = this.server;
    this.server = null;
    this.dropConnections();
    if (server !== null) await new Promise<void>((resolve) => server.close(() => resolve()));
  }

  /** Cut every open connection without a clean end (streams included). */
  dropConnections(): void {
    for (const socket of this.sockets) socket.destroy();
    this.streams.clear();
  }

  /** A new document: served from now on and pushed to every open stream. */
  publish(document: string, revision: string): void {
    this.document = document;
    this.revision = revision;
    this.sendEvent(document);
  }

  /** Push one event with `data` (split into several data lines at newlines) to every stream. */
  sendEvent(data: string): void {
    const lines = data.split("\n").map((line) => `data: ${line}\n`).join("");
    for (const res of this.streams) res.write(`id: ${++this.eventId}\n${lines}\n`);
  }

  /** Write raw text to every stream (comments, odd framing). */
  sendRaw(text: string): void {
    for (const res of this.streams) res.write(text);
  }

  private handle(req: IncomingMessage, res: ServerResponse): void {
    const url = new URL(req.url ?? "/", "http://relay");
    const status = this.answer(req, res, url.pathname);
    this.requests.push({
      path: url.pathname,
      query: url.search,
      authorization: req.headers.authorization,
      ifNoneMatch: req.headers["if-none-match"],
      lastEventId: req.headers["last-event-id"] as string | undefined,
      status,
    });
  }

  private answer(req: IncomingMessage, res: ServerResponse, path: string): number {
    if (req.headers.authorization !== `Bearer ${this.token}`) {
      res.writeHead(401, { "Content-Type": "application/json" }).end('{"errorCode":"UNAUTHORIZED"}');
      return 401;
    }
    const etag = this.bareEtag ? this.revision : `"${this.revision}"`;
    if (req.method === "GET" && path === "/v1/flags.json") {
      if (req.headers["if-none-match"] === etag) {
        res.writeHead(304, { ETag: etag }).end();
        return 304;
      }
      res.writeHead(200, { "Content-Type": "application/json", ETag: etag }).end(this.document);
      return 200;
    }
    if (req.method === "GET" && path === "/v1/flags/stream") {
      if (this.streamStatus !== null) {
        res.writeHead(this.streamStatus, { "Retry-After": "0" }).end();
        return this.streamStatus;
      }
      res.writeHead(200, { "Content-Type": "text/event-stream", "Cache-Control": "no-cache" });
      res.flushHeaders();
      this.streams.add(res);
      res.on("close", () => this.streams.delete(res));
      if (this.sendOnConnect) res.write(`id: ${++this.eventId}\ndata: ${this.document}\n\n`);
      return 200;
    }
    res.writeHead(404).end();
    return 404;
  }
}
