/**
 * Synthetic DICOM Part 10 files for tests, demos and benchmarks: CT, MR, PT+CT, Basic Text SR
 * and Encapsulated PDF reports. No real images (8×8 pixel data) and no real people: NHS numbers
 * come from the 999 test range with valid check digits. UIDs are 2.25 UUID-derived UIDs
 * (PS3.5 Annex B.2) hashed from a seed, so the same seed always yields the same files.
 *
 * CLI: npx tsx test-data/generate-dicom.ts --out DIR --studies N --instances M
 */
import { createHash } from 'node:crypto';
import { mkdir, writeFile } from 'node:fs/promises';
import path from 'node:path';
import * as dcmjs from 'dcmjs';
import { testNhsNumber } from '../src/registry/nhs-number';
import { buildPdf } from './tiny-pdf';

export const SOP_CLASS = {
  CT: '1.2.840.10008.5.1.4.1.1.2',
  MR: '1.2.840.10008.5.1.4.1.1.4',
  PT: '1.2.840.10008.5.1.4.1.1.128',
  CR: '1.2.840.10008.5.1.4.1.1.1',
  BasicTextSR: '1.2.840.10008.5.1.4.1.1.88.11',
  EncapsulatedPDF: '1.2.840.10008.5.1.4.1.1.104.1',
} as const;
const EXPLICIT_VR_LITTLE_ENDIAN = '1.2.840.10008.1.2.1';

/** A 2.25 UID (PS3.5 B.2) from a SHA-256 of the seed parts: ≤ 44 characters, no leading zeros. */
export function uidFor(...parts: Array<string | number>): string {
  const hex = createHash('sha256').update(parts.join('/')).digest('hex').slice(0, 32);
  return `2.25.${BigInt(`0x${hex}`).toString(10)}`;
}

export interface SeriesSpec {
  modality: string;
  kind?: 'image' | 'sr' | 'pdf';
  instances?: number;
  description?: string;
  bodyPart?: string;
  laterality?: 'L' | 'R';
  completionFlag?: 'PARTIAL' | 'COMPLETE';
  verificationFlag?: 'UNVERIFIED' | 'VERIFIED';
  reportText?: string;
}

export interface StudySpec {
  seed: string;
  /** PatientID (0010,0020); default: the NHS number. */
  patientId?: string;
  nhsNumber?: string;
  issuerOfPatientId?: string;
  otherPatientIds?: Array<{ id: string; issuer: string }>;
  patientName?: string;
  charset?: 'ISO_IR 100' | 'ISO_IR 192';
  accessionNumber?: string;
  studyDate?: string;
  studyTime?: string;
  timezoneOffset?: string;
  description?: string;
  referringPhysician?: string;
  procedureCode?: { value: string; scheme: string; meaning: string };
  series: SeriesSpec[];
}

export interface GeneratedInstance {
  relativePath: string;
  bytes: Buffer;
  studyInstanceUid: string;
  seriesInstanceUid: string;
  sopInstanceUid: string;
  sopClassUid: string;
}

type Natural = Record<string, unknown>;

function studyAttributes(spec: StudySpec, studyUid: string): Natural {
  const nhs = spec.nhsNumber;
  return {
    SpecificCharacterSet: spec.charset ?? 'ISO_IR 192',
    StudyInstanceUID: studyUid,
    StudyDate: spec.studyDate ?? '20240115',
    StudyTime: spec.studyTime ?? '093000',
    ...(spec.timezoneOffset ? { TimezoneOffsetFromUTC: spec.timezoneOffset } : {}),
    AccessionNumber: spec.accessionNumber ?? '',
    ReferringPhysicianName: spec.referringPhysician ?? '',
    StudyDescription: spec.description ?? '',
    StudyID: '1',
    PatientName: spec.patientName ?? 'Synthetic^Patient',
    PatientID: spec.patientId ?? nhs ?? '',
    ...(spec.issuerOfPatientId ? { IssuerOfPatientID: spec.issuerOfPatientId } : {}),
    ...(spec.otherPatientIds ? { OtherPatientIDsSequence: spec.otherPatientIds.map((o) => ({ PatientID: o.id, IssuerOfPatientID: o.issuer })) } : {}),
    PatientBirthDate: '19700101',
    PatientSex: 'O',
    ...(spec.procedureCode ? {
      ProcedureCodeSequence: [{ CodeValue: spec.procedureCode.value, CodingSchemeDesignator: spec.procedureCode.scheme, CodeMeaning: spec.procedureCode.meaning }],
    } : {}),
  };
}

