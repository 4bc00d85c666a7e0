/**
 * Benchmark: `locus publish --from-dir` against a running Locus FHIR server. Generates a folder of
 * synthetic DICOM (test-data/generate-dicom.ts), then publishes it twice: a first run (creates)
 * and a re-run (all unchanged), returning the figures. Printing is left to the bench runner.
 * The server must already hold an Organization with a dicom-wado-rs Endpoint for `ods`.
 */
import { mkdtemp, rm } from 'node:fs/promises';
import os from 'node:os';
import path from 'node:path';
import { runPublish } from '../src/publisher';
import { generateDicomFolder } from '../test-data/generate-dicom';

export interface BenchPublishOptions {
  fhirBase: string;
  token: string;
  studies: number;
  instancesPerStudy: number;
  /** Custodian ODS code (default RRK). */
  ods?: string;
  batchSize?: number;
  /** Skip the Endpoint look-up: Endpoint/<id> and its WADO-RS base. */
  endpoint?: { reference: string; wadoBaseUrl: string };
}

export interface BenchPublishResult {
  studies: number;
  files: number;
  generateSeconds: number;
  firstRunSeconds: number;
  studiesPerSecond: number;
  filesPerSecond: number;
  rerunSeconds: number;
  rerunStudiesPerSecond: number;
  firstRunExitCode: number;
  rerunExitCode: number;
  firstRunSummary: string;
  rerunSummary: string;
}

const quietIo = (): { io: { stdout: { write(s: string): boolean }; stderr: { write(s: string): boolean }; isTTY: boolean }; text: () => string } => {
  let text = '';
  const write = (s: string): boolean => { text += s; return true; };
  return { io: { stdout: { write }, stderr: { write }, isTTY: false }, text: () => text };
};

const lastSummaryLine = (log: string): string => log.split('\n').find((l) => /^published \d+/.test(l)) ?? log.trim().split('\n').slice(-3).join(' | ');

export async function benchPublishFromDir(opts: BenchPublishOptions): Promise<BenchPublishResult> {
  const dir = await mkdtemp(path.join(os.tmpdir(), 'locus-bench-publish-'));
  try {
    // Each generated study has `instancesPerStudy` files over 1-2 series, a report among them for some kinds (STUDY_KINDS).
    const t0 = performance.now();
    await generateDicomFolder(dir, opts.studies, opts.instancesPerStudy);
    const generateSeconds = (performance.now() - t0) / 1000;
    const argv = ['--from-dir', dir, '--fhir', opts.fhirBase, '--org', opts.ods ?? 'RRK', '--token', opts.token,
      '--batch-size', String(opts.batchSize ?? 100),
      ...(opts.endpoint ? ['--endpoint', opts.endpoint.reference, '--wado', opts.endpoint.wadoBaseUrl] : [])];
    const first = quietIo();
    const t1 = performance.now();
    const firstRunExitCode = await runPublish(argv, first.io, { env: {} });
    const firstRunSeconds = (performance.now() - t1) / 1000;
    const files = Number(/scanned (\d+) files:/.exec(first.text())?.[1] ?? 0);
    const rerun = quietIo();
    const t2 = performance.now();
    const rerunExitCode = await runPublish(argv, rerun.io, { env: {} });
    const rerunSeconds = (performance.now() - t2) / 1000;
    return {
      studies: opts.studies, files, generateSeconds, firstRunSeconds,
      studiesPerSecond: opts.studies / firstRunSeconds, filesPerSecond: files / firstRunSeconds,
      rerunSeconds, rerunStudiesPerSecond: opts.studies / rerunSeconds,
      firstRunExitCode, rerunExitCode, firstRunSummary: lastSummaryLine(first.text()), rerunSummary: lastSummaryLine(rerun.text()),
    };
  } finally {
    await rm(dir, { recursive: true, force: true });
  }
}
