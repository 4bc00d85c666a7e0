import http from 'node:http';
import type { AddressInfo } from 'node:net';

export interface SeenRequest {
  url: string;
  headers: http.IncomingHttpHeaders;
}

/** A scriptable stand-in for a trust's PACS, for the gateway behaviours Orthanc cannot be made to show (stalls, resets). */
export interface FakePacs {
  root: string;
  seen: SeenRequest[];
  /** How the next requests are answered. */
  behave(handler: (req: http.IncomingMessage, res: http.ServerResponse) => void): void;
  /** Resolves when an upstream request's connection closes (aborted by the gateway, or finished). */
  closed(): Promise<void>;
  stop(): Promise<void>;
}

export async function startFakePacs(): Promise<FakePacs> {
  const seen: SeenRequest[] = [];
  let handler: (req: http.IncomingMessage, res: http.ServerResponse) => void = (_req, res) => res.end();
  let closeWaiters: (() => void)[] = [];
  const server = http.createServer((req, res) => {
    seen.push({ url: req.url ?? '', headers: req.headers });
    res.on('close', () => {
      const w = closeWaiters;
      closeWaiters = [];
      for (const f of w) f();
    });
    handler(req, res);
  });
  await new Promise<void>((r) => server.listen(0, '127.0.0.1', r));
  const { port } = server.address() as AddressInfo;
  return {
    root: `http://127.0.0.1:${port}/dicom-web`,
    seen,
    behave(h) {
      handler = h;
    },
    closed: () => new Promise<void>((r) => closeWaiters.push(r)),
    async stop() {
      server.closeAllConnections();
      await new Promise<void>((r) => server.close(() => r()));
    },
  };
}

/** Writes `total` bytes of a multipart/related body as fast as the socket takes them, counting what was accepted. */
export function streamBytes(res: http.ServerResponse, total: number, counter: { written: number }, chunk = 64 * 1024): void {
  res.writeHead(200, { 'content-type': 'multipart/related; type="application/dicom"; boundary=locus', 'content-length': String(total) });
  const block = Buffer.alloc(chunk, 0x41);
  const pump = (): void => {
    while (counter.written < total) {
      const n = Math.min(chunk, total - counter.written);
      counter.written += n;
      if (!res.write(n === chunk ? block : block.subarray(0, n))) {
        res.once('drain', pump);
        return;
      }
    }
    res.end();
  };
  pump();
}
