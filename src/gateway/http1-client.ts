import { EventEmitter } from 'node:events';
import net from 'node:net';
import tls from 'node:tls';

/**
 * A minimal HTTP/1.1 GET client for the DICOMweb gateway (RFC 9112). node:http allocates a buffer
 * for every socket read and its parser copies every body chunk into another; for a gateway that
 * only forwards bytes, those copies and the garbage they leave were half of the process's CPU
 * (perf, a 200 MB study). Here plain-HTTP connections read straight into 256 KiB buffers taken
 * from a process-wide free list (net `onread` with a buffer generator: no copy in user space), and
 * body chunks are handed on as views of those buffers, which the consumer gives back once written
 * ('data' listeners get `(chunk, release)` when the request was made with `borrow`). A connection
 * with `POOL_BUFFERS` buffers lent out stops reading until one comes back: memory per transfer is
 * bounded whatever the consumer does. Framing: Content-Length, chunked, or the end of the
 * connection. Connections are kept alive per origin when the response allows it.
 *
 * The request and response objects mimic the part of node:http's API the gateway uses: the request
 * emits 'response' or 'error' and has setTimeout/destroy; the response has statusCode, headers,
 * pause/resume and emits 'data', 'end', 'aborted', 'error' and 'close'.
 */

const READ_BYTES = 256 * 1024;
/** Buffers a connection may lend out at once: the most a slow client can leave waiting in the gateway. */
const POOL_BUFFERS = 8;
/** The most body bytes a connection lends out before it stops reading (borrowed chunks not yet given back). */
export const LENT_BYTES_MAX = READ_BYTES * POOL_BUFFERS;
/** Buffers kept for reuse across connections (Orthanc closes its connection after each study). */
const FREE_LIST_MAX = 32;
const MAX_HEAD = 64 * 1024;
const MAX_CHUNK_LINE = 4096;
const IDLE_MS = 15_000;
const MAX_IDLE_PER_ORIGIN = 8;
const HEAD_END = Buffer.from('\r\n\r\n');

const free: Buffer[] = [];
const takeBuffer = (): Buffer => free.pop() ?? Buffer.allocUnsafe(READ_BYTES);
const giveBack = (b: Buffer): void => {
  if (free.length < FREE_LIST_MAX) free.push(b);
};

/** What a connection does with bytes: read into lent buffers (http) or 'data' events (https). */
interface Wire {
  socket: net.Socket;
  /** The current request's handler for a read; `view` is valid only during the call unless retained. */
  handler?: (view: Buffer, retain: () => () => void) => void;
  /** Buffers read into and not yet given back. */
  lent: number;
  /** The user (response.pause) or lending (POOL_BUFFERS out) holds the socket paused. */
  pausedByUser: boolean;
  pausedByPool: boolean;
}

function resumeIfFree(wire: Wire): void {
  if (!wire.pausedByUser && !wire.pausedByPool) wire.socket.resume();
}

/** One read, lent to the current handler: the buffer goes back to the free list when the last holder releases it. */
function lend(wire: Wire, buffer: Buffer, n: number): boolean {
  wire.lent++;
  let refs = 1;
  const unref = (): void => {
    if (--refs > 0) return;
    wire.lent--;
    giveBack(buffer);
    if (wire.pausedByPool && wire.lent < POOL_BUFFERS) {
      wire.pausedByPool = false;
      resumeIfFree(wire);
    }
  };
  const retain = (): (() => void) => {
    refs++;
    let done = false;
    return () => {
      if (!done) {
        done = true;
        unref();
      }
    };
  };
  wire.handler?.(buffer.subarray(0, n), retain);
  unref();
  if (wire.lent >= POOL_BUFFERS) {
    wire.pausedByPool = true;
    return false; // pauses the socket until a buffer comes back
  }
  return true;
}

function connect(url: URL): Wire {
  const port = Number(url.port || (url.protocol === 'https:' ? 443 : 80));
  const host = url.hostname.replace(/^\[|\]$/g, '');
  if (url.protocol === 'https:') {
    const socket = tls.connect({ host, port, servername: net.isIP(host) ? undefined : host, ALPNProtocols: ['http/1.1'] });
    const wire: Wire = { socket, lent: 0, pausedByUser: false, pausedByPool: false };
    // TLS hands out fresh buffers already: each is lent as it is.
    socket.on('data', (d: Buffer) => {
      if (!lend(wire, d, d.length)) socket.pause();
    });
    return wire;
  }
  let wire: Wire | undefined;
  const socket = net.connect({
    host,
    port,
    onread: {
      // Each read goes into a buffer of its own (node asks for the next one after every read), so
      // a read is lent on as it is, not copied out of a shared buffer.
      buffer: takeBuffer,
      callback: (n: number, buffer: Uint8Array) => (wire ? lend(wire, buffer as Buffer, n) : true),
    },
  });
  wire = { socket, lent: 0, pausedByUser: false, pausedByPool: false };
  return wire;
}

