import net from 'node:net';
import { monitorEventLoopDelay } from 'node:perf_hooks';

/**
 * An open-loop load at a fixed rate: requests are due every 1/rate seconds whether or not earlier
 * ones have answered, and each latency is measured from when its request was due, not from when it
 * went out (so a stalled server is charged for the requests it held up: no coordinated omission).
 * autocannon's rate limit instead sends each connection's quota back to back at the start of every
 * second, which measures a burst, not the rate.
 *
 * The client is deliberately lean: keep-alive sockets, each reading into one fixed buffer, and
 * just enough HTTP/1.1 framing (Content-Length or chunked) to know where a response ends. A
 * generator built on node:http allocated enough per response that its own heap was marked and
 * compacted every 0.6 s, each time for 25-45 ms of wall time on this 2-core box (--trace-gc):
 * those pauses, not the server, were most of the p95 and p99 it reported. The generator's own
 * event-loop delay is reported beside the figure, so a stalled generator shows.
 */
export interface PacedResult {
  offered: number;
  completed: number;
  achievedPerSecond: number;
  errors: number;
  p50: number;
  p95: number;
  p99: number;
  max: number;
  /** The generator's own event-loop delay (ms): a high figure means the generator, not the server, was late. */
  generatorDelayP99: number;
  generatorDelayMax: number;
}

interface Conn {
  socket: net.Socket;
  connected: boolean;
  /** The server said it closes the connection after this response: not reused (the close replaces it). */
  closing: boolean;
  busy: boolean;
  dueAt: number;
  /** Response framing state. */
  phase: 'head' | 'length' | 'chunk-size' | 'chunk-data' | 'chunk-crlf' | 'trailer';
  head: Buffer;
  headLength: number;
  status: number;
  remaining: number;
  line: string;
}

const CR = 13;
const LF = 10;

/** Reads the status and framing from a complete head; true when the response has no body. */
function parseHead(c: Conn): boolean {
  const text = c.head.toString('latin1', 0, c.headLength);
  c.status = Number(text.slice(9, 12));
  c.closing = /\r\nconnection:[^\r]*close/i.test(text);
  const length = /\r\ncontent-length:\s*(\d+)/i.exec(text);
  if (/\r\ntransfer-encoding:[^\r]*chunked/i.test(text)) {
    c.phase = 'chunk-size';
    c.line = '';
    return false;
  }
  c.phase = 'length';
  c.remaining = length ? Number(length[1]) : 0;
  return c.remaining === 0;
}

/** Consumes `n` bytes of a response; returns true when the response ended. */
function consume(c: Conn, b: Buffer, n: number): boolean {
  let i = 0;
  while (i < n) {
    switch (c.phase) {
      case 'head': {
        const byte = b[i++] as number;
        if (c.headLength >= c.head.length) throw new Error('response head too large');
        c.head[c.headLength++] = byte;
        const k = c.headLength;
        if (byte === LF && k >= 4 && c.head[k - 2] === CR && c.head[k - 3] === LF && c.head[k - 4] === CR) {
          if (parseHead(c)) return i === n || fail('bytes after a response');
        }
        break;
      }
      case 'length': {
        const take = Math.min(c.remaining, n - i);
        c.remaining -= take;
        i += take;
        if (c.remaining === 0) return i === n || fail('bytes after a response');
        break;
      }
      case 'chunk-size': {
        const byte = b[i++] as number;
        if (byte === LF) {
          const size = parseInt(c.line, 16);
          c.line = '';
          if (size === 0) c.phase = 'trailer';
          else {
            c.remaining = size;
            c.phase = 'chunk-data';
          }
        } else if (byte !== CR) c.line += String.fromCharCode(byte);
        break;
      }
      case 'chunk-data': {
        const take = Math.min(c.remaining, n - i);
        c.remaining -= take;
        i += take;
        if (c.remaining === 0) {
          c.phase = 'chunk-crlf';
          c.remaining = 2;
        }
        break;
      }
      case 'chunk-crlf': {
        i++;
        if (--c.remaining === 0) c.phase = 'chunk-size';
        break;
      }
      case 'trailer': {
        const byte = b[i++] as number;
        if (byte === LF) {
          if (c.line === '') return i === n || fail('bytes after a response');
          c.line = '';
        } else if (byte !== CR) c.line += String.fromCharCode(byte);
        break;
      }
    }
  }
  return false;
}

function fail(message: string): never {
  throw new Error(message);
}

