/**
 * `locus publish`: the library entry point behind the CLI. Returns the exit status.
 */
import type { MapOptions } from '../dicom/map-study';
import type { DicomStudy } from '../dicom/model';
import { resolveNhsNumber } from '../dicom/patient-identity';
import { studyFromDataset } from '../dicom/extract';
import { identityConfig, parsePublishArgs, publishUsage, type PublishArgs } from './args';
import { forEachConcurrent } from './concurrency';
import { scanDirectory } from './dir-source';
import { inThreadReader, workerPoolReader } from './header-pool';
import { clientCredentialsToken, createRegistryClient, staticToken, type RegistryClient } from './fhir';
import { Progress, type Output } from './progress';
import { publishBatch, type BatchPublisherDeps } from './publish-batch';
import { QidoClient } from './qido';
import { defaultRetryPolicy, type RetryPolicy } from './retry';
import { dayBefore, laterDate, loadState, saveState, studyFingerprint } from './state';
import { Summary } from './summary';

export { publishUsage };

export interface PublishIo { stdout: Output; stderr: Output; isTTY: boolean }
/** Seams for tests and the benchmark: timers, randomness and the environment. */
export interface PublishDeps { sleep?: (ms: number) => Promise<void>; random?: () => number; env?: Record<string, string | undefined> }

class UsageError extends Error {}

export async function runPublish(argv: string[], io: PublishIo, deps: PublishDeps = {}): Promise<number> {
  const parsed = parsePublishArgs(argv, deps.env ?? process.env);
  if ('error' in parsed) {
    io.stderr.write(`locus publish: ${parsed.error}\nTry 'locus publish --help'.\n`);
    return 2;
  }
  const args = parsed.args;
  if (args.help) {
    io.stdout.write(publishUsage);
    return 0;
  }
  // A dry run keeps stdout for the Bundles; its log lines go to stderr.
  const log = args.dryRun ? io.stderr : io.stdout;
  const progress = new Progress(log, io.isTTY && !args.dryRun);
  const summary = new Summary();
  const retry = defaultRetryPolicy({
    maxRetries: args.maxRetries,
    ...(deps.sleep ? { sleep: deps.sleep } : {}),
    ...(deps.random ? { random: deps.random } : {}),
    onRetry: ({ attempt, delayMs, reason }) => progress.log(`retry ${attempt}/${args.maxRetries} in ${(delayMs / 1000).toFixed(1)} s after ${reason}`),
  });
  try {
    const tokens = args.clientId && args.clientSecret && args.tokenUrl
      ? clientCredentialsToken(args.tokenUrl, args.clientId, args.clientSecret)
      : staticToken(args.token);
    const registry = await createRegistryClient(args.fhir, tokens, retry);
    const endpoint = await resolveEndpoint(args, registry);
    progress.log(`publishing for ${args.org!} to ${args.fhir} (endpoint ${endpoint.reference}, WADO-RS ${endpoint.address})${args.dryRun ? ' [dry run]' : ''}`);
    const batchDeps: BatchPublisherDeps = {
      mapOptions: {
        custodianOds: args.org!, wadoBaseUrl: endpoint.address, endpointReference: endpoint.reference,
        patientIdentity: identityConfig(args), timeZone: args.timeZone,
      },
      ...(args.dryRun ? {} : { registry }),
      bundleOut: io.stdout, progress, summary,
    };
    if (args.fromDir) await publishFromDir(args, args.fromDir, batchDeps);
    else await publishFromQido(args, args.fromQido!, batchDeps, retry);
  } catch (err) {
    progress.finish();
    io.stderr.write(`locus publish: ${err instanceof Error ? err.message : String(err)}\n`);
    log.write(summary.render(args.dryRun, progress.rate()));
    return err instanceof UsageError ? 2 : 1;
  }
  progress.finish();
  log.write(summary.render(args.dryRun, progress.rate()));
  return summary.failedCount > 0 ? 1 : 0;
}

async function resolveEndpoint(args: PublishArgs, registry: RegistryClient): Promise<{ reference: string; address: string }> {
  if (args.endpoint && args.wado) return { reference: args.endpoint, address: args.wado };
  const found = args.endpoint ? await registry.readEndpoint(args.endpoint) : await registry.findWadoEndpoint(args.org!);
  return { reference: found.reference, address: args.wado ?? found.address };
}

/** Bundles in flight at once: the next one is mapped and sent while the registry commits the last. */
const BUNDLES_IN_FLIGHT = 2;

