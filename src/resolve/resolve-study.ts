import type { PointerPolicy } from '../access/policy';
import type { Principal } from '../access/principal';
import { isBreakGlass } from '../access/principal';
import { ENDPOINT_CONNECTION_TYPE_SYSTEM, ODS_SYSTEM } from '../registry/codes';
import { urnOid } from '../registry/dicom-uid';
import { readResource } from '../registry/read';
import { documentReferenceDef, imagingStudyDef } from '../registry/resource-types';
import { FhirError } from '../fhir/errors';
import type { Queryable } from '../store/database';
import { viewerUrl } from './resolve-config';
import type { ResolveConfig } from './resolve-config';
import type { RetrievalKeys } from './retrieval-keys';
import { signRetrievalToken } from './retrieval-token';

export type ResolvableType = 'ImagingStudy' | 'DocumentReference';

export interface ResolveDeps {
  q: Queryable;
  principal: Principal;
  policy: PointerPolicy;
  keys: RetrievalKeys;
  config: ResolveConfig;
  /** The registry's public base URL (token issuer, gateway URLs). */
  baseUrl: string;
}

export interface ResolvedStudy {
  type: ResolvableType;
  id: string;
  version: number;
  patient?: string;
  studyUid: string;
  custodian: string;
  endpointId: string;
  wadoRsStudyUrl: string;
  qidoRsUrl: string;
  gatewayStudyUrl: string;
  gatewayRoot: string;
  viewerUrl: string;
  viewerUrlTemplate: string;
  /** For a DocumentReference: where its content lives at the custodian (an SR/PDF instance, say). */
  attachmentUrl?: string;
  token: string;
  tokenExpires: Date;
  tokenId: string;
}

interface PointerRow {
  custodian_ods: string;
  study_uid: string | null;
  endpoint_ids: string[];
}

interface EndpointRow {
  id: string;
  connection_type: string;
  address: string;
}

const unresolvable = (diagnostics: string): FhirError => new FhirError(422, 'processing', diagnostics, 'UNPROCESSABLE_ENTITY');

async function pointerColumns(q: Queryable, type: ResolvableType, id: string): Promise<PointerRow | undefined> {
  const sql =
    type === 'ImagingStudy'
      ? 'select custodian_ods, study_uid, endpoint_ids from imaging_study where id = $1'
      : `select custodian_ods, (select substr(r, 5) from unnest(related) r where r like 'uid|%' limit 1) as study_uid, '{}'::text[] as endpoint_ids from document_reference where id = $1`;
  return (await q.query<PointerRow>(sql, [id])).rows[0];
}

/** The custodian's active DICOMweb endpoints; the pointer's own endpoints first. */
export async function endpointsOf(q: Queryable, custodian: string, preferred: string[]): Promise<{ wado?: EndpointRow; qido?: EndpointRow }> {
  const rows = (
    await q.query<EndpointRow>(
      `select id, connection_type, address from endpoint
        where managing_ods = $1 and status = 'active' and connection_type in ('dicom-wado-rs', 'dicom-qido-rs')
        order by (id = any($2::text[])) desc, last_updated desc, id`,
      [custodian, preferred],
    )
  ).rows;
  return { wado: rows.find((r) => r.connection_type === 'dicom-wado-rs'), qido: rows.find((r) => r.connection_type === 'dicom-qido-rs') };
}

/** The gateway's DICOMweb root for a custodian. */
export const gatewayRoot = (baseUrl: string, custodian: string): string => `${baseUrl}/dicomweb/${custodian}`;

/**
 * `$resolve` (issue 6): where a pointer's study can be retrieved, and a short-lived token to do
 * it with. The pointer is read through `readResource`, so consent and sharing rules apply
 * exactly as for a read: a withheld pointer is 404 like a missing one.
 */