function imageModule(): Natural {
  return {
    SamplesPerPixel: 1, PhotometricInterpretation: 'MONOCHROME2', Rows: 8, Columns: 8,
    BitsAllocated: 16, BitsStored: 12, HighBit: 11, PixelRepresentation: 0,
    PixelData: [new Uint16Array(64).map((_, i) => i * 16).buffer], _vrMap: { PixelData: 'OW' },
  };
}

function srModule(s: SeriesSpec, spec: StudySpec): Natural {
  const verified = s.verificationFlag === 'VERIFIED';
  return {
    ValueType: 'CONTAINER',
    ConceptNameCodeSequence: [{ CodeValue: '18748-4', CodingSchemeDesignator: 'LN', CodeMeaning: 'Diagnostic Imaging Report' }],
    ContinuityOfContent: 'SEPARATE',
    CompletionFlag: s.completionFlag ?? 'PARTIAL',
    VerificationFlag: s.verificationFlag ?? 'UNVERIFIED',
    ...(verified ? { VerifyingObserverSequence: [{ VerifyingObserverName: 'Reporter^Synthetic', VerifyingOrganization: 'Synthetic Trust', VerificationDateTime: `${spec.studyDate ?? '20240115'}120000` }] } : {}),
    ContentDate: spec.studyDate ?? '20240115',
    ContentTime: '120000',
    ContentSequence: [{
      RelationshipType: 'CONTAINS', ValueType: 'TEXT',
      ConceptNameCodeSequence: [{ CodeValue: '121071', CodingSchemeDesignator: 'DCM', CodeMeaning: 'Finding' }],
      TextValue: s.reportText ?? 'Synthetic report: no abnormality.',
    }],
  };
}

function pdfModule(s: SeriesSpec, spec: StudySpec): Natural {
  const pdf = buildPdf(s.reportText ?? 'Synthetic imaging report');
  const padded = pdf.length % 2 === 0 ? pdf : Buffer.concat([pdf, Buffer.from([0])]); // OB even length, PS3.5 §7.1
  return {
    BurnedInAnnotation: 'YES', DocumentTitle: 'Imaging report',
    ConceptNameCodeSequence: [{ CodeValue: '18748-4', CodingSchemeDesignator: 'LN', CodeMeaning: 'Diagnostic Imaging Report' }],
    MIMETypeOfEncapsulatedDocument: 'application/pdf',
    EncapsulatedDocumentLength: pdf.length,
    EncapsulatedDocument: [padded.buffer.slice(padded.byteOffset, padded.byteOffset + padded.length)],
    ContentDate: spec.studyDate ?? '20240115', ContentTime: '120000',
    _vrMap: { EncapsulatedDocument: 'OB' },
  };
}

const sopClassFor = (s: SeriesSpec): string =>
  s.kind === 'sr' ? SOP_CLASS.BasicTextSR : s.kind === 'pdf' ? SOP_CLASS.EncapsulatedPDF
    : (SOP_CLASS as Record<string, string>)[s.modality] ?? SOP_CLASS.CT;

/**
 * ISO_IR 100 files need Latin-1 bytes, but dcmjs always writes UTF-8. Non-ASCII values are written
 * as same-length ASCII placeholders, then the placeholder bytes are overwritten with Latin-1.
 */
