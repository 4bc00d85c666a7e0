import net from 'node:net';
import type { AddressInfo } from 'node:net';
import { LENT_BYTES_MAX, get, idleConnections } from '../../src/gateway/http1-client';

/** A raw TCP server that answers each request with the given bytes, written in the given pieces. */
async function rawServer(answer: (requestNo: number) => { pieces: (string | Buffer)[]; close?: boolean; drop?: boolean }): Promise<{ url: string; requests: string[]; connections: () => number; close(): Promise<void> }> {
  const requests: string[] = [];
  let connections = 0;
  const sockets = new Set<net.Socket>();
  const server = net.createServer((socket) => {
    connections++;
    sockets.add(socket);
    socket.setNoDelay(true);
    let buffered = '';
    socket.on('data', async (d) => {
      buffered += d.toString('latin1');
      while (buffered.includes('\r\n\r\n')) {
        const end = buffered.indexOf('\r\n\r\n') + 4;
        requests.push(buffered.slice(0, end));
        buffered = buffered.slice(end);
        const { pieces, close, drop } = answer(requests.length);
        if (drop) {
          socket.destroy();
          return;
        }
        for (const p of pieces) {
          socket.write(p);
          await new Promise((r) => setTimeout(r, 2));
        }
        if (close) socket.end();
      }
    });
    socket.on('close', () => sockets.delete(socket));
  });
  await new Promise<void>((r) => server.listen(0, '127.0.0.1', () => r()));
  return {
    url: `http://127.0.0.1:${(server.address() as AddressInfo).port}`,
    requests,
    connections: () => connections,
    close: () =>
      new Promise<void>((r) => {
        for (const s of sockets) s.destroy();
        server.close(() => r());
      }),
  };
}

interface Got {
  status: number;
  headers: Record<string, string>;
  body: string;
  outcome: 'end' | 'aborted' | 'error';
  error?: string;
}

function fetchOnce(url: string, headers: Record<string, string> = {}): Promise<Got> {
  return new Promise((resolve) => {
    const req = get(new URL(url), { accept: '*/*', ...headers });
    req.setTimeout(3000, () => req.destroy(new Error('timed out')));
    req.on('error', (e) => resolve({ status: 0, headers: {}, body: '', outcome: 'error', error: e.message }));
    req.on('response', (up) => {
      let body = '';
      up.on('data', (c: Buffer) => {
        body += c.toString('latin1');
      });
      up.once('end', () => resolve({ status: up.statusCode, headers: up.headers, body, outcome: 'end' }));
      up.once('aborted', () => resolve({ status: up.statusCode, headers: up.headers, body, outcome: 'aborted' }));
    });
  });
}

/** Splits a string into pieces of 1..7 characters, so framing lands across reads anywhere. */
function shred(text: string): string[] {
  const out: string[] = [];
  for (let i = 0, n = 1; i < text.length; i += n, n = (n % 7) + 1) out.push(text.slice(i, i + n));
  return out;
}