export class UpstreamResponse extends EventEmitter {
  paused = false;
  constructor(
    readonly statusCode: number,
    readonly headers: Record<string, string>,
    private readonly wire: Wire,
  ) {
    super();
  }

  pause(): this {
    this.paused = true;
    this.wire.pausedByUser = true;
    this.wire.socket.pause();
    return this;
  }

  resume(): this {
    this.paused = false;
    this.wire.pausedByUser = false;
    resumeIfFree(this.wire);
    this.emit('resumed');
    return this;
  }
}

export class UpstreamRequest extends EventEmitter {
  socket?: net.Socket;
  private timeoutMs = 0;
  private onTimeout?: () => void;
  destroyed = false;

  setTimeout(ms: number, callback?: () => void): this {
    this.timeoutMs = ms;
    if (callback) this.onTimeout = callback;
    this.socket?.setTimeout(ms);
    return this;
  }

  destroy(error?: Error): void {
    if (this.destroyed) return;
    this.destroyed = true;
    if (this.socket) this.socket.destroy(error);
    else if (error) queueMicrotask(() => this.emit('error', error));
  }

  /** Binds the request to the connection carrying it (on: registers a listener the connection drops when it goes idle). */
  attach(socket: net.Socket, on: (ev: string, fn: () => void) => void): void {
    this.socket = socket;
    socket.setTimeout(this.timeoutMs);
    on('timeout', () => this.onTimeout?.());
  }
}

interface Idle {
  wire: Wire;
  /** Removes the idle-time listeners when the connection is taken for a request. */
  release(): void;
}

const idle = new Map<string, Idle[]>();

function originOf(url: URL): string {
  return `${url.protocol}//${url.host}`;
}

function takeIdle(origin: string): Wire | undefined {
  const list = idle.get(origin);
  while (list && list.length > 0) {
    const entry = list.pop() as Idle;
    entry.release();
    if (!entry.wire.socket.destroyed && entry.wire.socket.readyState === 'open') return entry.wire;
    entry.wire.socket.destroy();
  }
  return undefined;
}

function keepIdle(origin: string, wire: Wire): void {
  const list = idle.get(origin) ?? [];
  idle.set(origin, list);
  if (list.length >= MAX_IDLE_PER_ORIGIN) {
    wire.socket.destroy();
    return;
  }
  const { socket } = wire;
  const drop = (): void => {
    const k = list.findIndex((e) => e.wire === wire);
    if (k >= 0) list.splice(k, 1);
    socket.destroy();
  };
  const events = ['timeout', 'error', 'close', 'end'] as const;
  for (const ev of events) socket.on(ev, drop);
  wire.handler = drop; // nothing is expected between responses
  socket.setTimeout(IDLE_MS);
  wire.pausedByUser = false;
  resumeIfFree(wire);
  list.push({
    wire,
    release: () => {
      for (const ev of events) socket.off(ev, drop);
      wire.handler = undefined;
    },
  });
}

function requestHead(url: URL, headers: Record<string, string>): string {
  let head = `GET ${url.pathname}${url.search} HTTP/1.1\r\nhost: ${url.host}\r\n`;
  for (const [k, v] of Object.entries(headers)) {
    if (/[\r\n]/.test(k) || /[\r\n]/.test(v)) throw new Error(`header ${k} holds a line break`);
    head += `${k}: ${v}\r\n`;
  }
  return `${head}\r\n`;
}

function parseHead(head: string): { status: number; headers: Record<string, string> } {
  const lines = head.split('\r\n');
  const m = /^HTTP\/1\.[01] (\d{3})(?: .*)?$/.exec(lines[0] ?? '');
  if (!m) throw new Error('the upstream did not answer with an HTTP/1.1 status line');
  const headers: Record<string, string> = {};
  for (const line of lines.slice(1)) {
    const colon = line.indexOf(':');
    if (colon <= 0) throw new Error('the upstream sent a malformed header line');
    const name = line.slice(0, colon).trim().toLowerCase();
    const value = line.slice(colon + 1).trim();
    headers[name] = headers[name] === undefined ? value : `${headers[name]}, ${value}`;
  }
  return { status: Number(m[1]), headers };
}

