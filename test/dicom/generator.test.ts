import { STUDY_KINDS, generateStudy, presetStudyOfSize } from '../../test-data/generate-dicom';

describe('the DICOM test-data generator', () => {
  it('when a study of N instances is asked for, then every kind has exactly N, reports included, in series that each hold one or more', () => {
    for (const kind of STUDY_KINDS) {
      for (const total of [3, 10, 11]) {
        const spec = presetStudyOfSize(kind, 1, total);
        expect([kind, total, generateStudy(spec).instances.length]).toEqual([kind, total, total]);
        for (const s of spec.series) expect(s.kind === 'sr' || s.kind === 'pdf' || (s.instances ?? 0) >= 1).toBe(true);
      }
    }
  });
});