describe('the gateway HTTP/1.1 client', () => {
  it('when the body is chunked with extensions and trailers, split across reads at every point, then exactly the data arrives', async () => {
    const wire = 'HTTP/1.1 200 OK\r\nContent-Type: multipart/related\r\nTransfer-Encoding: chunked\r\n\r\n5;name=x\r\nhello\r\n1\r\n \r\nA\r\n0123456789\r\n0\r\nX-Trailer: yes\r\n\r\n';
    const s = await rawServer(() => ({ pieces: shred(wire) }));
    try {
      const got = await fetchOnce(`${s.url}/studies/1`);
      expect(got).toMatchObject({ status: 200, body: 'hello 0123456789', outcome: 'end' });
      expect(got.headers['content-type']).toBe('multipart/related');
    } finally {
      await s.close();
    }
  });

  it('when the body has a Content-Length, then that many bytes arrive and the kept-alive connection carries the next request', async () => {
    const s = await rawServer((n) => ({ pieces: [`HTTP/1.1 200 OK\r\nContent-Length: 6\r\n\r\n`, `body-${n}`] }));
    try {
      expect(await fetchOnce(`${s.url}/a`)).toMatchObject({ status: 200, body: 'body-1', outcome: 'end' });
      expect(idleConnections(s.url)).toBe(1);
      expect(await fetchOnce(`${s.url}/b`)).toMatchObject({ status: 200, body: 'body-2', outcome: 'end' });
      expect(s.connections()).toBe(1);
      expect(s.requests[1]).toMatch(/^GET \/b HTTP\/1\.1\r\n/);
    } finally {
      await s.close();
    }
  });

  it('when the PACS ends the body by closing the connection (as Orthanc does), then everything up to the close arrives, and the next request opens a new connection', async () => {
    const s = await rawServer(() => ({ pieces: ['HTTP/1.1 200 OK\r\nContent-Type: multipart/related\r\n\r\n', 'part one, ', 'part two'], close: true }));
    try {
      expect(await fetchOnce(`${s.url}/x`)).toMatchObject({ status: 200, body: 'part one, part two', outcome: 'end' });
      expect(await fetchOnce(`${s.url}/y`)).toMatchObject({ status: 200, body: 'part one, part two', outcome: 'end' });
      expect(s.connections()).toBe(2);
    } finally {
      await s.close();
    }
  });

  it('when the connection drops before Content-Length bytes or the last chunk, then the response is aborted, not ended', async () => {
    const short = await rawServer(() => ({ pieces: ['HTTP/1.1 200 OK\r\nContent-Length: 100\r\n\r\n', 'only this'], close: true }));
    const chunked = await rawServer(() => ({ pieces: ['HTTP/1.1 200 OK\r\nTransfer-Encoding: chunked\r\n\r\n', '5\r\nhello\r\n'], close: true }));
    try {
      expect(await fetchOnce(`${short.url}/s`)).toMatchObject({ body: 'only this', outcome: 'aborted' });
      expect(await fetchOnce(`${chunked.url}/c`)).toMatchObject({ body: 'hello', outcome: 'aborted' });
    } finally {
      await short.close();
      await chunked.close();
    }
  });

  it('when the answer is not HTTP, has a bad chunk size or an unknown transfer coding, then the request fails with an error', async () => {
    for (const wire of [
      'SSH-2.0-OpenSSH\r\n\r\n',
      'HTTP/1.1 200 OK\r\nTransfer-Encoding: chunked\r\n\r\nzz\r\n',
      'HTTP/1.1 200 OK\r\nTransfer-Encoding: gzip\r\n\r\n',
      // gzip under chunked would reach the viewer still compressed, with nothing saying so
      'HTTP/1.1 200 OK\r\nTransfer-Encoding: gzip, chunked\r\n\r\n5\r\nhello\r\n0\r\n\r\n',
    ]) {
      const s = await rawServer(() => ({ pieces: [wire], close: true }));
      try {
        const got = await fetchOnce(`${s.url}/z`);
        expect(got.outcome === 'error' || got.outcome === 'aborted').toBe(true);
      } finally {
        await s.close();
      }
    }
  });

  it('when a response has both Content-Length and chunked, or bytes after its body, then it is read as RFC 9112 says and its connection is not reused', async () => {
    const answers = [
      // chunked wins over Content-Length; the 999 is never trusted
      'HTTP/1.1 200 OK\r\nContent-Length: 999\r\nTransfer-Encoding: chunked\r\n\r\n5\r\nhello\r\n0\r\n\r\n',
      // a second, unasked-for response smuggled behind the first one's body
      'HTTP/1.1 200 OK\r\nContent-Length: 5\r\n\r\nhelloHTTP/1.1 200 OK\r\nContent-Length: 6\r\n\r\nforged',
      'HTTP/1.1 200 OK\r\nTransfer-Encoding: chunked\r\n\r\n5\r\nhello\r\n0\r\n\r\nHTTP/1.1 200 OK\r\nContent-Length: 6\r\n\r\nforged',
    ];
    for (const answer of answers) {
      const s = await rawServer((n) => ({ pieces: n === 1 ? [answer] : ['HTTP/1.1 200 OK\r\nContent-Length: 5\r\n\r\nright'] }));
      try {
        const first = await fetchOnce(`${s.url}/first`);
        expect(first).toMatchObject({ status: 200, body: 'hello', outcome: 'end' });
        // what the gateway would pass on never claims a length the body was not framed by
        if (first.headers['transfer-encoding'] !== undefined) expect(first.headers['content-length']).toBeUndefined();
        expect(idleConnections(s.url)).toBe(0);
        expect(await fetchOnce(`${s.url}/second`)).toMatchObject({ status: 200, body: 'right', outcome: 'end' });
        expect(s.connections()).toBe(2);
      } finally {
        await s.close();
      }
    }
  });

  it('when a kept-alive connection was closed by the PACS as the next request went out, then the request is retried once on a new connection', async () => {
    // The second request arrives on the kept-alive connection, which the PACS drops without answering.
    const s = await rawServer((n) => (n === 2 ? { pieces: [], drop: true } : { pieces: [`HTTP/1.1 200 OK\r\nContent-Length: 2\r\n\r\n`, `r${n}`] }));
    try {
      expect(await fetchOnce(`${s.url}/1`)).toMatchObject({ body: 'r1' });
      expect(await fetchOnce(`${s.url}/2`)).toMatchObject({ status: 200, body: 'r3', outcome: 'end' });
      expect(s.connections()).toBe(2);
    } finally {
      await s.close();
    }
  });

  it('when a header value holds a line break, then nothing is sent (no request splitting)', async () => {
    const s = await rawServer(() => ({ pieces: ['HTTP/1.1 200 OK\r\nContent-Length: 0\r\n\r\n'] }));
    try {
      const got = await fetchOnce(`${s.url}/h`, { authorization: 'Bearer x\r\nX-Injected: 1' });
      expect(got.outcome).toBe('error');
      expect(s.requests).toEqual([]);
    } finally {
      await s.close();
    }
  });

  it('when chunks are borrowed and the consumer does not give them back, then the connection stops reading at the size of its pool, and resumes, intact, once they are released', async () => {
    const total = 4 * 1024 * 1024;
    const payload = Buffer.alloc(total);
    for (let i = 0; i < total; i++) payload[i] = (i * 31) & 0xff;
    const s = await rawServer(() => ({ pieces: [`HTTP/1.1 200 OK\r\nContent-Length: ${total}\r\n\r\n`, payload] }));
    try {
      const held: { chunk: Buffer; release: () => void }[] = [];
      const received: Buffer[] = [];
      let ended = false;
      const req = get(new URL(`${s.url}/big`), {}, { borrow: true });
      await new Promise<void>((resolve) =>
        req.on('response', (up) => {
          up.on('data', (chunk: Buffer, release: () => void) => {
            received.push(Buffer.from(chunk));
            held.push({ chunk, release });
          });
          up.once('end', () => {
            ended = true;
          });
          resolve();
        }),
      );
      await new Promise((r) => setTimeout(r, 300));
      const before = received.reduce((n, c) => n + c.length, 0);
      expect(ended).toBe(false);
      expect(before).toBeGreaterThan(0);
      expect(before).toBeLessThanOrEqual(LENT_BYTES_MAX);
      // Give everything back as it arrives: the rest flows.
      for (const h of held.splice(0)) h.release();
      await new Promise<void>((resolve) => {
        const tick = setInterval(() => {
          for (const h of held.splice(0)) h.release();
          if (ended) {
            clearInterval(tick);
            resolve();
          }
        }, 5);
      });
      expect(Buffer.concat(received).equals(payload)).toBe(true);
    } finally {
      await s.close();
    }
  });

  it('when a response without a body arrives while its consumer has paused it, then end waits for resume (as node:http does)', async () => {
    const s = await rawServer(() => ({ pieces: ['HTTP/1.1 204 No Content\r\n\r\n'] }));
    try {
      const events: string[] = [];
      const req = get(new URL(`${s.url}/empty`), {}, { borrow: true });
      const up = await new Promise<import('../../src/gateway/http1-client').UpstreamResponse>((resolve) => req.on('response', (r) => {
        r.pause();
        resolve(r);
      }));
      await new Promise((r) => setTimeout(r, 20));
      up.on('end', () => events.push('end'));
      events.push('listening');
      const ended = new Promise<void>((r) => up.once('close', () => r()));
      up.resume();
      await ended;
      expect([up.statusCode, events]).toEqual([204, ['listening', 'end']]);
    } finally {
      await s.close();
    }
  });

  it('when an error body is discarded unread, then the kept-alive connection serves the next request (nothing stays lent)', async () => {
    const s = await rawServer((n) => ({ pieces: n <= 10 ? ['HTTP/1.1 404 Not Found\r\nContent-Length: 13\r\n\r\nno such study'] : ['HTTP/1.1 200 OK\r\nContent-Length: 2\r\n\r\nok'] }));
    try {
      for (let i = 0; i < 10; i++) {
        const req = get(new URL(`${s.url}/missing`), {}, { borrow: true });
        await new Promise<void>((resolve) => req.on('response', (up) => {
          up.resume();
          up.once('close', () => resolve());
        }));
      }
      const got = await fetchOnce(`${s.url}/present`);
      expect([got.status, got.body, s.connections()]).toEqual([200, 'ok', 1]);
    } finally {
      await s.close();
    }
  });
});
