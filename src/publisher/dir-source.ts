/**
 * `--from-dir`: walks a folder tree streaming (one directory handle at a time, never a full file
 * list), reads each file's DICOM header only (see dicom/part10.ts) and keeps just the model's
 * per-instance attributes, grouped by StudyInstanceUID. Unreadable or non-DICOM files are reported
 * and counted, never fatal.
 */
import { opendir, stat } from 'node:fs/promises';
import path from 'node:path';
import { StudyCollector } from '../dicom/extract';
import type { DicomStudy } from '../dicom/model';
import type { HeaderReader } from './header-pool';
import { forEachConcurrent } from './concurrency';

export async function* walkFiles(root: string): AsyncGenerator<string> {
  const dir = await opendir(root);
  for await (const entry of dir) {
    const full = path.join(root, entry.name);
    if (entry.isDirectory()) yield* walkFiles(full);
    else if (entry.isFile()) yield full;
    // Symbolic links to files are followed; links to directories are not (no cycles).
    else if (entry.isSymbolicLink() && (await stat(full).then((s) => s.isFile(), () => false))) yield full;
  }
}

export interface DirScanResult {
  studies: DicomStudy[];
  files: number;
  unreadable: number;
  notInstances: number;
}

export interface DirScanHooks {
  /** A file that could not be read as DICOM: its path relative to the root and why. */
  onUnreadable(relativePath: string, reason: string): void;
  onProgress?(filesSeen: number): void;
}

const BATCH = 64;

async function* batches(files: AsyncIterable<string>): AsyncGenerator<string[]> {
  let batch: string[] = [];
  for await (const f of files) {
    batch.push(f);
    if (batch.length === BATCH) {
      yield batch;
      batch = [];
    }
  }
  if (batch.length > 0) yield batch;
}

/** Walks the tree and reads headers in batches, `inFlight` batches at a time (walk and parse overlap). */
export async function scanDirectory(root: string, inFlight: number, hooks: DirScanHooks, reader: HeaderReader): Promise<DirScanResult> {
  const collector = new StudyCollector();
  const result = { files: 0, unreadable: 0, notInstances: 0 };
  await forEachConcurrent(batches(walkFiles(root)), inFlight, async (files) => {
    const results = await reader.readBatch(files);
    results.forEach((r, i) => {
      result.files++;
      if ('error' in r) {
        result.unreadable++;
        hooks.onUnreadable(path.relative(root, files[i] as string), r.error);
      } else if (!collector.addParts(r.parts)) {
        // e.g. a DICOMDIR: valid Part 10, but not a composite instance of a study.
        result.notInstances++;
      }
      if (result.files % 1000 === 0) hooks.onProgress?.(result.files);
    });
  });
  return { studies: collector.values(), ...result };
}
