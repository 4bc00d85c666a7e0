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
import { readPart10Header } from '../dicom/part10';
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

export async function scanDirectory(root: string, concurrency: number, hooks: DirScanHooks): Promise<DirScanResult> {
  const collector = new StudyCollector();
  const result = { files: 0, unreadable: 0, notInstances: 0 };
  await forEachConcurrent(walkFiles(root), concurrency, async (file) => {
    result.files++;
    try {
      const dataset = await readPart10Header(file);
      // e.g. a DICOMDIR: valid Part 10, but not a composite instance of a study.
      if (!collector.add(dataset)) result.notInstances++;
    } catch (err) {
      result.unreadable++;
      hooks.onUnreadable(path.relative(root, file), err instanceof Error ? err.message.split('\n')[0]! : String(err));
    }
    if (result.files % 1000 === 0) hooks.onProgress?.(result.files);
  });
  return { studies: collector.values(), ...result };
}
