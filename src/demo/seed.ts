import type { Principal } from '../access/principal';
import { parseScopes } from '../access/principal';
import { createAuditWriter } from '../audit/audit-store';
import {
  CATEGORY_REPORT,
  CATEGORY_STUDY,
  CONFIDENTIALITY_SYSTEM,
  DCM_SYSTEM,
  ENDPOINT_CONNECTION_TYPE_SYSTEM,
  NICIP_SYSTEM,
  ODS_SYSTEM,
  PRACTICE_SETTING_IMAGING,
  SNOMED_SYSTEM,
  V2_0203_SYSTEM,
} from '../registry/codes';
import { NHS_NUMBER_SYSTEM, testNhsNumber } from '../registry/nhs-number';
import { ORGANIZATION_KIND_SYSTEM } from '../registry/organization';
import type { OrganizationKind } from '../registry/organization';
import { consentDef, documentReferenceDef, endpointDef, imagingStudyDef, organizationDef } from '../registry/resource-types';
import type { WriteRequest } from '../registry/write-engine';
import { writeResources } from '../registry/write-engine';
import type { Database } from '../store/database';

/** Demo organisations: real West Midlands trust ODS codes, plus clearly made-up outsiders. */
export const DEMO_ORGANIZATIONS: { ods: string; name: string; kind: OrganizationKind }[] = [
  { ods: 'RRK', name: 'University Hospitals Birmingham NHS Foundation Trust', kind: 'network-trust' },
  { ods: 'RJE', name: 'University Hospitals of North Midlands NHS Trust', kind: 'network-trust' },
  { ods: 'RL4', name: 'The Royal Wolverhampton NHS Trust', kind: 'network-trust' },
  { ods: 'RXK', name: 'Sandwell and West Birmingham Hospitals NHS Trust', kind: 'network-trust' },
  { ods: 'RNA', name: 'The Dudley Group NHS Foundation Trust', kind: 'network-trust' },
  { ods: 'XIP01', name: 'Demo Independent Imaging Ltd (made up)', kind: 'independent-provider' },
  { ods: 'W9Z01', name: 'Demo Welsh Health Board (made up)', kind: 'wales' },
];

/** Demo patients (999 test range, valid check digits). */
export const DEMO_PATIENTS = {
  /** Imaging at three trusts, one study held by two. */
  shared: testNhsNumber(1),
  /** Has opted out of sharing beyond the custodian. */
  optedOut: testNhsNumber(2),
  /** Has denied one organisation. */
  denied: testNhsNumber(3),
  /** Has a restricted (R) pointer. */
  restricted: testNhsNumber(4),
};

const SYSTEM: Principal = {
  subject: 'locus-demo-seed',
  issuer: 'urn:locus:internal',
  organization: 'ADMIN',
  role: 'system',
  scopes: parseScopes('system/*.cruds'),
  purposeOfUse: 'TREAT',
};

function asOrg(ods: string): Principal {
  return { ...SYSTEM, organization: ods };
}

function organization(o: (typeof DEMO_ORGANIZATIONS)[number]): Record<string, unknown> {
  return {
    resourceType: 'Organization',
    identifier: [{ system: ODS_SYSTEM, value: o.ods }],
    active: true,
    type: [{ coding: [{ system: ORGANIZATION_KIND_SYSTEM, code: o.kind }] }],
    name: o.name,
  };
}

function endpoint(ods: string, orgId: string): Record<string, unknown> {
  return {
    resourceType: 'Endpoint',
    identifier: [{ system: 'https://locus.nhs.example/fhir/Id/endpoint', value: `${ods}-wado` }],
    status: 'active',
    connectionType: { system: ENDPOINT_CONNECTION_TYPE_SYSTEM, code: 'dicom-wado-rs' },
    name: `${ods} PACS WADO-RS`,
    managingOrganization: { reference: `Organization/${orgId}` },
    payloadType: [{ coding: [{ system: 'http://terminology.hl7.org/CodeSystem/endpoint-payload-type', code: 'DICOM' }] }],
    payloadMimeType: ['application/dicom'],
    address: `https://pacs.${ods.toLowerCase()}.example.nhs.uk/dicom-web`,
  };
}

interface DemoStudy {
  ods: string;
  nhs: string;
  uid: string;
  accession: string;
  modality: string;
  started: string;
  description: string;
  nicip: string;
  bodySite: { code: string; display: string };
  restricted?: boolean;
  report?: boolean;
}