function latin1Placeholders(natural: Natural): Array<[Buffer, Buffer]> {
  const patches: Array<[Buffer, Buffer]> = [];
  for (const key of ['PatientName', 'StudyDescription', 'SeriesDescription', 'ReferringPhysicianName']) {
    const value = natural[key];
    if (typeof value !== 'string' || /^[\x00-\x7f]*$/.test(value)) continue;
    if (/[^\x00-\xff]/.test(value)) throw new Error(`${key} has characters outside ISO_IR 100`);
    const placeholder = value.replace(/[^\x00-\x7f]/g, '~');
    natural[key] = placeholder;
    patches.push([Buffer.from(placeholder, 'latin1'), Buffer.from(value, 'latin1')]);
  }
  return patches;
}

export function writePart10(natural: Natural): Buffer {
  const patches = natural.SpecificCharacterSet === 'ISO_IR 100' ? latin1Placeholders(natural) : [];
  const { DicomDict, DicomMetaDictionary } = dcmjs.data;
  const meta = DicomMetaDictionary.denaturalizeDataset({
    FileMetaInformationVersion: new Uint8Array([0, 1]).buffer,
    MediaStorageSOPClassUID: natural.SOPClassUID,
    MediaStorageSOPInstanceUID: natural.SOPInstanceUID,
    TransferSyntaxUID: EXPLICIT_VR_LITTLE_ENDIAN,
    ImplementationClassUID: uidFor('locus-test-data-generator'),
    ImplementationVersionName: 'LOCUS_TESTDATA',
  });
  const dict = new DicomDict(meta);
  dict.dict = DicomMetaDictionary.denaturalizeDataset(natural);
  const bytes = Buffer.from(dict.write());
  for (const [from, to] of patches) {
    const at = bytes.indexOf(from);
    if (at < 0) throw new Error('latin-1 placeholder not found in the written file');
    to.copy(bytes, at);
  }
  return bytes;
}

export function generateStudy(spec: StudySpec): { studyInstanceUid: string; instances: GeneratedInstance[] } {
  const studyUid = uidFor(spec.seed, 'study');
  const instances = spec.series.flatMap((s, si) => {
    const seriesUid = uidFor(spec.seed, 'series', si);
    const count = s.kind === 'sr' || s.kind === 'pdf' ? 1 : s.instances ?? 3;
    return Array.from({ length: count }, (_, ii) => {
      const sopInstanceUid = uidFor(spec.seed, 'instance', si, ii);
      const sopClassUid = sopClassFor(s);
      const natural: Natural = {
        ...studyAttributes(spec, studyUid),
        SOPClassUID: sopClassUid, SOPInstanceUID: sopInstanceUid,
        Modality: s.modality, SeriesInstanceUID: seriesUid, SeriesNumber: si + 1, InstanceNumber: ii + 1,
        ...(s.description ? { SeriesDescription: s.description } : {}),
        ...(s.bodyPart ? { BodyPartExamined: s.bodyPart } : {}),
        ...(s.laterality ? { Laterality: s.laterality } : {}),
        Manufacturer: 'Locus synthetic',
        ...(s.kind === 'sr' ? srModule(s, spec) : s.kind === 'pdf' ? pdfModule(s, spec) : imageModule()),
      };
      const relativePath = path.join(spec.seed, `series-${si + 1}`, `${ii + 1}.dcm`);
      return { relativePath, bytes: writePart10(natural), studyInstanceUid: studyUid, seriesInstanceUid: seriesUid, sopInstanceUid, sopClassUid };
    });
  });
  return { studyInstanceUid: studyUid, instances };
}

/** The five kinds of study the tests and demos use, for patient/test number `n`. */
export const STUDY_KINDS = ['CT', 'MR', 'PT+CT', 'CT+SR', 'MR+PDF'] as const;
export type StudyKind = (typeof STUDY_KINDS)[number];

