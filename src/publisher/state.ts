/**
 * The QIDO publisher's memory between runs. QIDO-RS has no "modified since", so a run re-queries
 * from the last StudyDate watermark minus one day (studies still arriving for yesterday, clock
 * and time-zone slack) and uses per-study fingerprints of the study-level answer (patient,
 * counts, modalities, dates, …) to skip studies it already published unchanged.
 * Written atomically (temp file + rename) so a crash never leaves half a file.
 */
import { createHash } from 'node:crypto';
import { readFile, rename, writeFile } from 'node:fs/promises';
import { z } from 'zod';
import type { DicomStudy } from '../dicom/model';

const sourceStateSchema = z.object({
  watermark: z.string().regex(/^\d{8}$/).optional(),
  studies: z.record(z.string(), z.string()).default({}),
});
const stateSchema = z.object({ version: z.literal(1), sources: z.record(z.string(), sourceStateSchema).default({}) });
export type PublishState = z.infer<typeof stateSchema>;
export type SourceState = z.infer<typeof sourceStateSchema>;

export async function loadState(file: string): Promise<PublishState> {
  let text: string;
  try {
    text = await readFile(file, 'utf8');
  } catch (err) {
    if ((err as NodeJS.ErrnoException).code === 'ENOENT') return { version: 1, sources: {} };
    throw err;
  }
  const parsed = stateSchema.safeParse(JSON.parse(text));
  if (!parsed.success) throw new Error(`state file ${file} is not a Locus publish state file: ${parsed.error.issues[0]?.message}`);
  return parsed.data;
}

export async function saveState(file: string, state: PublishState): Promise<void> {
  const tmp = `${file}.${process.pid}.tmp`;
  await writeFile(tmp, `${JSON.stringify(state, null, 1)}\n`);
  await rename(tmp, file);
}

/** A digest of the study-level answer (hashed: the state file holds no patient identifiers). */
export function studyFingerprint(study: Omit<DicomStudy, 'series'>): string {
  return createHash('sha256').update(JSON.stringify(study)).digest('hex').slice(0, 32);
}

export function dayBefore(yyyymmdd: string): string {
  const d = new Date(Date.UTC(Number(yyyymmdd.slice(0, 4)), Number(yyyymmdd.slice(4, 6)) - 1, Number(yyyymmdd.slice(6, 8)) - 1));
  return d.toISOString().slice(0, 10).replace(/-/g, '');
}

export function laterDate(a: string | undefined, b: string | undefined): string | undefined {
  if (!a) return b;
  if (!b) return a;
  return a > b ? a : b;
}
