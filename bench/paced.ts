import http from 'node:http';

/**
 * An open-loop load at a fixed rate: requests are due every 1/rate seconds whether or not earlier
 * ones have answered, and each latency is measured from when its request was due, not from when it
 * went out (so a stalled server is charged for the requests it held up: no coordinated omission).
 * autocannon's rate limit instead sends each connection's quota back to back at the start of every
 * second, which measures a burst, not the rate. Keep-alive connections, up to `connections` open.
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
}

export async function pacedLoad(o: { url: string; headers: Record<string, string>; path: () => string; rate: number; seconds: number; connections: number }): Promise<PacedResult> {
  const agent = new http.Agent({ keepAlive: true, maxSockets: o.connections });
  const target = new URL(o.url);
  const latencies: number[] = [];
  let errors = 0;
  let inFlight = 0;
  const started = performance.now();
  const interval = 1000 / o.rate;
  const total = Math.floor(o.rate * o.seconds);
  let sent = 0;
  await new Promise<void>((resolve) => {
    const finishIfDone = (): void => {
      if (sent === total && inFlight === 0) resolve();
    };
    const fire = (dueAt: number): void => {
      inFlight++;
      const req = http.get({ host: target.hostname, port: target.port, path: o.path(), headers: o.headers, agent }, (res) => {
        res.resume();
        res.on('end', () => {
          if (res.statusCode === 200) latencies.push(performance.now() - dueAt);
          else errors++;
          inFlight--;
          finishIfDone();
        });
      });
      req.on('error', () => {
        errors++;
        inFlight--;
        finishIfDone();
      });
    };
    const tick = (): void => {
      const now = performance.now();
      // Every request due by now goes out now, each stamped with the time it was due.
      while (sent < total && started + sent * interval <= now) {
        fire(started + sent * interval);
        sent++;
      }
      if (sent < total) setTimeout(tick, 1);
      else finishIfDone();
    };
    tick();
  });
  const seconds = (performance.now() - started) / 1000;
  agent.destroy();
  const sorted = Float64Array.from(latencies).sort();
  const at = (p: number): number => (sorted.length ? (sorted[Math.min(sorted.length - 1, Math.ceil((p / 100) * sorted.length) - 1)] as number) : 0);
  return { offered: total, completed: latencies.length, achievedPerSecond: latencies.length / seconds, errors, p50: at(50), p95: at(95), p99: at(99), max: sorted[sorted.length - 1] ?? 0 };
}
