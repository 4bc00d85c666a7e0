import type { AppDeps } from '../fhir/pipeline';
import type { LocusExtension } from '../extensions';
import type { NotifyOptions } from './notify-config';
import { subscriptionRoutes } from './routes';
import type { NotifyWorker } from './worker';
import { createNotifyWorker } from './worker';

/**
 * Notifications to shared care records (IHE DSUBm over the R4 Subscriptions Backport):
 * Subscription routes, and the delivery worker the server starts and stops with itself.
 */
export function notifyExtension(options: NotifyOptions): LocusExtension & { workerFor(deps: AppDeps): NotifyWorker | undefined } {
  const workers = new WeakMap<AppDeps, NotifyWorker>();
  return {
    routes: subscriptionRoutes(options),
    background: {
      start(deps) {
        const worker = createNotifyWorker(deps, options);
        workers.set(deps, worker);
        worker.start();
      },
      async stop(deps) {
        await workers.get(deps)?.stop();
        workers.delete(deps);
      },
    },
    workerFor: (deps) => workers.get(deps),
  };
}
