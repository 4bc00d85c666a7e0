/**
 * The DICOM JSON model (PS3.18 §F.2): a dataset is an object keyed by 8-hex-digit tags, each
 * element `{ vr, Value?: [...] }`; PN values are `{ Alphabetic, Ideographic, Phonetic }` objects
 * (§F.2.2), IS/DS are JSON numbers (§F.2.3), SQ values are nested datasets. dcmjs reads Part 10
 * files into the same shape, so one set of accessors serves both sources.
 */
import { z } from 'zod';

export type DicomJsonElement = { vr?: string; Value?: unknown[] };
export type DicomJsonDataset = Record<string, DicomJsonElement>;

/** Validation at the edge for datasets from a PACS (QIDO-RS answers). */
export const dicomJsonDatasetSchema: z.ZodType<DicomJsonDataset> = z.record(
  z.string().regex(/^[0-9A-Fa-f]{8}$/, 'DICOM JSON keys are 8 hex digit tags (PS3.18 F.2.1.1)'),
  z.object({ vr: z.string().optional(), Value: z.array(z.unknown()).optional() }).loose(),
);
export const dicomJsonArraySchema = z.array(dicomJsonDatasetSchema);

export const TAG = {
  SpecificCharacterSet: '00080005',
  SOPClassUID: '00080016',
  SOPInstanceUID: '00080018',
  StudyDate: '00080020',
  ContentDate: '00080023',
  StudyTime: '00080030',
  ContentTime: '00080033',
  AccessionNumber: '00080050',
  Modality: '00080060',
  ModalitiesInStudy: '00080061',
  ReferringPhysicianName: '00080090',
  CodeValue: '00080100',
  CodingSchemeDesignator: '00080102',
  CodeMeaning: '00080104',
  TimezoneOffsetFromUTC: '00080201',
  StudyDescription: '00081030',
  ProcedureCodeSequence: '00081032',
  SeriesDescription: '0008103E',
  PatientName: '00100010',
  PatientID: '00100020',
  IssuerOfPatientID: '00100021',
  OtherPatientIDsSequence: '00101002',
  BodyPartExamined: '00180015',
  StudyInstanceUID: '0020000D',
  SeriesInstanceUID: '0020000E',
  SeriesNumber: '00200011',
  InstanceNumber: '00200013',
  Laterality: '00200060',
  NumberOfStudyRelatedSeries: '00201206',
  NumberOfStudyRelatedInstances: '00201208',
  NumberOfSeriesRelatedInstances: '00201209',
  CompletionFlag: '0040A491',
  VerificationFlag: '0040A493',
  PixelData: '7FE00010',
} as const;

function values(ds: DicomJsonDataset, tag: string): unknown[] {
  const el = ds[tag] ?? ds[tag.toLowerCase()];
  return Array.isArray(el?.Value) ? el.Value : [];
}

/** All non-empty string values, trimmed (DICOM pads to even length with spaces, PS3.5 §6.2). */
export function getStrings(ds: DicomJsonDataset, tag: string): string[] {
  return values(ds, tag)
    .map((v) => (typeof v === 'number' ? String(v) : typeof v === 'string' ? v.trim() : ''))
    .filter((v) => v.length > 0);
}

export function getString(ds: DicomJsonDataset, tag: string): string | undefined {
  return getStrings(ds, tag)[0];
}

/** IS/DS: a number in DICOM JSON, a string in some PACS answers; undefined when not numeric. */
export function getNumber(ds: DicomJsonDataset, tag: string): number | undefined {
  const v = values(ds, tag)[0];
  const n = typeof v === 'number' ? v : typeof v === 'string' && v.trim() !== '' ? Number(v.trim()) : NaN;
  return Number.isFinite(n) ? n : undefined;
}

/** PN (PS3.5 §6.2.1): the Alphabetic group; some encoders send a bare string. */
export function getPersonName(ds: DicomJsonDataset, tag: string): string | undefined {
  const v = values(ds, tag)[0];
  if (typeof v === 'string') return v.trim() || undefined;
  if (v && typeof v === 'object' && 'Alphabetic' in v) {
    const alpha = (v as { Alphabetic?: unknown }).Alphabetic;
    return typeof alpha === 'string' && alpha.trim() ? alpha.trim() : undefined;
  }
  return undefined;
}

export function getSequence(ds: DicomJsonDataset, tag: string): DicomJsonDataset[] {
  return values(ds, tag).filter((v): v is DicomJsonDataset => !!v && typeof v === 'object' && !Array.isArray(v));
}

/**
 * A PN value as display text: components family^given^middle^prefix^suffix (PS3.5 §6.2)
 * become "prefix given middle family suffix".
 */
export function personNameDisplay(pn: string): string {
  const [family = '', given = '', middle = '', prefix = '', suffix = ''] = pn.split('=')[0]!.split('^');
  return [prefix, given, middle, family, suffix].map((s) => s.trim()).filter(Boolean).join(' ');
}
