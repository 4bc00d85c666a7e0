/**
 * A worker thread reading DICOM headers for `--from-dir` (see header-pool.ts): dcmjs parsing is
 * CPU-bound, and a publisher machine has more than one core.
 */
import { parentPort } from 'node:worker_threads';
import type { InstanceParts } from '../dicom/extract';
import { readHeaders } from './header-pool';

export type HeaderResult = { parts: InstanceParts | undefined } | { error: string };

parentPort?.on('message', (req: { id: number; files: string[] }) => {
  parentPort?.postMessage({ id: req.id, results: readHeaders(req.files) });
});
