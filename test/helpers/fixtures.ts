import request from 'supertest';
import { testNhsNumber } from '../../src/registry/nhs-number';
import type { TestServer } from './server';

export const ODS = 'https://fhir.nhs.uk/Id/ods-organization-code';
export const NHS = 'https://fhir.nhs.uk/Id/nhs-number';
export const FHIR_JSON = 'application/fhir+json';
let uidCounter = 1;

export function nextUid(): string {
  return `1.2.826.0.1.3680043.10.9.${process.pid}.${Date.now() % 100000}.${uidCounter++}`;
}

export const patient = (n: number): string => testNhsNumber(n);

export function anOrganization(ods: string, kind = 'network-trust', name = `Trust ${ods}`): Record<string, unknown> {
  return {
    resourceType: 'Organization',
    identifier: [{ system: ODS, value: ods }],
    active: true,
    type: [{ coding: [{ system: 'https://locus.nhs.example/fhir/CodeSystem/organization-kind', code: kind }] }],
    name,
  };
}

export function anEndpoint(orgId: string, address: string, type = 'dicom-wado-rs'): Record<string, unknown> {
  return {
    resourceType: 'Endpoint',
    status: 'active',
    connectionType: { system: 'http://terminology.hl7.org/CodeSystem/endpoint-connection-type', code: type },
    name: `PACS ${type}`,
    managingOrganization: { reference: `Organization/${orgId}` },
    payloadType: [{ coding: [{ system: 'http://terminology.hl7.org/CodeSystem/endpoint-payload-type', code: 'DICOM' }] }],
    address,
  };
}

export interface StudyOptions {
  nhs?: string;
  uid?: string;
  modality?: string[];
  started?: string;
  endpointId: string;
  accession?: string;
  security?: string;
  description?: string;
}

export function aStudy(o: StudyOptions): Record<string, unknown> {
  const uid = o.uid ?? nextUid();
  return {
    resourceType: 'ImagingStudy',
    ...(o.security ? { meta: { security: [{ system: 'http://terminology.hl7.org/CodeSystem/v3-Confidentiality', code: o.security }] } } : {}),
    identifier: [
      { system: 'urn:dicom:uid', value: `urn:oid:${uid}` },
      ...(o.accession ? [{ type: { coding: [{ system: 'http://terminology.hl7.org/CodeSystem/v2-0203', code: 'ACSN' }] }, value: o.accession }] : []),
    ],
    status: 'available',
    modality: (o.modality ?? ['CT']).map((code) => ({ system: 'http://dicom.nema.org/resources/ontology/DCM', code })),
    subject: { identifier: { system: NHS, value: o.nhs ?? patient(1) } },
    started: o.started ?? '2024-05-01T10:00:00Z',
    endpoint: [{ reference: `Endpoint/${o.endpointId}` }],
    description: o.description ?? 'CT Chest',
  };
}

export interface DocOptions {
  nhs?: string;
  custodian: string;
  studyUid?: string;
  category?: 'study' | 'report';
  master?: string;
  type?: { system: string; code: string };
  date?: string;
  replaces?: string;
  security?: string;
}

export function aDocument(o: DocOptions): Record<string, unknown> {
  const uid = o.studyUid ?? nextUid();
  return {
    resourceType: 'DocumentReference',
    ...(o.security ? { meta: { security: [{ system: 'http://terminology.hl7.org/CodeSystem/v3-Confidentiality', code: o.security }] } } : {}),
    masterIdentifier: { system: 'urn:ietf:rfc:3986', value: o.master ?? `urn:oid:${uid}` },
    status: 'current',
    type: { coding: [o.type ?? { system: 'https://nicip.nhs.uk', code: 'CCHEC' }] },
    category: [{ coding: [{ system: 'http://snomed.info/sct', code: o.category === 'report' ? '721981007' : '103693007' }] }],
    subject: { identifier: { system: NHS, value: o.nhs ?? patient(1) } },
    date: o.date ?? '2024-05-01T10:00:00Z',
    author: [{ identifier: { system: ODS, value: o.custodian } }],
    custodian: { identifier: { system: ODS, value: o.custodian } },
    content: [{ attachment: { contentType: 'application/dicom', url: `https://pacs.example.nhs.uk/dicom-web/studies/${uid}` } }],
    context: { related: [{ identifier: { system: 'urn:dicom:uid', value: `urn:oid:${uid}` } }] },
    ...(o.replaces ? { relatesTo: [{ code: 'replaces', target: { reference: `DocumentReference/${o.replaces}` } }] } : {}),
  };
}

/** Registers organisations and a WADO-RS endpoint for each, through the API with an admin token. */
export async function registerNetwork(s: TestServer, orgs: { ods: string; kind?: string }[]): Promise<Record<string, { orgId: string; endpointId: string }>> {
  const admin = await s.tokenFor('ADMIN', 'admin');
  const out: Record<string, { orgId: string; endpointId: string }> = {};
  for (const o of orgs) {
    const org = await request(s.baseUrl).post('/fhir/Organization').set('authorization', `Bearer ${admin}`).set('content-type', FHIR_JSON).send(JSON.stringify(anOrganization(o.ods, o.kind)));
    if (org.status !== 201) throw new Error(`organisation ${o.ods}: ${org.status} ${org.text}`);
    const ep = await request(s.baseUrl)
      .post('/fhir/Endpoint')
      .set('authorization', `Bearer ${admin}`)
      .set('content-type', FHIR_JSON)
      .send(JSON.stringify(anEndpoint(org.body.id, `https://pacs.${o.ods.toLowerCase()}.example.nhs.uk/dicom-web`)));
    if (ep.status !== 201) throw new Error(`endpoint ${o.ods}: ${ep.status} ${ep.text}`);
    out[o.ods] = { orgId: org.body.id, endpointId: ep.body.id };
  }
  return out;
}

export async function post(s: TestServer, token: string, path: string, body: unknown): Promise<request.Response> {
  return request(s.baseUrl).post(path).set('authorization', `Bearer ${token}`).set('content-type', FHIR_JSON).send(JSON.stringify(body));
}

export async function get(s: TestServer, token: string, path: string): Promise<request.Response> {
  return request(s.baseUrl).get(path).set('authorization', `Bearer ${token}`);
}

export function spineCode(res: request.Response): string | undefined {
  return res.body?.issue?.[0]?.details?.coding?.[0]?.code;
}