const STUDIES: DemoStudy[] = [
  { ods: 'RRK', nhs: DEMO_PATIENTS.shared, uid: '1.2.826.0.1.3680043.10.1001.1', accession: 'RRK0001', modality: 'CT', started: '2024-02-14T09:30:00Z', description: 'CT Chest with contrast', nicip: 'CCHEC', bodySite: { code: '51185008', display: 'Chest' }, report: true },
  { ods: 'RJE', nhs: DEMO_PATIENTS.shared, uid: '1.2.826.0.1.3680043.10.1001.2', accession: 'RJE0042', modality: 'MR', started: '2025-06-03T14:05:00Z', description: 'MRI Head', nicip: 'MBRAI', bodySite: { code: '69536005', display: 'Head' } },
  // Images copied between trusts keep their Study Instance UID: two custodians, one study.
  { ods: 'RL4', nhs: DEMO_PATIENTS.shared, uid: '1.2.826.0.1.3680043.10.1001.1', accession: 'RL40007', modality: 'CT', started: '2024-02-14T09:30:00Z', description: 'CT Chest with contrast (copy)', nicip: 'CCHEC', bodySite: { code: '51185008', display: 'Chest' } },
  { ods: 'RXK', nhs: DEMO_PATIENTS.optedOut, uid: '1.2.826.0.1.3680043.10.1002.1', accession: 'RXK0100', modality: 'US', started: '2025-01-20T11:00:00Z', description: 'US Abdomen', nicip: 'UABDO', bodySite: { code: '818983003', display: 'Abdomen' } },
  { ods: 'RNA', nhs: DEMO_PATIENTS.denied, uid: '1.2.826.0.1.3680043.10.1003.1', accession: 'RNA0200', modality: 'DX', started: '2023-11-02T16:45:00Z', description: 'XR Knee left', nicip: 'XKNEL', bodySite: { code: '72696002', display: 'Knee' }, report: true },
  { ods: 'RRK', nhs: DEMO_PATIENTS.restricted, uid: '1.2.826.0.1.3680043.10.1004.1', accession: 'RRK0300', modality: 'MR', started: '2025-09-09T10:15:00Z', description: 'MRI Pelvis', nicip: 'MPELV', bodySite: { code: '816092008', display: 'Pelvis' }, restricted: true },
];

function imagingStudy(s: DemoStudy, endpointId: string): Record<string, unknown> {
  return {
    resourceType: 'ImagingStudy',
    ...(s.restricted ? { meta: { security: [{ system: CONFIDENTIALITY_SYSTEM, code: 'R', display: 'restricted' }] } } : {}),
    identifier: [
      { system: 'urn:dicom:uid', value: `urn:oid:${s.uid}` },
      { type: { coding: [{ system: V2_0203_SYSTEM, code: 'ACSN' }] }, value: s.accession, assigner: { identifier: { system: ODS_SYSTEM, value: s.ods } } },
    ],
    status: 'available',
    modality: [{ system: DCM_SYSTEM, code: s.modality }],
    subject: { identifier: { system: NHS_NUMBER_SYSTEM, value: s.nhs } },
    started: s.started,
    endpoint: [{ reference: `Endpoint/${endpointId}` }],
    numberOfSeries: 2,
    numberOfInstances: 120,
    procedureCode: [{ coding: [{ system: NICIP_SYSTEM, code: s.nicip, display: s.description }] }],
    description: s.description,
    series: [
      { uid: `${s.uid}.1`, number: 1, modality: { system: DCM_SYSTEM, code: s.modality }, numberOfInstances: 60, bodySite: { system: SNOMED_SYSTEM, ...s.bodySite } },
      { uid: `${s.uid}.2`, number: 2, modality: { system: DCM_SYSTEM, code: s.modality }, numberOfInstances: 60, bodySite: { system: SNOMED_SYSTEM, ...s.bodySite } },
    ],
  };
}

function documentReference(s: DemoStudy, report: boolean): Record<string, unknown> {
  const base = `https://pacs.${s.ods.toLowerCase()}.example.nhs.uk/dicom-web/studies/${s.uid}`;
  return {
    resourceType: 'DocumentReference',
    ...(s.restricted ? { meta: { security: [{ system: CONFIDENTIALITY_SYSTEM, code: 'R', display: 'restricted' }] } } : {}),
    masterIdentifier: { system: 'urn:ietf:rfc:3986', value: `urn:oid:${report ? `${s.uid}.99.1` : s.uid}` },
    status: 'current',
    ...(report ? { docStatus: 'final' } : {}),
    type: { coding: [{ system: NICIP_SYSTEM, code: s.nicip, display: s.description }] },
    category: [{ coding: [report ? { system: SNOMED_SYSTEM, code: CATEGORY_REPORT, display: 'Diagnostic studies report' } : { system: SNOMED_SYSTEM, code: CATEGORY_STUDY, display: 'Diagnostic procedure' }] }],
    subject: { identifier: { system: NHS_NUMBER_SYSTEM, value: s.nhs } },
    date: s.started,
    author: [{ identifier: { system: ODS_SYSTEM, value: s.ods } }],
    custodian: { identifier: { system: ODS_SYSTEM, value: s.ods } },
    content: [{ attachment: { contentType: 'application/dicom', url: report ? `${base}/series/${s.uid}.99/instances/${s.uid}.99.1` : base } }],
    context: {
      practiceSetting: { coding: [{ system: SNOMED_SYSTEM, code: PRACTICE_SETTING_IMAGING, display: 'Diagnostic imaging service' }] },
      related: [{ identifier: { system: 'urn:dicom:uid', value: `urn:oid:${s.uid}` } }],
    },
  };
}

