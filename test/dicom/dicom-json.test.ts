import { dicomJsonArraySchema, instanceFromDataset, seriesFromDataset, studyFromDataset } from '../../src/dicom';

// A QIDO-RS study result as PS3.18 §F.2 encodes it: PN as objects, IS as numbers, CS multi-valued.
const qidoStudy = {
  '00080020': { vr: 'DA', Value: ['20240131'] },
  '00080030': { vr: 'TM', Value: ['093000'] },
  '00080050': { vr: 'SH', Value: ['ACC9'] },
  '00080061': { vr: 'CS', Value: ['CT', 'PT'] },
  '00080090': { vr: 'PN', Value: [{ Alphabetic: 'Referrer^Rachel' }] },
  '00081030': { vr: 'LO', Value: ['PET-CT '] },
  '00100010': { vr: 'PN', Value: [{ Alphabetic: 'Secret^Name' }] },
  '00100020': { vr: 'LO', Value: ['9990000018'] },
  '0020000D': { vr: 'UI', Value: ['1.2.3'] },
  '00201206': { vr: 'IS', Value: [2] },
  '00201208': { vr: 'IS', Value: ['10'] },
  '00080201': { vr: 'SH' },
};

describe('DICOM JSON (QIDO-RS) → model', () => {
  it('when a QIDO study result is read, then values are trimmed, typed and multi-valued CS kept', () => {
    const [ds] = dicomJsonArraySchema.parse([qidoStudy]);
    expect(studyFromDataset(ds!)).toEqual({
      studyInstanceUid: '1.2.3', accessionNumber: 'ACC9', studyDate: '20240131', studyTime: '093000',
      modalitiesInStudy: ['CT', 'PT'], description: 'PET-CT', numberOfSeries: 2, numberOfInstances: 10,
      patient: { id: '9990000018', otherIds: [] }, referringPhysicianName: 'Referrer^Rachel', procedureCodes: [],
    });
  });

  it('when series and instance results are read, then their attributes are extracted', () => {
    expect(seriesFromDataset({ '0020000E': { vr: 'UI', Value: ['1.2.3.4'] }, '00080060': { vr: 'CS', Value: ['ct'] }, '00200011': { vr: 'IS', Value: [3] }, '00180015': { vr: 'CS', Value: ['chest'] } }))
      .toEqual({ seriesInstanceUid: '1.2.3.4', modality: 'CT', seriesNumber: 3, bodyPartExamined: 'CHEST' });
    expect(instanceFromDataset({ '00080018': { vr: 'UI', Value: ['1.2.3.4.5'] }, '00080016': { vr: 'UI', Value: ['1.2.840.10008.5.1.4.1.1.88.11'] }, '0040A491': { vr: 'CS', Value: ['COMPLETE'] }, '0040A493': { vr: 'CS', Value: ['VERIFIED'] } }))
      .toEqual({ sopInstanceUid: '1.2.3.4.5', sopClassUid: '1.2.840.10008.5.1.4.1.1.88.11', completionFlag: 'COMPLETE', verificationFlag: 'VERIFIED' });
    expect(instanceFromDataset({ '00080018': { vr: 'UI', Value: ['1.2.3.4.5'] } })).toBeUndefined();
  });

  it('when a PACS answers with something that is not DICOM JSON, then validation rejects it', () => {
    expect(dicomJsonArraySchema.safeParse([{ StudyInstanceUID: '1.2.3' }]).success).toBe(false);
    expect(dicomJsonArraySchema.safeParse({ '0020000D': {} }).success).toBe(false);
  });
});
