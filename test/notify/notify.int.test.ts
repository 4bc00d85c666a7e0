import request from 'supertest';
import { aDocument, aStudy, FHIR_JSON, get, patient, post } from '../helpers/fixtures';
import { startTestServer } from '../helpers/server';
import type { TestServer } from '../helpers/server';
import { POINTER_TOPIC } from '../../src/notify/topic';
import { Receiver, waitFor } from './receiver';
import { aSubscription, notifyTestEnv, sharedCareNetwork, subscriberToken } from './support';

notifyTestEnv();

describe('notifications to shared care records (Subscriptions Backport, DSUBm)', () => {
  let s: TestServer;
  let net: Record<string, { orgId: string; endpointId: string }>;
  const receiver = new Receiver();
  let rrk: string;
  let rxk: string;
  let scr: string;

  beforeAll(async () => {
    await receiver.start();
    s = await startTestServer();
    net = await sharedCareNetwork(s);
    rrk = await s.tokenFor('RRK', 'publisher');
    rxk = await s.tokenFor('RXK', 'publisher');
    scr = await subscriberToken(s);
  });
  afterAll(async () => {
    await s.close();
    await receiver.stop();
  });

  async function subscribe(body: Record<string, unknown>): Promise<string> {
    const res = await post(s, scr, '/fhir/Subscription', body);
    expect(res.status).toBe(201);
    return res.body.id as string;
  }

  test('when a Subscription is created, then a handshake is sent and it becomes active', async () => {
    const id = await subscribe(aSubscription({ endpoint: receiver.url, patient: patient(11) }));
    const hs = await waitFor('handshake', () => receiver.of(id, 'handshake')[0]);
    expect(hs.bundle.type).toBe('history');
    const status = (hs.bundle.entry as { resource: { resourceType: string; parameter: { name: string; valueCanonical?: string }[] } }[])[0]?.resource;
    expect(status?.resourceType).toBe('Parameters');
    expect(status?.parameter.find((p) => p.name === 'topic')?.valueCanonical).toBe(POINTER_TOPIC);
    await waitFor('active', async () => (await get(s, scr, `/fhir/Subscription/${id}`)).body.status === 'active');
  });

  test('when pointers for the patient are created, updated and superseded, then events arrive numbered 1..n in order with full resources', async () => {
    const nhs = patient(12);
    const id = await subscribe(aSubscription({ endpoint: receiver.url, patient: nhs, payload: 'full-resource' }));
    await waitFor('handshake', () => receiver.of(id, 'handshake')[0]);
    const study = await post(s, rrk, '/fhir/ImagingStudy', aStudy({ nhs, endpointId: net.RRK!.endpointId }));
    expect(study.status).toBe(201);
    const doc = await post(s, rrk, '/fhir/DocumentReference', aDocument({ nhs, custodian: 'RRK', master: 'urn:oid:1.2.3.12.1' }));
    expect(doc.status).toBe(201);
    const replacement = await post(s, rrk, '/fhir/DocumentReference', aDocument({ nhs, custodian: 'RRK', master: 'urn:oid:1.2.3.12.2', replaces: doc.body.id }));
    expect(replacement.status).toBe(201);
    await post(s, rrk, '/fhir/ImagingStudy', aStudy({ nhs: patient(13), endpointId: net.RRK!.endpointId })); // another patient: not for this subscription
    const numbers = await waitFor('4 events', () => (receiver.eventNumbers(id).length >= 4 ? receiver.eventNumbers(id) : undefined));
    expect(numbers).toEqual([1, 2, 3, 4]);
    const events = receiver.of(id, 'event-notification');
    const resources = events.flatMap((n) => (n.bundle.entry as { resource?: { resourceType: string; status?: string } }[]).slice(1).map((e) => e.resource));
    expect(resources.map((r) => r?.resourceType)).toEqual(['ImagingStudy', 'DocumentReference', 'DocumentReference', 'DocumentReference']);
    expect(resources.filter((r) => r?.status === 'superseded')).toHaveLength(1);
    const focus = events.flatMap((n) => n.events.map((e) => e.focus));
    expect(focus[0]).toBe(`${s.fhirBase}/ImagingStudy/${study.body.id}/_history/1`);
  });

  test('when a pointer is withheld from the subscriber by sharing rules or labels, then no notification carries it and $events omits it', async () => {
    const nhs = patient(14);
    const id = await subscribe(aSubscription({ endpoint: receiver.url, patient: nhs, payload: 'full-resource' }));
    await waitFor('handshake', () => receiver.of(id, 'handshake')[0]);
    await post(s, rxk, '/fhir/ImagingStudy', aStudy({ nhs, endpointId: net.RXK!.endpointId, description: 'RXK no agreement' }));
    await post(s, rrk, '/fhir/ImagingStudy', aStudy({ nhs, endpointId: net.RRK!.endpointId, security: 'R', description: 'restricted' }));
    const visible = await post(s, rrk, '/fhir/ImagingStudy', aStudy({ nhs, endpointId: net.RRK!.endpointId, description: 'shared' }));
    await waitFor('the visible event', () => receiver.eventNumbers(id).includes(3));
    expect(receiver.eventNumbers(id)).toEqual([3]);
    const sent = JSON.stringify(receiver.of(id).map((n) => n.bundle));
    expect(sent).not.toContain('RXK no agreement');
    expect(sent).not.toContain('restricted');
    const ev = await get(s, scr, `/fhir/Subscription/${id}/$events?eventsSinceNumber=1&content=full-resource`);
    expect(ev.status).toBe(200);
    expect(ev.body.type).toBe('history');
    expect(ev.text).not.toContain('RXK no agreement');
    expect(ev.body.entry.slice(1).map((e: { fullUrl: string }) => e.fullUrl)).toEqual([`${s.fhirBase}/ImagingStudy/${visible.body.id}`]);
  });

  test('when the receiver keeps failing, then the subscription goes to error, and a PUT with status requested recovers every event', async () => {
    const nhs = patient(15);
    const body = aSubscription({ endpoint: receiver.url, patient: nhs });
    const id = await subscribe(body);
    await waitFor('handshake', () => receiver.of(id, 'handshake')[0]);
    receiver.mode = 'fail';
    try {
      await post(s, rrk, '/fhir/ImagingStudy', aStudy({ nhs, endpointId: net.RRK!.endpointId }));
      await waitFor('error status', async () => (await get(s, scr, `/fhir/Subscription/${id}`)).body.status === 'error');
      const st = await get(s, scr, `/fhir/Subscription/${id}/$status`);
      const params = st.body.entry[0].resource.parameter as { name: string; valueCode?: string; valueString?: string }[];
      expect(params.find((p) => p.name === 'status')?.valueCode).toBe('error');
      expect(params.find((p) => p.name === 'events-since-subscription-start')?.valueString).toBe('1');
      await post(s, rrk, '/fhir/ImagingStudy', aStudy({ nhs, endpointId: net.RRK!.endpointId }));
    } finally {
      receiver.mode = 'ok';
    }
    // Still numbered while in error: $events lets the subscriber catch up.
    await waitFor('2 events numbered', async () => (await get(s, scr, `/fhir/Subscription/${id}/$status`)).body.entry[0].resource.parameter.find((p: { name: string }) => p.name === 'events-since-subscription-start').valueString === '2');
    const put = await request(s.baseUrl).put(`/fhir/Subscription/${id}`).set('authorization', `Bearer ${scr}`).set('content-type', FHIR_JSON).send(JSON.stringify({ ...body, id }));
    expect(put.status).toBe(200);
    expect(put.body.status).toBe('requested');
    await waitFor('both events', () => receiver.eventNumbers(id).length >= 2);
    expect(receiver.eventNumbers(id)).toEqual([1, 2]);
  });

  test('when a heartbeat period is set and nothing happens, then heartbeats arrive', async () => {
    const id = await subscribe(aSubscription({ endpoint: receiver.url, patient: patient(16), heartbeat: 1 }));
    await waitFor('heartbeat', () => receiver.of(id, 'heartbeat')[0], 5000);
  });

  test('when a Subscription is invalid, unauthorised or not the caller\'s, then OperationOutcome errors say so', async () => {
    const bad = await post(s, scr, '/fhir/Subscription', { ...aSubscription({ endpoint: receiver.url, patient: patient(17) }), criteria: 'ImagingStudy?patient=x' });
    expect(bad.status).toBe(422);
    expect(bad.body.resourceType).toBe('OperationOutcome');
    const noFilter = await post(s, scr, '/fhir/Subscription', aSubscription({ endpoint: receiver.url }));
    expect(noFilter.status).toBe(422);
    const badNhs = await post(s, scr, '/fhir/Subscription', aSubscription({ endpoint: receiver.url, patient: '1234567890' }));
    expect(badNhs.status).toBe(422);
    const noScope = await post(s, rrk, '/fhir/Subscription', aSubscription({ endpoint: receiver.url, patient: patient(17) }));
    expect(noScope.status).toBe(403);
    const id = await subscribe(aSubscription({ endpoint: receiver.url, custodian: 'RRK' }));
    const other = await subscriberToken(s, 'SCR02');
    expect((await get(s, other, `/fhir/Subscription/${id}`)).status).toBe(404);
    expect((await get(s, other, `/fhir/Subscription/${id}/$events`)).status).toBe(404);
    const del = await request(s.baseUrl).delete(`/fhir/Subscription/${id}`).set('authorization', `Bearer ${scr}`);
    expect(del.status).toBe(200);
    expect((await get(s, scr, `/fhir/Subscription/${id}`)).status).toBe(404);
  });

  test('when an organisation searches its Subscriptions, then status, url, _id, _count and _summary filter them and unknown parameters are warned about or refused', async () => {
    const owner = await subscriberToken(s, 'SCR03');
    const paused = `${receiver.url}/paused-feed`;
    const on = await post(s, owner, '/fhir/Subscription', aSubscription({ endpoint: receiver.url, custodian: 'RRK' }));
    const off = await post(s, owner, '/fhir/Subscription', aSubscription({ endpoint: paused, custodian: 'RRK', status: 'off' }));
    expect([on.status, off.status]).toEqual([201, 201]);
    const ids = (b: { entry?: { resource: { id: string; resourceType: string } }[] }): string[] => (b.entry ?? []).filter((e) => e.resource.resourceType === 'Subscription').map((e) => e.resource.id);

    const all = await get(s, owner, '/fhir/Subscription');
    expect(all.status).toBe(200);
    expect(all.body.total).toBe(2);
    expect(ids(all.body)).toEqual([on.body.id, off.body.id]);

    const offOnly = await get(s, owner, '/fhir/Subscription?status=off');
    expect(ids(offOnly.body)).toEqual([off.body.id]);
    const either = await get(s, owner, `/fhir/Subscription?status=${encodeURIComponent('http://hl7.org/fhir/subscription-status|off')},requested,active`);
    expect(either.body.total).toBe(2);
    const byUrl = await get(s, owner, `/fhir/Subscription?url=${encodeURIComponent(paused)}`);
    expect(ids(byUrl.body)).toEqual([off.body.id]);
    const byId = await get(s, owner, `/fhir/Subscription?_id=${on.body.id as string}`);
    expect(ids(byId.body)).toEqual([on.body.id]);
    const firstOnly = await get(s, owner, '/fhir/Subscription?_count=1');
    expect(ids(firstOnly.body)).toEqual([on.body.id]);
    expect(firstOnly.body.total).toBe(2);
    const counted = await get(s, owner, '/fhir/Subscription?status=off&_summary=count');
    expect(counted.body.total).toBe(1);
    expect(counted.body.entry).toBeUndefined();

    // Another organisation's search never sees them, whatever it asks for.
    const stranger = await subscriberToken(s, 'SCR04');
    expect((await get(s, stranger, `/fhir/Subscription?_id=${on.body.id as string}`)).body.total).toBe(0);

    const unknown = await get(s, owner, '/fhir/Subscription?status=off&criteria=x');
    expect(ids(unknown.body)).toEqual([off.body.id]);
    const outcome = unknown.body.entry.find((e: { search: { mode: string } }) => e.search.mode === 'outcome');
    expect(outcome.resource.issue[0]).toMatchObject({ severity: 'warning', expression: ['criteria'] });
    expect(unknown.body.link[0].url).not.toContain('criteria');
    const strict = await request(s.baseUrl).get('/fhir/Subscription?criteria=x').set('authorization', `Bearer ${owner}`).set('prefer', 'handling=strict').set('accept', FHIR_JSON);
    expect(strict.status).toBe(400);
    expect(strict.body.resourceType).toBe('OperationOutcome');
    const badStatus = await get(s, owner, '/fhir/Subscription?status=paused');
    expect(badStatus.status).toBe(400);
    expect(badStatus.body.issue[0].expression).toEqual(['status']);
    expect((await get(s, owner, '/fhir/Subscription?_format=xml')).status).toBe(406);
    const injection = await get(s, owner, `/fhir/Subscription?_id=${encodeURIComponent("x' or '1'='1")}`);
    expect(injection.status).toBe(400);
  });

  test('when a notification is delivered, then the disclosure is audited for the subscriber organisation', async () => {
    const nhs = patient(18);
    const id = await subscribe(aSubscription({ endpoint: receiver.url, patient: nhs }));
    await waitFor('handshake', () => receiver.of(id, 'handshake')[0]);
    await post(s, rrk, '/fhir/ImagingStudy', aStudy({ nhs, endpointId: net.RRK!.endpointId }));
    await waitFor('event', () => receiver.eventNumbers(id).length >= 1);
    const audit = await s.db.query<{ agent_ods: string; patients: string[] }>(`select agent_ods, patients from audit_event where resource like '%subscription-notification%' and $1 = any(patients)`, [nhs]);
    expect(audit.rows.map((r) => r.agent_ods)).toEqual(['SCR01']);
  });
});
