import { loadDevIssuer } from '../../src/access/dev-issuer';
import { parseScopes } from '../../src/access/principal';
import { loadConfig } from '../../src/config';
import type { Config } from '../../src/config';
import { createLogger } from '../../src/log';
import { imagingStudyDef } from '../../src/registry/resource-types';
import { writeResources } from '../../src/registry/write-engine';
import { startLocus } from '../../src/server';
import type { Locus } from '../../src/server';
import { testDatabase } from '../helpers/db';
import { aStudy, patient, post } from '../helpers/fixtures';
import type { TestServer } from '../helpers/server';
import { Receiver, waitFor } from './receiver';
import { aSubscription, notifyTestEnv, sharedCareNetwork, subscriberToken } from './support';

notifyTestEnv();
// This test is about outages that end: the subscription must keep retrying (capped backoff) rather
// than reach `error` after the suite's usual 3 failures, which a 10-pointer outage can outlast.
process.env.LOCUS_NOTIFY_MAX_FAILURES = '1000';

/**
 * At-least-once delivery across failures: the receiver dies mid-stream and comes back on its
 * port; Locus stops mid-delivery and a new Locus starts over the same database; pointers committed
 * while no Locus runs (a crash between commit and delivery) still go out.
 */
describe('notification delivery survives receiver and registry restarts', () => {
  test('when the receiver and Locus restart mid-stream, then the receiver ends with every event, in order, by event number', async () => {
    const { db, drop } = await testDatabase();
    const issuer = await loadDevIssuer();
    const base = loadConfig({ PORT: '0', HOST: '127.0.0.1', LOCUS_LOG_LEVEL: 'silent', LOCUS_AUDIENCE: 'urn:locus:test', LOCUS_DEV_ISSUER: 'false' });
    const config: Config = { ...base, trustedIssuers: [issuer.trusted] };
    const receiver = new Receiver();
    let locus: Locus | undefined;
    const start = async (): Promise<TestServer> => {
      locus = await startLocus(config, { db, logger: createLogger('silent') });
      config.baseUrl = locus.url;
      return { baseUrl: locus.url, fhirBase: `${locus.url}/fhir`, db, locus, config, tokenFor: (org, role, extra) => issuer.mint({ org, role, audience: config.audience, ...extra }), close: async () => undefined };
    };
    try {
      await receiver.start();
      let s = await start();
      const net = await sharedCareNetwork(s);
      const nhs = patient(31);
      const sub = await post(s, await subscriberToken(s), '/fhir/Subscription', aSubscription({ endpoint: receiver.url, patient: nhs }));
      expect(sub.status).toBe(201);
      const id = sub.body.id as string;
      await waitFor('handshake', () => receiver.of(id, 'handshake')[0]);
      const rrk = await s.tokenFor('RRK', 'publisher');
      let published = 0;
      const publish = async (n: number): Promise<void> => {
        for (let i = 0; i < n; i++) {
          const r = await post(s, rrk, '/fhir/ImagingStudy', aStudy({ nhs, endpointId: net.RRK!.endpointId }));
          expect(r.status).toBe(201);
          published++;
        }
      };
      await publish(10);
      await receiver.stop(); // the receiver dies mid-stream
      await publish(10);
      await receiver.start(); // and comes back on the same port
      await publish(10);
      await locus?.close(); // Locus stops mid-delivery
      // Committed while no Locus runs: the outbox holds them.
      const asRrk = { subject: 'pacs', issuer: 'test', organization: 'RRK', role: 'publisher' as const, scopes: parseScopes('system/ImagingStudy.cruds'), purposeOfUse: 'TREAT' };
      await db.transaction((tx) =>
        writeResources(tx, asRrk, Array.from({ length: 10 }, () => ({ method: 'POST' as const, def: imagingStudyDef, resource: aStudy({ nhs, endpointId: net.RRK!.endpointId }), at: 'ImagingStudy' }))),
      );
      published += 10;
      s = await start(); // a new Locus over the same database
      await publish(10);
      const numbers = await waitFor(`${published} events`, () => (new Set(receiver.eventNumbers(id)).size >= published ? receiver.eventNumbers(id) : undefined), 30000);
      const unique = [...new Set(numbers)];
      expect(unique).toEqual(Array.from({ length: published }, (_, i) => i + 1));
      // In order: each first delivery of an event comes after the one before it.
      expect(unique).toEqual([...unique].sort((a, b) => a - b));
    } finally {
      await locus?.close();
      await receiver.stop();
      await drop();
    }
  }, 60000);
});