export function presetStudy(kind: StudyKind, n: number, instances = 3, overrides: Partial<StudySpec> = {}): StudySpec {
  const base = {
    seed: `study-${n}-${kind.replace('+', '-')}`, nhsNumber: testNhsNumber(n), accessionNumber: `ACC${String(n).padStart(6, '0')}`,
    referringPhysician: 'Referrer^Rachel^^Dr', patientName: `Synthetic^Patient${n}`,
  };
  const by: Record<StudyKind, Omit<StudySpec, 'seed'>> = {
    CT: { description: 'CT Chest', procedureCode: { value: 'CCHEC', scheme: '99NICIP', meaning: 'CT Chest with contrast' },
      series: [{ modality: 'CT', instances, description: 'Axial 1mm', bodyPart: 'CHEST' }] },
    MR: { description: 'MRI Knee', procedureCode: { value: 'MKNEL', scheme: '99NICIP', meaning: 'MRI Knee Left' },
      series: [{ modality: 'MR', instances, description: 'PD FS sag', bodyPart: 'KNEE', laterality: 'L' },
        { modality: 'MR', instances, description: 'T1 cor', bodyPart: 'KNEE', laterality: 'L' }] },
    'PT+CT': { description: 'PET-CT whole body', procedureCode: { value: '82918005', scheme: 'SCT', meaning: 'PET/CT scan' },
      series: [{ modality: 'CT', instances, description: 'CT AC', bodyPart: 'WHOLEBODY' }, { modality: 'PT', instances, description: 'PET AC', bodyPart: 'WHOLEBODY' }] },
    'CT+SR': { description: 'CT Head', series: [{ modality: 'CT', instances, bodyPart: 'HEAD' },
      { modality: 'SR', kind: 'sr', completionFlag: 'COMPLETE', verificationFlag: 'VERIFIED', description: 'Radiology report' }] },
    'MR+PDF': { description: 'MRI Lumbar spine', series: [{ modality: 'MR', instances, bodyPart: 'LSPINE' },
      { modality: 'DOC', kind: 'pdf', description: 'Scanned report' }] },
  };
  return { ...base, ...by[kind], ...overrides };
}

export async function writeInstances(outDir: string, instances: GeneratedInstance[]): Promise<string[]> {
  const written: string[] = [];
  for (const inst of instances) {
    const file = path.join(outDir, inst.relativePath);
    await mkdir(path.dirname(file), { recursive: true });
    await writeFile(file, inst.bytes);
    written.push(file);
  }
  return written;
}

/**
 * A preset study with `total` instances in all: one per report series (SR, PDF), the rest shared
 * out over its image series (the first ones take any remainder).
 */
export function presetStudyOfSize(kind: StudyKind, n: number, total: number, overrides: Partial<StudySpec> = {}): StudySpec {
  const spec = presetStudy(kind, n, 1, overrides);
  const images = spec.series.filter((s) => s.kind !== 'sr' && s.kind !== 'pdf');
  const imageInstances = Math.max(images.length, total - (spec.series.length - images.length));
  images.forEach((s, k) => {
    s.instances = Math.floor(imageInstances / images.length) + (k < imageInstances % images.length ? 1 : 0);
  });
  return spec;
}

/** Writes `studies` studies cycling through STUDY_KINDS, `instances` instances each; returns the study UIDs. */
export async function generateDicomFolder(outDir: string, studies: number, instances: number, firstPatient = 1): Promise<string[]> {
  const uids: string[] = [];
  for (let i = 0; i < studies; i++) {
    const kind = STUDY_KINDS[i % STUDY_KINDS.length]!;
    const study = generateStudy(presetStudyOfSize(kind, firstPatient + i, instances));
    await writeInstances(outDir, study.instances);
    uids.push(study.studyInstanceUid);
  }
  return uids;
}

async function main(argv: string[]): Promise<void> {
  const arg = (name: string, fallback?: string): string | undefined => {
    const i = argv.indexOf(`--${name}`);
    return i >= 0 ? argv[i + 1] : fallback;
  };
  const out = arg('out');
  const studies = Number(arg('studies', '5'));
  const instances = Number(arg('instances', '3'));
  if (!out || !Number.isInteger(studies) || studies < 1 || !Number.isInteger(instances) || instances < 1) {
    process.stderr.write('usage: npx tsx test-data/generate-dicom.ts --out DIR [--studies N] [--instances M]\n');
    process.exitCode = 2;
    return;
  }
  const uids = await generateDicomFolder(out, studies, instances);
  process.stdout.write(`wrote ${uids.length} studies to ${out}\n`);
}

if (require.main === module) void main(process.argv.slice(2));
