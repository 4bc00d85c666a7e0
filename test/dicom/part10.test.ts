import { mkdtemp, writeFile, rm } from 'node:fs/promises';
import os from 'node:os';
import path from 'node:path';
import { StudyCollector, TAG, getPersonName, getString, parsePart10, readPart10Header } from '../../src/dicom';
import { generateStudy, presetStudy, writePart10, SOP_CLASS } from '../../test-data/generate-dicom';

describe('Part 10 header reading (dcmjs)', () => {
  let dir: string;
  beforeAll(async () => { dir = await mkdtemp(path.join(os.tmpdir(), 'locus-part10-')); });
  afterAll(async () => { await rm(dir, { recursive: true, force: true }); });

  it('when a file is ISO_IR 100 (Latin-1), then accented names decode correctly', () => {
    const bytes = writePart10({
      SpecificCharacterSet: 'ISO_IR 100', SOPClassUID: SOP_CLASS.CT, SOPInstanceUID: '1.2.3.1', StudyInstanceUID: '1.2.3',
      SeriesInstanceUID: '1.2.3.4', Modality: 'CT', PatientName: 'Müller^Zoë', StudyDescription: 'Tête',
    });
    // The name is really stored as Latin-1 bytes (ü = 0xFC), not UTF-8.
    expect(bytes.includes(Buffer.from('Müller^Zoë', 'latin1'))).toBe(true);
    expect(bytes.includes(Buffer.from('Müller', 'utf8'))).toBe(false);
    const { dataset } = parsePart10(bytes);
    expect(getPersonName(dataset, TAG.PatientName)).toBe('Müller^Zoë');
    expect(getString(dataset, TAG.StudyDescription)).toBe('Tête');
  });

  it('when a file is ISO_IR 192 (UTF-8), then accented names decode correctly', () => {
    const bytes = writePart10({
      SpecificCharacterSet: 'ISO_IR 192', SOPClassUID: SOP_CLASS.CT, SOPInstanceUID: '1.2.3.1', StudyInstanceUID: '1.2.3',
      SeriesInstanceUID: '1.2.3.4', Modality: 'CT', PatientName: 'Ó Súilleabháin^Siobhán', StudyDescription: 'Épaule',
    });
    expect(bytes.includes(Buffer.from('Súilleabháin', 'utf8'))).toBe(true);
    const { dataset } = parsePart10(bytes);
    expect(getPersonName(dataset, TAG.PatientName)).toBe('Ó Súilleabháin^Siobhán');
    expect(getString(dataset, TAG.StudyDescription)).toBe('Épaule');
  });

  it('when the header is parsed, then pixel data is not returned', () => {
    const [inst] = generateStudy(presetStudy('CT', 1, 1)).instances;
    const { dataset, reachedPixelData } = parsePart10(inst!.bytes);
    expect(reachedPixelData).toBe(true);
    expect(dataset[TAG.PixelData]).toBeUndefined();
    expect(getString(dataset, TAG.SOPInstanceUID)).toBe(inst!.sopInstanceUid);
  });

  it('when a large file has its pixel data cut off, then its header still reads (pixel data is never parsed)', async () => {
    const bytes = writePart10({
      SpecificCharacterSet: 'ISO_IR 192', SOPClassUID: SOP_CLASS.CT, SOPInstanceUID: '1.2.3.1', StudyInstanceUID: '1.2.3',
      SeriesInstanceUID: '1.2.3.4', Modality: 'CT', Rows: 512, Columns: 512, BitsAllocated: 16,
      PixelData: [new Uint16Array(512 * 512).buffer], _vrMap: { PixelData: 'OW' },
    });
    expect(bytes.length).toBeGreaterThan(500_000);
    // Header + PixelData tag + 64 bytes of a 512 KiB value: readable only if the value is skipped.
    const file = path.join(dir, 'big.dcm');
    await writeFile(file, bytes.subarray(0, bytes.indexOf(Buffer.from([0xe0, 0x7f, 0x10, 0x00])) + 64));
    const ds = readPart10Header(file);
    expect(getString(ds, TAG.SOPInstanceUID)).toBe('1.2.3.1');
  });

  it('when a file is not DICOM or is truncated, then reading throws', async () => {
    const junk = path.join(dir, 'junk.dcm');
    await writeFile(junk, 'this is not a DICOM file at all, just text');
    expect(() => readPart10Header(junk)).toThrow();
    const [inst] = generateStudy(presetStudy('CT', 1, 1)).instances;
    const cut = path.join(dir, 'cut.dcm');
    await writeFile(cut, inst!.bytes.subarray(0, 300));
    expect(() => readPart10Header(cut)).toThrow();
  });

  it('when instances of several studies are collected, then they group by study and series', () => {
    const collector = new StudyCollector();
    const a = generateStudy(presetStudy('MR', 1, 2));
    const b = generateStudy(presetStudy('PT+CT', 2, 3));
    for (const inst of [...a.instances, ...b.instances, a.instances[0]!]) expect(collector.add(parsePart10(inst.bytes).dataset)).toBe(true);
    const studies = collector.values();
    expect(studies.map((s) => s.studyInstanceUid).sort()).toEqual([a.studyInstanceUid, b.studyInstanceUid].sort());
    const pet = studies.find((s) => s.studyInstanceUid === b.studyInstanceUid)!;
    expect(pet.series.map((s) => s.modality).sort()).toEqual(['CT', 'PT']);
    expect(pet.series.every((s) => s.instances.length === 3)).toBe(true);
    const mr = studies.find((s) => s.studyInstanceUid === a.studyInstanceUid)!;
    expect(mr.series.reduce((n, s) => n + s.instances.length, 0)).toBe(4); // the duplicate counted once
  });
});
