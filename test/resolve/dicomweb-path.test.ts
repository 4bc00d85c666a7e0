import { DicomWebPathError, parseDicomWebPath } from '../../src/gateway/dicomweb-path';

const S = '1.2.826.0.1.3680043.10.1001.1';
const SE = '1.2.3.4';
const I = '1.2.3.4.5';

describe('DICOMweb gateway paths (PS3.18 WADO-RS and QIDO-RS resources)', () => {
  it.each([
    [`/RRK/studies/${S}`, 'wado', 'study'],
    [`/RRK/studies/${S}/metadata`, 'wado', 'study/metadata'],
    [`/RRK/studies/${S}/rendered`, 'wado', 'study/rendered'],
    [`/RRK/studies/${S}/series`, 'qido', 'study/series'],
    [`/RRK/studies/${S}/instances`, 'qido', 'study/instances'],
    [`/RRK/studies/${S}/series/${SE}`, 'wado', 'study/series'],
    [`/RRK/studies/${S}/series/${SE}/metadata`, 'wado', 'study/series/metadata'],
    [`/RRK/studies/${S}/series/${SE}/instances`, 'qido', 'study/series/instances'],
    [`/RRK/studies/${S}/series/${SE}/instances/${I}`, 'wado', 'study/series/instance'],
    [`/RRK/studies/${S}/series/${SE}/instances/${I}/metadata`, 'wado', 'study/series/instance/metadata'],
    [`/RRK/studies/${S}/series/${SE}/instances/${I}/thumbnail`, 'wado', 'study/series/instance/thumbnail'],
    [`/RRK/studies/${S}/series/${SE}/instances/${I}/frames/1,2,3`, 'wado', 'study/series/instance/frames'],
    [`/RRK/studies/${S}/series/${SE}/instances/${I}/frames/1/rendered`, 'wado', 'study/series/instance/frames/rendered'],
  ])('when %s is asked, then it is %s of %s', (path, kind, resource) => {
    const t = parseDicomWebPath(path, '');
    expect(t).toMatchObject({ custodian: 'RRK', studyUid: S, kind, resource, path: path.slice(4) });
  });

  it('when a study-level search names one StudyInstanceUID (keyword or tag), then it is the bound study', () => {
    expect(parseDicomWebPath('/RRK/studies', `StudyInstanceUID=${S}&includefield=all`)).toMatchObject({ kind: 'qido', studyUid: S, path: '/studies', query: `StudyInstanceUID=${S}&includefield=all` });
    expect(parseDicomWebPath('/RRK/studies', `0020000D=${S}`)).toMatchObject({ studyUid: S });
  });

  it.each([
    ['/rrk/studies/1.2', '', /ODS/],
    ['/RRK/series/1.2', '', /only \/studies/],
    ['/RRK/studies', '', /exactly one StudyInstanceUID/],
    ['/RRK/studies', `StudyInstanceUID=${S}&0020000D=1.2`, /exactly one/],
    ['/RRK/studies', 'StudyInstanceUID=1.2*', /not a valid DICOM UID/],
    [`/RRK/studies/${S}`, 'StudyInstanceUID=1.2', /must be the study in the path/],
    [`/RRK/studies/${S}`, 'bad%20key=1', /not a DICOMweb parameter/],
    ['/RRK/studies/01.2', '', /not a valid DICOM UID/],
    [`/RRK/studies/${S}/..`, '', /not a DICOMweb resource/],
    [`/RRK/studies/${S}/metadata/x`, '', /not a DICOMweb resource/],
    [`/RRK/studies/${S}/bulkdata/1`, '', /not a DICOMweb resource/],
    [`/RRK/studies/${S}/frames/1`, '', /not a DICOMweb resource/],
    [`/RRK/studies/${S}/series/${SE}/instances/${I}/frames/0`, '', /frame numbers/],
    [`/RRK/studies/${S}/series/${SE}/instances/${I}/frames/1/x`, '', /nothing may follow/],
    [`/RRK/studies/${S}/series/${SE}/series/${SE}`, '', /not a DICOMweb resource/],
    [`/RRK/studies/${'1.'.repeat(600)}1`, '', /too long/],
  ])('when %s?%s is asked, then it is refused', (path, query, message) => {
    expect(() => parseDicomWebPath(path, query)).toThrow(DicomWebPathError);
    expect(() => parseDicomWebPath(path, query)).toThrow(message);
  });
});
