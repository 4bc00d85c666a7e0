import type { PointerPolicy } from '../access/policy';
import type { Principal } from '../access/principal';
import { CATEGORY_REPORT, SNOMED_SYSTEM } from '../registry/codes';
import { uidFromUrnOid } from '../registry/dicom-uid';
import { NHS_NUMBER_SYSTEM } from '../registry/nhs-number';
import { documentReferenceDef, imagingStudyDef } from '../registry/resource-types';
import { searchResources } from '../registry/search';
import type { Queryable } from '../store/database';

/** A clinician's question: this patient's imaging, optionally one modality and a date range (YYYY-MM-DD). */
export interface PriorImagingQuery {
  nhs: string;
  modality?: string;
  from?: string;
  to?: string;
  cursor?: string;
}

export interface TimelineStudy {
  id: string;
  started: string;
  modalities: string[];
  description?: string;
  bodySites: string[];
  custodian: string;
  custodianName?: string;
  numberOfSeries?: number;
  numberOfInstances?: number;
  /** Report DocumentReferences (visible to the caller) related to the study at the same custodian. */
  reportIds: string[];
}

export interface PriorImaging {
  studies: TimelineStudy[];
  /** Consent or sharing rules withheld results that break-glass could reveal. */
  withheld: boolean;
  /** Cursor of the next (older) page, if any. */
  next?: string;
  /** The search as recorded in the audit trail. */
  query: string;
  returned: { type: string; id: string; version: number }[];
}

export interface PriorImagingDeps {
  q: Queryable;
  principal: Principal;
  policy: PointerPolicy;
  fhirBase: string;
  pageSize: number;
}

interface StudyResource {
  id: string;
  started?: string;
  identifier?: { system?: string; value?: string }[];
  modality?: { code?: string }[];
  description?: string;
  numberOfSeries?: number;
  numberOfInstances?: number;
  series?: { modality?: { code?: string }; bodySite?: { display?: string; code?: string } }[];
}

interface DocResource {
  id: string;
  custodian?: { identifier?: { value?: string } };
  context?: { related?: { identifier?: { system?: string; value?: string } }[] };
}

interface ParsedBundle<T> {
  entry?: { resource: T & { resourceType: string }; search?: { mode?: string } }[];
  link?: { relation: string; url: string }[];
}

function matches<T>(bundle: ParsedBundle<T>): T[] {
  return (bundle.entry ?? []).filter((e) => e.search?.mode === 'match').map((e) => e.resource);
}

const studyUidOf = (identifiers: { system?: string; value?: string }[] | undefined): string | undefined => {
  const v = identifiers?.find((i) => i.system === 'urn:dicom:uid')?.value;
  return v ? uidFromUrnOid(v) : undefined;
};

/** Groups UIDs into `study-instance-uid` values short enough for one search parameter (2048 characters). */
function uidChunks(uids: string[]): string[] {
  const out: string[] = [];
  let current = '';
  for (const u of uids) {
    if (current && current.length + u.length + 1 > 1900) {
      out.push(current);
      current = '';
    }
    current = current ? `${current},${u}` : u;
  }
  if (current) out.push(current);
  return out;
}

/**
 * The prior-imaging timeline (issue 6): the patient's ImagingStudy pointers across every
 * custodian, newest first, with the reports related to each and the custodians' names. Every
 * search goes through `searchResources`, so the sharing policy applies exactly as on the API.
 */
export async function findPriorImaging(d: PriorImagingDeps, query: PriorImagingQuery): Promise<PriorImaging> {
  const params: [string, string][] = [['patient.identifier', `${NHS_NUMBER_SYSTEM}|${query.nhs}`]];
  if (query.modality) params.push(['modality', query.modality]);
  if (query.from) params.push(['started', `ge${query.from}`]);
  if (query.to) params.push(['started', `le${query.to}`]);
  params.push(['_count', String(d.pageSize)]);
  const common = { strict: true, principal: d.principal, policy: d.policy, fhirBase: d.fhirBase, maxPageSize: d.pageSize, defaultPageSize: d.pageSize };
  const found = await searchResources(d.q, { ...common, def: imagingStudyDef, params: query.cursor ? [...params, ['_cursor', query.cursor]] : params });
  const bundle = JSON.parse(found.bundle) as ParsedBundle<StudyResource>;
  const studies = matches(bundle);
  const custodians = new Map(found.returned.map((r) => [r.id, '']));
  const rows = (await d.q.query<{ id: string; custodian_ods: string }>('select id, custodian_ods from imaging_study where id = any($1::text[])', [studies.map((s) => s.id)])).rows;
  for (const r of rows) custodians.set(r.id, r.custodian_ods);

  const uids = [...new Set(studies.map((s) => studyUidOf(s.identifier)).filter((u): u is string => Boolean(u)))];
  const reports = new Map<string, string[]>();
  let withheld = found.withheld === true;
  const returned = [...found.returned];
  for (const chunk of uidChunks(uids)) {
    const r = await searchResources(d.q, {
      ...common,
      def: documentReferenceDef,
      params: [['patient.identifier', `${NHS_NUMBER_SYSTEM}|${query.nhs}`], ['category', `${SNOMED_SYSTEM}|${CATEGORY_REPORT}`], ['study-instance-uid', chunk], ['_count', String(d.pageSize)]],
    });
    withheld ||= r.withheld === true;
    returned.push(...r.returned);
    for (const doc of matches(JSON.parse(r.bundle) as ParsedBundle<DocResource>)) {
      const ods = doc.custodian?.identifier?.value ?? '';
      for (const rel of doc.context?.related ?? []) {
        const uid = studyUidOf(rel.identifier ? [rel.identifier] : undefined);
        if (uid) reports.set(`${ods}|${uid}`, [...(reports.get(`${ods}|${uid}`) ?? []), doc.id]);
      }
    }
  }
  const names = new Map(
    (await d.q.query<{ ods: string; name: string | null }>(`select ods, (resource::json)->>'name' as name from organization where ods = any($1::text[])`, [[...new Set(custodians.values())]])).rows.map((r) => [r.ods, r.name ?? undefined]),
  );
  const nextUrl = bundle.link?.find((l) => l.relation === 'next')?.url;
  const next = nextUrl ? (new URL(nextUrl).searchParams.get('_cursor') ?? undefined) : undefined;
  return {
    studies: studies.map((s) => {
      const custodian = custodians.get(s.id) ?? '';
      const uid = studyUidOf(s.identifier);
      return {
        id: s.id,
        started: s.started ?? '',
        modalities: [...new Set([...(s.modality ?? []), ...(s.series ?? []).map((x) => x.modality ?? {})].map((m) => m.code).filter((c): c is string => Boolean(c)))],
        description: s.description,
        bodySites: [...new Set((s.series ?? []).map((x) => x.bodySite?.display ?? x.bodySite?.code).filter((b): b is string => Boolean(b)))],
        custodian,
        custodianName: names.get(custodian),
        numberOfSeries: s.numberOfSeries,
        numberOfInstances: s.numberOfInstances,
        reportIds: uid ? (reports.get(`${custodian}|${uid}`) ?? []) : [],
      };
    }),
    withheld,
    next,
    query: new URLSearchParams(params).toString(),
    returned,
  };
}