/** Seeds the demo network through the real write path, once: nothing happens if organisations exist. */
export async function seedDemo(db: Database): Promise<boolean> {
  const existing = await db.query<{ n: number }>('select count(*)::int as n from organization');
  if ((existing.rows[0]?.n ?? 0) > 0) return false;
  const audit = createAuditWriter(true);
  const write = async (principal: Principal, requests: Omit<WriteRequest, 'at'>[]): Promise<string[]> =>
    db.transaction(async (tx) => {
      const outcomes = await writeResources(tx, principal, requests.map((r) => ({ ...r, at: r.def.type })));
      await audit.write(tx, {
        requestId: 'demo-seed',
        subtype: 'transaction',
        action: 'C',
        outcome: '0',
        principal,
        patients: outcomes.flatMap((o) => (o.patient ? [o.patient] : [])),
        entities: outcomes.map((o) => ({ type: o.type, id: o.id, version: o.version })),
      });
      return outcomes.map((o) => o.id);
    });
  const orgIds = await write(SYSTEM, DEMO_ORGANIZATIONS.map((o) => ({ method: 'POST', def: organizationDef, resource: organization(o) })));
  const trusts = DEMO_ORGANIZATIONS.filter((o) => o.kind === 'network-trust' || o.kind === 'independent-provider');
  const endpointIds = await write(
    SYSTEM,
    trusts.map((o) => ({ method: 'POST', def: endpointDef, resource: endpoint(o.ods, orgIds[DEMO_ORGANIZATIONS.indexOf(o)] as string) })),
  );
  const endpointOf = new Map(trusts.map((o, i) => [o.ods, endpointIds[i] as string]));
  for (const ods of new Set(STUDIES.map((s) => s.ods))) {
    const mine = STUDIES.filter((s) => s.ods === ods);
    await write(asOrg(ods), [
      ...mine.map((s) => ({ method: 'POST' as const, def: imagingStudyDef, resource: imagingStudy(s, endpointOf.get(ods) as string) })),
      ...mine.map((s) => ({ method: 'POST' as const, def: documentReferenceDef, resource: documentReference(s, false) })),
      ...mine.filter((s) => s.report).map((s) => ({ method: 'POST' as const, def: documentReferenceDef, resource: documentReference(s, true) })),
    ]);
  }
  await seedPolicy(db, write);
  return true;
}

/** A patient's Consent (PCF style) denying sharing: to everyone (opt-out) or to named organisations. */
export function aConsent(nhs: string, deniedOrgs: string[], recordedBy: string): Record<string, unknown> {
  return {
    resourceType: 'Consent',
    status: 'active',
    scope: { coding: [{ system: 'http://terminology.hl7.org/CodeSystem/consentscope', code: 'patient-privacy' }] },
    category: [{ coding: [{ system: 'http://loinc.org', code: '59284-0', display: 'Patient Consent' }] }],
    patient: { identifier: { system: NHS_NUMBER_SYSTEM, value: nhs } },
    organization: [{ identifier: { system: ODS_SYSTEM, value: recordedBy } }],
    provision: {
      type: 'permit',
      provision: [
        {
          type: 'deny',
          ...(deniedOrgs.length > 0
            ? { actor: deniedOrgs.map((ods) => ({ role: { coding: [{ system: 'http://terminology.hl7.org/CodeSystem/v3-ParticipationType', code: 'IRCP' }] }, reference: { identifier: { system: ODS_SYSTEM, value: ods } } })) }
            : {}),
        },
      ],
    },
  };
}

/**
 * Demo policy data: an opted-out patient, a patient who denied RJE, a sharing agreement letting the
 * independent provider see network pointers (studies and reports, from 2025), and none for the
 * Welsh health board.
 */
async function seedPolicy(db: Database, write: (p: Principal, r: Omit<WriteRequest, 'at'>[]) => Promise<string[]>): Promise<void> {
  await write(asOrg('RXK'), [
    { method: 'POST', def: consentDef, resource: aConsent(DEMO_PATIENTS.optedOut, [], 'RXK') },
    { method: 'POST', def: consentDef, resource: aConsent(DEMO_PATIENTS.denied, ['RJE'], 'RNA') },
  ]);
  for (const provider of DEMO_ORGANIZATIONS.filter((o) => o.kind === 'network-trust')) {
    await db.query(
      `insert into sharing_agreement (id, provider_ods, recipient_ods, categories, period_start, period_end, description)
       values ($1, $2, 'XIP01', '{}', '2025-01-01T00:00:00Z', null, $3)`,
      [`demo-${provider.ods}-XIP01`, provider.ods, `${provider.ods} shares imaging with Demo Independent Imaging for referred patients`],
    );
  }
}
