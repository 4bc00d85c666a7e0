import { FhirError } from '../fhir/errors';
import type { Queryable } from '../store/database';
import { ODS_SYSTEM } from './codes';
import type { DocumentReferenceResource } from './document-reference';
import { documentReferenceColumns } from './document-reference';
import type { EndpointResource } from './endpoint';
import { endpointColumns } from './endpoint';
import type { ImagingStudyResource } from './imaging-study';
import { imagingStudyColumns } from './imaging-study';
import type { OrganizationResource } from './organization';
import { organizationColumns } from './organization';
import type { ConsentResource } from './consent';
import { consentColumns } from './consent';
import type { ResourceTypeDef } from './resource-types';
import { profileError } from './validation';

export interface ExistingRow {
  id: string;
  version: number;
  resource: string;
  patient_nhs: string | null;
  custodian_ods: string | null;
}

interface EndpointInfo {
  id: string;
  managing_ods: string;
  connection_type: string;
  status: string;
}

/** What a batch of writes needs from the store, fetched with one statement per kind. */
export interface Lookups {
  endpoints: Map<string, EndpointInfo>;
  /** ODS code → Organization id, for registered organisations. */
  organizations: Map<string, string>;
  organizationIds: Map<string, string>;
  supersedeTargets(resource: Record<string, unknown>): string[];
}

function endpointIdsOf(s: ImagingStudyResource): string[] {
  return s.endpoint.map((e) => /^(?:.*\/)?Endpoint\/([A-Za-z0-9\-.]{1,64})$/.exec(e.reference ?? '')?.[1] ?? '');
}

function supersedeTargets(resource: Record<string, unknown>): string[] {
  if (resource.resourceType !== 'DocumentReference') return [];
  const d = resource as unknown as DocumentReferenceResource;
  return (d.relatesTo ?? [])
    .filter((r) => r.code === 'replaces')
    .map((r) => /^(?:.*\/)?DocumentReference\/([A-Za-z0-9\-.]{1,64})$/.exec(r.target.reference ?? '')?.[1])
    .filter((id): id is string => id !== undefined);
}

export async function loadLookups(tx: Queryable, items: { def: ResourceTypeDef; resource: Record<string, unknown> }[]): Promise<Lookups> {
  const endpointIds = new Set<string>();
  const ods = new Set<string>();
  const orgIds = new Set<string>();
  for (const { def, resource } of items) {
    if (def.type === 'ImagingStudy') for (const id of endpointIdsOf(resource as unknown as ImagingStudyResource)) endpointIds.add(id);
    if (def.type === 'DocumentReference') ods.add((resource as unknown as DocumentReferenceResource).custodian.identifier.value);
    if (def.type === 'Endpoint') {
      const ref = (resource as unknown as EndpointResource).managingOrganization;
      if (ref.identifier?.value) ods.add(ref.identifier.value);
      const id = /^Organization\/(.+)$/.exec(ref.reference ?? '')?.[1];
      if (id) orgIds.add(id);
    }
  }
  const endpoints = new Map<string, EndpointInfo>();
  if (endpointIds.size > 0) {
    const r = await tx.query<EndpointInfo>('select id, managing_ods, connection_type, status from endpoint where id = any($1::text[])', [[...endpointIds]]);
    for (const e of r.rows) endpoints.set(e.id, e);
  }
  const organizations = new Map<string, string>();
  const organizationIds = new Map<string, string>();
  if (ods.size > 0 || orgIds.size > 0) {
    const r = await tx.query<{ id: string; ods: string }>('select id, ods from organization where ods = any($1::text[]) or id = any($2::text[])', [[...ods], [...orgIds]]);
    for (const o of r.rows) {
      organizations.set(o.ods, o.id);
      organizationIds.set(o.id, o.ods);
    }
  }
  return { endpoints, organizations, organizationIds, supersedeTargets };
}

