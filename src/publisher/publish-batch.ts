/**
 * Maps a batch of studies and publishes it as one transaction Bundle. A transaction is atomic
 * (FHIR R4 §3.1.0.11.2), so when the server rejects a batch as a client error (4xx), the batch is
 * re-sent a study at a time: one bad study then fails alone instead of taking 99 others with it.
 */
import { mapStudy, type MapOptions, type MappedStudy } from '../dicom/map-study';
import type { DicomStudy } from '../dicom/model';
import { entryOutcomes, studyEntries, studyOutcome, transactionBundle, type EntryOutcome } from './bundle';
import { describeHttpFailure, httpStatusOf, type RegistryClient } from './fhir';
import type { Output, Progress } from './progress';
import type { Summary } from './summary';

export type StudyStatus = EntryOutcome | 'skipped' | 'failed' | 'mapped';

export interface BatchPublisherDeps {
  mapOptions: MapOptions;
  /** Absent in a dry run. */
  registry?: RegistryClient;
  /** Where a dry run prints its Bundles. */
  bundleOut: Output;
  progress: Progress;
  summary: Summary;
}

const uidOf = (m: MappedStudy): string => m.imagingStudy.identifier[0]!.value.replace(/^urn:oid:/, '');

export async function publishBatch(studies: DicomStudy[], deps: BatchPublisherDeps): Promise<Map<string, StudyStatus>> {
  const statuses = new Map<string, StudyStatus>();
  const mapped: MappedStudy[] = [];
  for (const study of studies) {
    const result = mapStudy(study, deps.mapOptions);
    if ('skipped' in result) {
      deps.summary.skip(result.skipped);
      deps.progress.log(`skipped study ${study.studyInstanceUid}: ${result.skipped} (${result.detail})`);
      statuses.set(study.studyInstanceUid, 'skipped');
    } else {
      mapped.push(result);
    }
  }
  if (mapped.length > 0) {
    if (!deps.registry) {
      deps.bundleOut.write(`${JSON.stringify(transactionBundle(mapped))}\n`);
      deps.summary.mapped += mapped.length;
      for (const m of mapped) statuses.set(uidOf(m), 'mapped');
    } else {
      await send(mapped, deps.registry, deps, statuses);
    }
  }
  deps.progress.advance(studies.length);
  return statuses;
}

async function send(mapped: MappedStudy[], registry: RegistryClient, deps: BatchPublisherDeps, statuses: Map<string, StudyStatus>): Promise<void> {
  const bundle = transactionBundle(mapped);
  let outcomes: EntryOutcome[];
  try {
    outcomes = entryOutcomes(await registry.transaction(bundle), bundle.entry.length);
  } catch (err) {
    const status = httpStatusOf(err);
    if (status !== undefined && status >= 400 && status < 500 && status !== 429 && mapped.length > 1) {
      deps.progress.log(`batch of ${mapped.length} studies rejected (${describeHttpFailure(err)}); retrying one study at a time`);
      for (const m of mapped) await send([m], registry, deps, statuses);
      return;
    }
    const reason = describeHttpFailure(err);
    for (const m of mapped) {
      deps.summary.fail(reason, uidOf(m));
      statuses.set(uidOf(m), 'failed');
    }
    deps.progress.log(`failed to publish ${mapped.length} studies: ${reason}`);
    return;
  }
  let at = 0;
  for (const m of mapped) {
    const n = studyEntries(m).length;
    const outcome = studyOutcome(outcomes.slice(at, at + n));
    at += n;
    statuses.set(uidOf(m), outcome);
    if (outcome === 'created') deps.summary.published++;
    else if (outcome === 'updated') deps.summary.updated++;
    else deps.summary.unchanged++;
  }
}
