/**
 * Transaction Bundles of conditional updates (FHIR R4 §3.1.0.8 http.html#cond-update, §2.21.0.17
 * transaction): PUT ImagingStudy?identifier=urn:dicom:uid|urn:oid:<StudyUID> and
 * PUT DocumentReference?identifier=urn:ietf:rfc:3986|urn:oid:<UID> (the DocumentReference
 * `identifier` search parameter covers masterIdentifier). Re-sending a study is therefore
 * idempotent; the server scopes the match to the caller's own custodian organisation.
 */
import { z } from 'zod';
import type { MappedStudy } from '../dicom/map-study';
import { RFC3986_SYSTEM, SPINE_ERROR_SYSTEM } from '../registry/codes';
import { DICOM_UID_SYSTEM } from '../registry/dicom-uid';

export interface BundleEntry { resource: object; request: { method: 'PUT'; url: string } }
export interface TransactionBundle { resourceType: 'Bundle'; type: 'transaction'; entry: BundleEntry[] }

export function studyEntries(m: MappedStudy): BundleEntry[] {
  const studyUid = m.imagingStudy.identifier[0]!.value;
  return [
    { resource: m.imagingStudy, request: { method: 'PUT', url: `ImagingStudy?identifier=${DICOM_UID_SYSTEM}|${studyUid}` } },
    ...m.documentReferences.map((d) => ({
      resource: d,
      request: { method: 'PUT' as const, url: `DocumentReference?identifier=${RFC3986_SYSTEM}|${d.masterIdentifier.value}` },
    })),
  ];
}

export function transactionBundle(studies: MappedStudy[]): TransactionBundle {
  return { resourceType: 'Bundle', type: 'transaction', entry: studies.flatMap(studyEntries) };
}

export type EntryOutcome = 'created' | 'updated' | 'unchanged';

const responseSchema = z.object({
  resourceType: z.literal('Bundle'),
  type: z.literal('transaction-response'),
  entry: z.array(z.object({
    response: z.object({
      status: z.string(),
      outcome: z.object({
        issue: z.array(z.object({ details: z.object({ coding: z.array(z.object({ system: z.string().optional(), code: z.string().optional() }).loose()).optional() }).loose().optional() }).loose()).optional(),
      }).loose().optional(),
    }).loose(),
  }).loose()).default([]),
}).loose();

/**
 * One outcome per request entry, in order (the server answers entry for entry). The Spine code
 * in response.outcome decides; without one, 201 means created and 200 updated.
 */
export function entryOutcomes(response: unknown, expected: number): EntryOutcome[] {
  const parsed = responseSchema.parse(response);
  if (parsed.entry.length !== expected) throw new Error(`transaction-response has ${parsed.entry.length} entries for ${expected} requests`);
  return parsed.entry.map(({ response: r }) => {
    const coding = r.outcome?.issue?.[0]?.details?.coding?.[0];
    if (coding && (coding.system === undefined || coding.system === SPINE_ERROR_SYSTEM)) {
      if (coding.code === 'RESOURCE_CREATED') return 'created';
      if (coding.code === 'RESOURCE_UPDATED') return 'updated';
      if (coding.code === 'RESOURCE_UNCHANGED') return 'unchanged';
    }
    if (r.status.startsWith('201')) return 'created';
    if (r.status.startsWith('200')) return 'updated';
    throw new Error(`unexpected entry status "${r.status}" in a transaction-response`);
  });
}

/** A study is published when its ImagingStudy was created, updated when anything of it changed. */
export function studyOutcome(outcomes: EntryOutcome[]): EntryOutcome {
  if (outcomes[0] === 'created') return 'created';
  return outcomes.some((o) => o !== 'unchanged') ? 'updated' : 'unchanged';
}