export async function pacedLoad(o: { url: string; headers: Record<string, string>; path: () => string; rate: number; seconds: number; connections: number }): Promise<PacedResult> {
  const target = new URL(o.url);
  const headerLines = Object.entries({ host: target.host, ...o.headers })
    .map(([k, v]) => `${k}: ${v}\r\n`)
    .join('');
  const total = Math.floor(o.rate * o.seconds);
  const latencies = new Float64Array(total);
  let completed = 0;
  let errors = 0;
  let sent = 0;
  let settled = 0;
  const waiting: number[] = []; // due times of requests with no free connection yet
  const idle: Conn[] = [];
  const conns: Conn[] = [];
  const delay = monitorEventLoopDelay({ resolution: 1 });

  let finish: () => void = () => undefined;
  const finished = new Promise<void>((resolve) => {
    finish = resolve;
  });
  const settle = (): void => {
    settled++;
    if (settled === total) finish();
  };
  const failed = (): void => {
    errors++;
    settle();
  };
  let alive = 0;

  const send = (c: Conn, dueAt: number): void => {
    c.busy = true;
    c.dueAt = dueAt;
    c.phase = 'head';
    c.headLength = 0;
    c.socket.write(`GET ${o.path()} HTTP/1.1\r\n${headerLines}\r\n`, 'latin1');
  };
  const free = (c: Conn): void => {
    c.busy = false;
    const next = waiting.shift();
    if (next !== undefined) send(c, next);
    else idle.push(c);
  };

  const open = (): Promise<Conn> =>
    new Promise((resolve, reject) => {
      const buffer = Buffer.allocUnsafe(64 * 1024);
      const c: Conn = { socket: undefined as unknown as net.Socket, connected: false, closing: false, busy: false, dueAt: 0, phase: 'head', head: Buffer.allocUnsafe(16 * 1024), headLength: 0, status: 0, remaining: 0, line: '' };
      c.socket = net.connect({
        host: target.hostname,
        port: Number(target.port),
        noDelay: true,
        onread: {
          buffer,
          callback: (n: number) => {
            if (!c.busy) return true;
            let ended: boolean;
            try {
              ended = consume(c, buffer, n);
            } catch {
              c.busy = false;
              failed();
              c.socket.destroy();
              return false;
            }
            if (ended) {
              if (c.status === 200) latencies[completed++] = performance.now() - c.dueAt;
              else errors++;
              settle();
              if (c.closing) {
                c.busy = false;
                c.socket.destroy();
                return false;
              }
              free(c);
            }
            return true;
          },
        },
      });
      c.socket.once('connect', () => {
        c.connected = true;
        alive++;
        resolve(c);
      });
      c.socket.on('error', reject);
      // A connection the server closed is replaced; a response it cut short counts as an error.
      c.socket.once('close', () => {
        const i = idle.indexOf(c);
        if (i >= 0) idle.splice(i, 1);
        if (c.busy) {
          c.busy = false;
          failed();
        }
        if (!c.connected) return; // one that never opened is not replaced
        alive--;
        if (settled < total) {
          open().then(
            (fresh) => {
              conns.push(fresh);
              if (settled < total) free(fresh);
              else fresh.socket.destroy(); // the run ended while it connected
            },
            () => {
              // The server is gone: what waits for a connection, and what comes due, fails at once.
              if (alive === 0) for (let w = waiting.shift(); w !== undefined; w = waiting.shift()) failed();
            },
          );
        }
      });
    });
  for (let k = 0; k < o.connections; k++) conns.push(await open());
  idle.push(...conns);

  delay.enable();
  const started = performance.now();
  const interval = 1000 / o.rate;
  const tick = (): void => {
    const now = performance.now();
    // Every request due by now goes out now (or waits for a connection), stamped with when it was due.
    while (sent < total && started + sent * interval <= now) {
      const dueAt = started + sent * interval;
      sent++;
      const c = idle.pop();
      if (c) send(c, dueAt);
      else if (alive === 0) failed();
      else waiting.push(dueAt);
    }
    if (sent < total) setTimeout(tick, 1);
  };
  tick();
  await finished;
  const seconds = (performance.now() - started) / 1000;
  delay.disable();
  for (const c of conns) c.socket.destroy();

  const sorted = latencies.subarray(0, completed).sort();
  const at = (p: number): number => (sorted.length ? (sorted[Math.min(sorted.length - 1, Math.ceil((p / 100) * sorted.length) - 1)] as number) : 0);
  return {
    offered: total,
    completed,
    achievedPerSecond: completed / seconds,
    errors,
    p50: at(50),
    p95: at(95),
    p99: at(99),
    max: sorted[sorted.length - 1] ?? 0,
    generatorDelayP99: delay.percentile(99) / 1e6,
    generatorDelayMax: delay.max / 1e6,
  };
}
