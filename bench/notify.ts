/**
 * Notification delivery throughput: pointers are published (transaction-sized batches through the
 * write engine, outbox included) while the delivery worker sends them to a real HTTP receiver on
 * loopback. Reports events/s from the first publish to the last event received.
 */
import { createServer } from 'node:http';
import type { AddressInfo } from 'node:net';
import { loadDevIssuer } from '../src/access/dev-issuer';
import { parseScopes } from '../src/access/principal';
import { loadConfig } from '../src/config';
import { createLogger } from '../src/log';
import { EXT_FILTER_CRITERIA, EXT_PAYLOAD_CONTENT, POINTER_TOPIC } from '../src/notify/topic';
import { endpointDef, imagingStudyDef, organizationDef } from '../src/registry/resource-types';
import { writeResources } from '../src/registry/write-engine';
import { startLocus } from '../src/server';
import { DEFAULT_DATABASE_URL, dropAndCreateSchema, openBenchDatabase } from './common';
import { testNhsNumber } from '../src/registry/nhs-number';

export const NOTIFY_SCHEMA = 'bench_notify';

export interface NotifyFigures {
  events: number;
  seconds: number;
  eventsPerSecond: number;
  publishSeconds: number;
  notifications: number;
}

const ODS = 'https://fhir.nhs.uk/Id/ods-organization-code';
const SYSTEM = { subject: 'bench', issuer: 'bench', organization: 'ADMIN', role: 'system' as const, scopes: parseScopes('system/*.cruds'), purposeOfUse: 'TREAT' };