type Framing = { kind: 'length'; remaining: number } | { kind: 'chunked' } | { kind: 'close' } | { kind: 'none' };

export interface GetOptions {
  /**
   * Body chunks are lent, not given: 'data' listeners get `(chunk, release)` and must call
   * `release` once done with the chunk (after it was written). Otherwise chunks are copies.
   */
  borrow?: boolean;
}

/** A GET to `url` (http or https). Emits 'response' once the head has arrived. */
export function get(url: URL, headers: Record<string, string>, options: GetOptions = {}): UpstreamRequest {
  const req = new UpstreamRequest();
  const origin = originOf(url);
  const start = (reused: boolean): void => {
    const kept = reused ? takeIdle(origin) : undefined;
    const wire = kept ?? connect(url);
    const { socket } = wire;
    const wasReused = kept !== undefined;
    type Listener = (...args: any[]) => void; // eslint-disable-line @typescript-eslint/no-explicit-any
    const own: [string, Listener][] = [];
    const on = (ev: string, fn: Listener): void => {
      own.push([ev, fn]);
      socket.on(ev, fn);
    };
    const detach = (): void => {
      for (const [ev, fn] of own) socket.off(ev, fn);
      wire.handler = undefined;
      socket.setTimeout(0);
    };
    req.attach(socket, on);
    let response: UpstreamResponse | undefined;
    let head: Buffer = Buffer.alloc(0);
    let framing: Framing = { kind: 'none' };
    let finished = false;
    let keepAlive = false;
    // chunked decoding: -1 reading a size line; > 0 data bytes left; 0 the CRLF after data
    let chunkLeft = -1;
    let line = '';
    let trailers = false;
    let retain: () => () => void = () => () => undefined;

    const finish = (): void => {
      if (finished) return;
      finished = true;
      // As a paused node:http response does: 'end' waits for the consumer to resume.
      if (response?.paused) {
        const r = response;
        r.once('resumed', () => {
          r.emit('end');
          r.emit('close');
        });
      } else {
        response?.emit('end');
        response?.emit('close');
      }
      if (keepAlive && !req.destroyed) {
        detach();
        keepIdle(origin, wire);
      } else socket.destroy();
    };
    const emitData = (b: Buffer): void => {
      // Nobody reading (an error body being discarded): nothing is lent, so nothing can be kept.
      if (b.length === 0 || !response || response.listenerCount('data') === 0) return;
      if (options.borrow) response.emit('data', b, retain());
      else response.emit('data', Buffer.from(b));
    };
    const body = (buf: Buffer): void => {
      if (framing.kind === 'length') {
        const take = Math.min(framing.remaining, buf.length);
        framing.remaining -= take;
        emitData(take === buf.length ? buf : buf.subarray(0, take));
        // Bytes beyond the body are no response this client asked for: the connection is not reused.
        if (take < buf.length) keepAlive = false;
        if (framing.remaining === 0) finish();
        return;
      }
      if (framing.kind === 'close') {
        emitData(buf);
        return;
      }
      // chunked (RFC 9112 §7.1): size line [; extensions] CRLF, data, CRLF ... 0 CRLF, trailers, CRLF
      let i = 0;
      while (i < buf.length && !finished) {
        if (chunkLeft > 0) {
          const take = Math.min(chunkLeft, buf.length - i);
          emitData(buf.subarray(i, i + take));
          chunkLeft -= take;
          i += take;
          continue;
        }
        const nl = buf.indexOf(10, i);
        line += buf.toString('latin1', i, nl < 0 ? buf.length : nl + 1);
        i = nl < 0 ? buf.length : nl + 1;
        if (line.length > MAX_CHUNK_LINE) throw new Error('the upstream sent a chunk line that is too long');
        if (!line.endsWith('\n')) continue;
        const text = line.replace(/\r?\n$/, '');
        line = '';
        if (trailers) {
          if (text === '') {
            if (i < buf.length) keepAlive = false;
            finish();
          }
          continue;
        }
        if (chunkLeft === 0) {
          if (text !== '') throw new Error('the upstream sent chunk data longer than its size');
          chunkLeft = -1;
          continue;
        }
        const size = /^([0-9a-fA-F]{1,15})(?:[ \t]*;.*)?$/.exec(text);
        if (!size) throw new Error('the upstream sent a malformed chunk size');
        const n = parseInt(size[1] as string, 16);
        if (n === 0) trailers = true;
        else chunkLeft = n;
      }
    };
    // Before the head: the request's 'error'. During the body: the response's 'error' (the cause,
    // first), then 'aborted' and 'close'. An 'error' nobody listens for is not raised (EventEmitter
    // would throw it).
    const emitError = (target: EventEmitter, error: Error): void => {
      if (target.listenerCount('error') > 0) target.emit('error', error);
    };
    const fail = (error: Error): void => {
      if (finished) return;
      finished = true;
      socket.destroy();
      if (!response) {
        emitError(req, error);
        return;
      }
      emitError(response, error);
      response.emit('aborted');
      response.emit('close');
    };
    const onBytes = (buf: Buffer): void => {
      if (response) {
        body(buf);
        return;
      }
      head = head.length === 0 ? Buffer.from(buf) : Buffer.concat([head, buf]);
      const end = head.indexOf(HEAD_END);
      if (end < 0) {
        if (head.length > MAX_HEAD) throw new Error('the upstream response head is too large');
        return;
      }
      const parsed = parseHead(head.toString('latin1', 0, end));
      const rest = head.subarray(end + HEAD_END.length);
      head = Buffer.alloc(0);
      if (parsed.status >= 100 && parsed.status < 200) {
        if (rest.length > 0) onBytes(rest);
        return;
      }
      const te = parsed.headers['transfer-encoding']?.toLowerCase();
      const cl = parsed.headers['content-length'];
      if (parsed.status === 204 || parsed.status === 304) framing = { kind: 'none' };
      else if (te !== undefined) {
        // Only chunked itself: this client asks for no other transfer coding (no TE header), and one
        // stacked under chunked (gzip, chunked) would reach the viewer undecoded and unannounced.
        if (te.trim() !== 'chunked') throw new Error(`the upstream used a transfer coding this gateway does not decode (${te})`);
        framing = { kind: 'chunked' };
      } else if (cl !== undefined) {
        if (!/^\d{1,15}$/.test(cl)) throw new Error('the upstream sent an invalid Content-Length');
        framing = { kind: 'length', remaining: Number(cl) };
      } else framing = { kind: 'close' };
      // Both framings at once (RFC 9112 §6.3: chunked wins) is how responses get smuggled: answer this one, then close.
      const ambiguous = te !== undefined && cl !== undefined;
      // An intermediary forwarding such a message must drop the Content-Length it did not frame by (§6.3).
      if (ambiguous) delete parsed.headers['content-length'];
      keepAlive = framing.kind !== 'close' && !ambiguous && !/(^|,)\s*close\s*(,|$)/i.test(parsed.headers.connection ?? '');
      response = new UpstreamResponse(parsed.status, parsed.headers, wire);
      req.emit('response', response);
      if (framing.kind === 'none' || (framing.kind === 'length' && framing.remaining === 0)) {
        finish();
        return;
      }
      if (rest.length === 0) return;
      // `rest` is a copy (head was), so it may wait for the consumer to resume.
      if (response.paused) response.once('resumed', () => !finished && guarded(() => body(rest)));
      else body(rest);
    };
    const guarded = (work: () => void): void => {
      try {
        work();
      } catch (e) {
        fail(e instanceof Error ? e : new Error(String(e)));
      }
    };
    wire.handler = (view, retainView) => {
      retain = retainView;
      guarded(() => onBytes(view));
    };
    // A kept-alive connection the PACS closed as the request went out: try once more on a new one
    // (GET is safe to repeat), as long as not a byte of the answer has arrived.
    const retried = (): boolean => {
      if (!wasReused || response || head.length > 0 || req.destroyed || finished) return false;
      finished = true;
      detach();
      socket.destroy();
      start(false);
      return true;
    };
    on('end', () => {
      if (framing.kind === 'close' && response) finish();
      else if (!retried() && !finished) fail(Object.assign(new Error('the upstream closed the connection before the response was complete'), { code: 'ECONNRESET' }));
    });
    on('error', (e: Error) => {
      if (!retried()) fail(e);
    });
    on('close', () => {
      if (!retried() && !finished) fail(Object.assign(new Error('the upstream connection closed'), { code: 'ECONNRESET' }));
    });
    wire.pausedByUser = false;
    resumeIfFree(wire);
    try {
      socket.write(requestHead(url, headers));
    } catch (e) {
      fail(e instanceof Error ? e : new Error(String(e)));
    }
  };
  queueMicrotask(() => {
    if (!req.destroyed) start(true);
  });
  return req;
}

/** Idle kept-alive connections, by origin (for tests). */
export function idleConnections(origin: string): number {
  return idle.get(origin)?.length ?? 0;
}