async function inBatches(studies: DicomStudy[], size: number, deps: BatchPublisherDeps): Promise<void> {
  const slices: DicomStudy[][] = [];
  for (let i = 0; i < studies.length; i += size) slices.push(studies.slice(i, i + size));
  // A dry run prints its Bundles in order, one at a time.
  await forEachConcurrent(slices, deps.registry ? BUNDLES_IN_FLIGHT : 1, async (slice) => {
    await publishBatch(slice, deps);
  });
}

async function publishFromDir(args: PublishArgs, root: string, deps: BatchPublisherDeps): Promise<void> {
  const { progress, summary } = deps;
  // Header parsing is CPU-bound: spread it over worker threads, keeping this thread for I/O.
  const reader = args.workers > 0 ? workerPoolReader(args.workers) : inThreadReader();
  let scan: Awaited<ReturnType<typeof scanDirectory>>;
  try {
    scan = await scanDirectory(
      root,
      Math.max(2, args.workers * 2),
      {
        onUnreadable: (file, reason) => {
          summary.skip('unreadable-or-not-dicom-file');
          progress.log(`skipped file ${file}: ${reason}`);
        },
        onProgress: (files) => progress.log(`scanned ${files} files`),
      },
      reader,
    );
  } finally {
    await reader.close();
  }
  if (scan.notInstances > 0) summary.skip('dicom-file-without-study-series-sop-uids', scan.notInstances);
  progress.log(`scanned ${scan.files} files: ${scan.studies.length} studies`);
  progress.start(scan.studies.length);
  await inBatches(scan.studies, args.batchSize, deps);
}

async function publishFromQido(args: PublishArgs, qidoUrl: string, deps: BatchPublisherDeps, retry: RetryPolicy): Promise<void> {
  const { progress, summary } = deps;
  const state = await loadState(args.state);
  const source = state.sources[qidoUrl] ?? { studies: {} };
  const since = source.watermark ? dayBefore(source.watermark) : args.since;
  if (!since) throw new UsageError(`no watermark for ${qidoUrl} in ${args.state}: the first run needs --since`);
  progress.log(`querying ${qidoUrl} for studies from ${since}`);
  progress.start();
  const qido = new QidoClient(qidoUrl, retry, Math.min(args.batchSize, 1000));
  const mapOptions: MapOptions = deps.mapOptions;
  let watermark = source.watermark;
  for await (const page of qido.studiesSince(since)) {
    const changed: Array<{ result: (typeof page)[number]; fingerprint: string }> = [];
    for (const result of page) {
      const study = studyFromDataset(result);
      if (!study) { summary.skip('qido-result-without-study-uid'); continue; }
      watermark = laterDate(watermark, /^\d{8}$/.test(study.studyDate ?? '') ? study.studyDate : undefined);
      const fingerprint = studyFingerprint(study);
      if (source.studies[study.studyInstanceUid] === fingerprint) { summary.known++; continue; }
      // Identity first: a study we would skip costs no series/instance queries (unless the NHS
      // number is in OtherPatientIDsSequence, which some PACS only give in instance metadata).
      const identity = resolveNhsNumber(study.patient, mapOptions.patientIdentity);
      const canDecideNow = mapOptions.patientIdentity.source === 'PatientID' || study.patient.otherIds.length > 0;
      if ('skipped' in identity && canDecideNow) {
        summary.skip(identity.skipped);
        progress.log(`skipped study ${study.studyInstanceUid}: ${identity.skipped} (${identity.detail})`);
        continue;
      }
      changed.push({ result, fingerprint });
    }
    const studies: DicomStudy[] = [];
    await forEachConcurrent(changed, args.concurrency, async ({ result }) => {
      const s = await qido.readStudy(result);
      if (s) studies.push(s);
    });
    const statuses = await publishBatch(studies, deps);
    for (const { result, fingerprint } of changed) {
      const uid = studyFromDataset(result)!.studyInstanceUid;
      const status = statuses.get(uid);
      if (status === 'created' || status === 'updated' || status === 'unchanged') source.studies[uid] = fingerprint;
    }
    if (!args.dryRun) {
      state.sources[qidoUrl] = source;
      await saveState(args.state, state);
    }
  }
  // The watermark moves only after a run without failures, so failed studies are queried again.
  if (!args.dryRun && summary.failedCount === 0 && watermark) {
    source.watermark = watermark;
    state.sources[qidoUrl] = source;
    await saveState(args.state, state);
  }
}