export async function resolveStudy(d: ResolveDeps, type: ResolvableType, id: string): Promise<ResolvedStudy> {
  const def = type === 'ImagingStudy' ? imagingStudyDef : documentReferenceDef;
  const read = await readResource(d.q, def, id, { principal: d.principal, policy: d.policy });
  const row = await pointerColumns(d.q, type, id);
  if (!row) throw new FhirError(404, 'not-found', `${type}/${id} is not known to this registry`, 'NO_RECORD_FOUND');
  if (!row.study_uid) throw unresolvable(`${type}/${id} names no Study Instance UID (context.related.identifier), so there is nothing to retrieve`);
  const { wado, qido } = await endpointsOf(d.q, row.custodian_ods, row.endpoint_ids);
  if (!wado) throw unresolvable(`custodian ${row.custodian_ods} has no active dicom-wado-rs Endpoint`);
  const wadoBase = wado.address.replace(/\/+$/, '');
  const qidoBase = (qido?.address ?? wado.address).replace(/\/+$/, '');
  const root = gatewayRoot(d.baseUrl, row.custodian_ods);
  const uid = row.study_uid;
  const signed = await signRetrievalToken(
    d.keys,
    d.baseUrl,
    {
      studyUid: uid,
      custodian: row.custodian_ods,
      organization: d.principal.organization,
      subject: d.principal.subject,
      role: d.principal.role,
      purposeOfUse: d.principal.purposeOfUse,
      breakGlass: isBreakGlass(d.principal),
      userName: d.principal.userName,
    },
    d.config.tokenTtlSeconds,
  );
  let attachmentUrl: string | undefined;
  if (type === 'DocumentReference') {
    const doc = JSON.parse(read.text) as { content?: { attachment?: { url?: string } }[] };
    attachmentUrl = doc.content?.[0]?.attachment?.url;
  }
  return {
    type,
    id,
    version: read.version,
    patient: read.patient,
    studyUid: uid,
    custodian: row.custodian_ods,
    endpointId: wado.id,
    wadoRsStudyUrl: `${wadoBase}/studies/${uid}`,
    qidoRsUrl: `${qidoBase}/studies?StudyInstanceUID=${uid}`,
    gatewayStudyUrl: `${root}/studies/${uid}`,
    gatewayRoot: root,
    viewerUrl: viewerUrl(d.config.viewerUrlTemplate, { studyUid: uid, custodian: row.custodian_ods, dicomweb: root }),
    viewerUrlTemplate: d.config.viewerUrlTemplate,
    ...(attachmentUrl ? { attachmentUrl } : {}),
    token: signed.token,
    tokenExpires: signed.expiresAt,
    tokenId: signed.jti,
  };
}

/** The `$resolve` answer as a FHIR Parameters resource. */
export function resolveParameters(r: ResolvedStudy): Record<string, unknown> {
  return {
    resourceType: 'Parameters',
    parameter: [
      { name: 'studyInstanceUid', valueIdentifier: { system: 'urn:dicom:uid', value: urnOid(r.studyUid) } },
      { name: 'custodian', valueIdentifier: { system: ODS_SYSTEM, value: r.custodian } },
      { name: 'endpoint', valueReference: { reference: `Endpoint/${r.endpointId}` } },
      { name: 'wadoRsStudyUrl', valueUrl: r.wadoRsStudyUrl },
      { name: 'qidoRsUrl', valueUrl: r.qidoRsUrl },
      { name: 'gatewayStudyUrl', valueUrl: r.gatewayStudyUrl },
      { name: 'gatewayDicomWebRoot', valueUrl: r.gatewayRoot },
      { name: 'viewerUrl', valueUrl: r.viewerUrl },
      { name: 'viewerUrlTemplate', valueString: r.viewerUrlTemplate },
      ...(r.attachmentUrl ? [{ name: 'attachmentUrl', valueUrl: r.attachmentUrl }] : []),
      {
        name: 'retrievalToken',
        part: [
          { name: 'token', valueString: r.token },
          { name: 'tokenType', valueCode: 'Bearer' },
          { name: 'expires', valueInstant: r.tokenExpires.toISOString() },
          { name: 'connectionType', valueCoding: { system: ENDPOINT_CONNECTION_TYPE_SYSTEM, code: 'dicom-wado-rs' } },
        ],
      },
    ],
  };
}