export async function benchNotify(options: { events?: number; batch?: number; databaseUrl?: string } = {}): Promise<NotifyFigures> {
  const total = options.events ?? 5000;
  const batch = options.batch ?? 100;
  Object.assign(process.env, { LOCUS_NOTIFY_ALLOW_HTTP: 'true', LOCUS_NOTIFY_ALLOW_PRIVATE: 'true', LOCUS_NOTIFY_POLL_MS: '10' });
  let received = 0;
  let notifications = 0;
  let lastAt = 0;
  const receiver = createServer((req, res) => {
    const chunks: Buffer[] = [];
    req.on('data', (c: Buffer) => chunks.push(c));
    req.on('end', () => {
      const body = JSON.parse(Buffer.concat(chunks).toString('utf8')) as { entry: { resource?: { parameter?: { name: string }[] } }[] };
      received += (body.entry[0]?.resource?.parameter ?? []).filter((p) => p.name === 'notification-event').length;
      notifications++;
      lastAt = performance.now();
      res.end();
    });
  });
  await new Promise<void>((r) => receiver.listen(0, '127.0.0.1', () => r()));
  const port = (receiver.address() as AddressInfo).port;
  // A schema of its own, made afresh: the organisations it registers would collide on a second run.
  const databaseUrl = options.databaseUrl ?? DEFAULT_DATABASE_URL;
  await dropAndCreateSchema(databaseUrl, NOTIFY_SCHEMA);
  const db = await openBenchDatabase(databaseUrl, 10, NOTIFY_SCHEMA);
  const issuer = await loadDevIssuer();
  const config = { ...loadConfig({ PORT: '0', LOCUS_LOG_LEVEL: 'silent', LOCUS_AUDIENCE: 'urn:locus:bench', LOCUS_DEV_ISSUER: 'false' }), trustedIssuers: [issuer.trusted] };
  const locus = await startLocus(config, { db, logger: createLogger('silent') });
  config.baseUrl = locus.url;
  try {
    const [org, scr] = await db.transaction((tx) =>
      writeResources(tx, SYSTEM, ['RRK', 'SCR01'].map((ods) => ({ method: 'POST' as const, def: organizationDef, at: 'Organization', resource: { resourceType: 'Organization', identifier: [{ system: ODS, value: ods }], type: [{ coding: [{ system: 'https://locus.nhs.example/fhir/CodeSystem/organization-kind', code: ods === 'RRK' ? 'network-trust' : 'shared-care-record' }] }], name: ods } }))),
    );
    void scr;
    const [ep] = await db.transaction((tx) =>
      writeResources(tx, SYSTEM, [{ method: 'POST', def: endpointDef, at: 'Endpoint', resource: { resourceType: 'Endpoint', status: 'active', connectionType: { system: 'http://terminology.hl7.org/CodeSystem/endpoint-connection-type', code: 'dicom-wado-rs' }, managingOrganization: { reference: `Organization/${org?.id}` }, payloadType: [{ text: 'DICOM' }], address: 'https://pacs.example.nhs.uk/dicom-web' } }]),
    );
    await db.query(`insert into sharing_agreement (id, provider_ods, recipient_ods, categories, period_start, period_end, description) values ('b', 'RRK', 'SCR01', '{}', now() - interval '1 day', null, 'bench')`);
    await (locus.deps.policy as { refresh?: () => Promise<void> }).refresh?.();
    const token = await issuer.mint({ org: 'SCR01', role: 'system', scope: 'system/Subscription.cruds', audience: config.audience });
    const sub = await fetch(`${locus.url}/fhir/Subscription`, {
      method: 'POST',
      headers: { authorization: `Bearer ${token}`, 'content-type': 'application/fhir+json' },
      body: JSON.stringify({ resourceType: 'Subscription', status: 'requested', criteria: POINTER_TOPIC, _criteria: { extension: [{ url: EXT_FILTER_CRITERIA, valueString: `custodian=${ODS}|RRK` }] }, channel: { type: 'rest-hook', endpoint: `http://127.0.0.1:${port}/`, payload: 'application/fhir+json', _payload: { extension: [{ url: EXT_PAYLOAD_CONTENT, valueCode: 'id-only' }] } } }),
    });
    if (sub.status !== 201) throw new Error(`subscription: HTTP ${sub.status}`);
    while (notifications === 0) await new Promise((r) => setTimeout(r, 5)); // the handshake
    const asRrk = { ...SYSTEM, organization: 'RRK', role: 'publisher' as const };
    const started = performance.now();
    let uid = 0;
    for (let done = 0; done < total; done += batch) {
      await db.transaction((tx) =>
        writeResources(tx, asRrk, Array.from({ length: Math.min(batch, total - done) }, () => {
          uid++;
          return { method: 'POST' as const, def: imagingStudyDef, at: 'ImagingStudy', resource: { resourceType: 'ImagingStudy', identifier: [{ system: 'urn:dicom:uid', value: `urn:oid:1.2.826.0.1.3680043.10.77.${process.pid}.${uid}` }], status: 'available', modality: [{ system: 'http://dicom.nema.org/resources/ontology/DCM', code: 'CT' }], subject: { identifier: { system: 'https://fhir.nhs.uk/Id/nhs-number', value: testNhsNumber(uid % 1000) } }, started: '2024-05-01T10:00:00Z', endpoint: [{ reference: `Endpoint/${ep?.id}` }] } };
        })),
      );
    }
    const published = performance.now();
    const deadline = Date.now() + 120_000;
    while (received < total && Date.now() < deadline) await new Promise((r) => setTimeout(r, 5));
    if (received < total) throw new Error(`only ${received} of ${total} events arrived`);
    const seconds = (lastAt - started) / 1000;
    return { events: total, seconds, eventsPerSecond: Math.round(total / seconds), publishSeconds: (published - started) / 1000, notifications };
  } finally {
    await locus.close();
    await db.close();
    await new Promise<void>((r) => receiver.close(() => r()));
  }
}

if (require.main === module) {
  benchNotify({ events: Number(process.env.BENCH_NOTIFY_EVENTS ?? 5000) })
    .then((f) => console.log(JSON.stringify(f)))
    .catch((e: unknown) => {
      console.error(e);
      process.exitCode = 1;
    });
}