/** The custodian of an ImagingStudy is the organisation managing its (registered, WADO-RS) Endpoint. */
function studyCustodian(s: ImagingStudyResource, lookups: Lookups): { custodian: string; endpointIds: string[] } {
  const ids = endpointIdsOf(s);
  const found = ids.map((id, i) => {
    const e = lookups.endpoints.get(id);
    if (!e) throw profileError('ImagingStudy', `endpoint[${i}]`, `${s.endpoint[i]?.reference ?? '(no reference)'} is not a registered Endpoint`, 'INVALID_RESOURCE');
    return e;
  });
  if (!found.some((e) => e.connection_type === 'dicom-wado-rs')) {
    throw profileError('ImagingStudy', 'endpoint', 'at least one Endpoint must have connection type dicom-wado-rs');
  }
  const custodians = new Set(found.map((e) => e.managing_ods));
  if (custodians.size !== 1) throw profileError('ImagingStudy', 'endpoint', 'all Endpoints of a pointer must be managed by the same organisation');
  return { custodian: found[0]?.managing_ods as string, endpointIds: ids };
}

export function buildColumns(def: ResourceTypeDef, resource: Record<string, unknown>, lookups: Lookups, now: Date): Record<string, unknown> {
  switch (def.type) {
    case 'ImagingStudy': {
      const s = resource as unknown as ImagingStudyResource;
      const { custodian, endpointIds } = studyCustodian(s, lookups);
      return { ...imagingStudyColumns(s, custodian, endpointIds) };
    }
    case 'DocumentReference': {
      const d = resource as unknown as DocumentReferenceResource;
      if (!lookups.organizations.has(d.custodian.identifier.value)) {
        throw profileError('DocumentReference', 'custodian.identifier.value', `${d.custodian.identifier.value} is not a registered organisation`, 'INVALID_IDENTIFIER_VALUE');
      }
      return { ...documentReferenceColumns(d, now) };
    }
    case 'Organization':
      return { ...organizationColumns(resource as unknown as OrganizationResource) };
    case 'Endpoint': {
      const e = resource as unknown as EndpointResource;
      const ref = e.managingOrganization;
      const id = /^Organization\/(.+)$/.exec(ref.reference ?? '')?.[1];
      const orgId = id ?? (ref.identifier?.system === ODS_SYSTEM ? lookups.organizations.get(ref.identifier.value ?? '') : undefined);
      const orgOds = orgId ? lookups.organizationIds.get(orgId) : undefined;
      if (!orgId || !orgOds) throw profileError('Endpoint', 'managingOrganization', 'is not a registered Organization', 'INVALID_RESOURCE');
      return { ...endpointColumns(e, { id: orgId, ods: orgOds }) };
    }
    case 'Consent':
      return { ...consentColumns(resource as unknown as ConsentResource) };
    default:
      throw new Error(`no columns for ${def.type}`);
  }
}

/** NRL: id, subject, custodian, type and masterIdentifier never change on update. */
export function checkImmutable(def: ResourceTypeDef, existing: ExistingRow, resource: Record<string, unknown>, columns: Record<string, unknown>): void {
  if (!def.pointer) return;
  const fail = (path: string): never => {
    throw new FhirError(422, 'business-rule', `${def.type}.${path} cannot be changed by an update; supersede the pointer instead`, 'INVALID_RESOURCE', `${def.type}.${path}`);
  };
  if (existing.patient_nhs !== columns.patient_nhs) fail('subject');
  if (existing.custodian_ods !== columns.custodian_ods) fail(def.type === 'ImagingStudy' ? 'endpoint' : 'custodian');
  const old = JSON.parse(existing.resource) as Record<string, unknown>;
  if (def.type === 'ImagingStudy') {
    const uid = (r: Record<string, unknown>): unknown => (r.identifier as { system?: string; value?: string }[] | undefined)?.find((i) => i.system === 'urn:dicom:uid')?.value;
    if (uid(old) !== uid(resource)) fail('identifier');
  } else {
    if (JSON.stringify(old.masterIdentifier) !== JSON.stringify(resource.masterIdentifier)) fail('masterIdentifier');
    if (JSON.stringify(old.type) !== JSON.stringify(resource.type)) fail('type');
  }
}
