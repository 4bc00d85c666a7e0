import type { AppDeps } from '../fhir/pipeline';
import { claimDue, deliverOne, releaseLeases } from './deliver';
import { dispatchOutbox } from './dispatch';
import type { NotifyOptions } from './notify-config';

type WorkerDeps = Pick<AppDeps, 'db' | 'policy' | 'audit' | 'logger' | 'config'>;

export interface NotifyWorker {
  start(): void;
  /** Stops claiming work, waits for deliveries in flight, and gives their leases back. */
  stop(): Promise<void>;
  /** Runs one dispatch-and-deliver round (tests and benchmarks drive it directly too). */
  tick(): Promise<TickResult>;
}

const PARALLEL_SUBSCRIPTIONS = 16;

export interface TickResult {
  dispatched: number;
  claimed: number;
  delivered: number;
}

/**
 * The delivery loop: outbox → numbered events → rest-hook POSTs. It polls (the database is the
 * queue, so any API node can run it and a restarted node picks up where the outbox and the
 * subscriptions' acknowledged event numbers say), and goes straight round again while there is work.
 */
export function createNotifyWorker(deps: WorkerDeps, options: NotifyOptions): NotifyWorker {
  let running = false;
  let loop: Promise<void> | undefined;
  let wake: (() => void) | undefined;
  const held = new Set<string>();

  const tick = async (): Promise<TickResult> => {
    let dispatched = 0;
    for (let round = 0; round < 10; round++) {
      const d = await dispatchOutbox(deps.db, 1000);
      dispatched += d.events;
      if (d.taken < 1000) break;
    }
    const due = await claimDue(deps.db, options, PARALLEL_SUBSCRIPTIONS);
    for (const s of due) held.add(s.id);
    const counts = await Promise.all(
      due.map(async (s) => {
        try {
          return await deliverOne(deps, s, options);
        } catch (e) {
          deps.logger.error({ subscription: s.id, err: e instanceof Error ? e.message : String(e) }, 'notification delivery failed');
          await releaseLeases(deps.db, [s.id]).catch(() => undefined);
          return 0;
        } finally {
          held.delete(s.id);
        }
      }),
    );
    return { dispatched, claimed: due.length, delivered: counts.reduce((a, b) => a + b, 0) };
  };

  const run = async (): Promise<void> => {
    while (running) {
      let busy = false;
      try {
        const r = await tick();
        busy = r.dispatched > 0 || r.claimed > 0;
      } catch (e) {
        deps.logger.error({ err: e instanceof Error ? e.message : String(e) }, 'notification worker round failed');
      }
      if (running && !busy) {
        await new Promise<void>((resolve) => {
          const t = setTimeout(resolve, options.pollMs);
          wake = () => {
            clearTimeout(t);
            resolve();
          };
        });
        wake = undefined;
      }
    }
  };

  return {
    start() {
      if (running || !options.enabled) return;
      running = true;
      loop = run();
    },
    async stop() {
      running = false;
      wake?.();
      await loop;
      loop = undefined;
      await releaseLeases(deps.db, [...held]).catch(() => undefined);
    },
    tick,
  };
}
