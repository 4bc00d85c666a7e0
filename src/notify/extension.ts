import { registerCapability } from '../fhir/capability';
import type { AppDeps } from '../fhir/pipeline';
import type { LocusExtension } from '../extensions';
import type { NotifyOptions } from './notify-config';
import { subscriptionRoutes } from './routes';
import { subscriptionSearchCapability } from './subscription-search';
import { BACKPORT_SUBSCRIPTION_PROFILE, POINTER_TOPIC } from './topic';
import type { NotifyWorker } from './worker';
import { createNotifyWorker } from './worker';

const BACKPORT_OPERATIONS = 'http://hl7.org/fhir/uv/subscriptions-backport/OperationDefinition';
let registered = false;

/** Subscription in the CapabilityStatement: what routes.ts serves, with the backport's $status and $events. */
function registerNotifyCapability(): void {
  if (registered) return;
  registered = true;
  registerCapability({
    resources: [
      {
        type: 'Subscription',
        profile: BACKPORT_SUBSCRIPTION_PROFILE,
        documentation: `R4 Subscriptions Backport (IHE DSUBm), rest-hook only (https, at a public address unless the deployment allows private ones; redirects not followed), topic ${POINTER_TOPIC}; filter by patient.identifier or custodian (backport-filter-criteria). A Subscription is visible to its owner organisation only; search-type finds the caller's organisation's Subscriptions only (at most 100 a search, oldest first, total counting every match), by _id, status and url, with _count and _summary=count.`,
        interaction: [{ code: 'create' }, { code: 'read' }, { code: 'update' }, { code: 'delete' }, { code: 'search-type' }],
        versioning: 'versioned',
        updateCreate: false,
        searchParam: subscriptionSearchCapability(),
        operation: [
          {
            name: 'status',
            definition: `${BACKPORT_OPERATIONS}/backport-subscription-status`,
            documentation: 'GET Subscription/[id]/$status: a searchset Bundle holding the SubscriptionStatus Parameters (query-status).',
          },
          {
            name: 'events',
            definition: `${BACKPORT_OPERATIONS}/backport-subscription-events`,
            documentation:
              'GET Subscription/[id]/$events?eventsSinceNumber=&eventsUntilNumber=&content=empty|id-only|full-resource: past events (at most 1000) as a query-event notification Bundle; sharing rules re-checked.',
          },
        ],
      },
    ],
  });
}

/**
 * Notifications to shared care records (IHE DSUBm over the R4 Subscriptions Backport):
 * Subscription routes, and the delivery worker the server starts and stops with itself.
 */
export function notifyExtension(options: NotifyOptions): LocusExtension & { workerFor(deps: AppDeps): NotifyWorker | undefined } {
  registerNotifyCapability();
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
