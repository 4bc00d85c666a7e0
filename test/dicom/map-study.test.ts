import { mapStudy, StudyCollector, parsePart10, type MapResult, type MappedStudy } from '../../src/dicom';
import { generateStudy, presetStudy } from '../../test-data/generate-dicom';
import { testNhsNumber } from '../../src/registry/nhs-number';
import { NHS, OPTIONS, aStudy } from './fixtures';

function mapped(result: MapResult): MappedStudy {
  if ('skipped' in result) throw new Error(`unexpected skip: ${result.skipped}`);
  return result;
}

describe('mapStudy: ImagingStudy', () => {
  it('when a full study is mapped, then the ImagingStudy has the exact pointer shape', () => {
    const { imagingStudy } = mapped(mapStudy(aStudy({
      accessionNumber: 'ACC1', studyDate: '20240701', studyTime: '101530', description: 'CT Chest',
      referringPhysicianName: 'Referrer^Rachel^^Dr', numberOfSeries: 1, numberOfInstances: 2,
      procedureCodes: [{ codeValue: 'CCHEC', codingSchemeDesignator: '99NICIP', codeMeaning: 'CT Chest with contrast' }],
      series: [{ ...aStudy().series[0]!, description: 'Axial', bodyPartExamined: 'CHEST', laterality: 'R' }],
    }), OPTIONS));
    expect(imagingStudy).toEqual({
      resourceType: 'ImagingStudy',
      identifier: [
        { system: 'urn:dicom:uid', value: 'urn:oid:1.2.826.0.1.1' },
        {
          type: { coding: [{ system: 'http://terminology.hl7.org/CodeSystem/v2-0203', code: 'ACSN' }] },
          value: 'ACC1',
          assigner: { identifier: { system: 'https://fhir.nhs.uk/Id/ods-organization-code', value: 'RRK' } },
        },
      ],
      status: 'available',
      modality: [{ system: 'http://dicom.nema.org/resources/ontology/DCM', code: 'CT' }],
      subject: { identifier: { system: 'https://fhir.nhs.uk/Id/nhs-number', value: NHS } },
      started: '2024-07-01T10:15:30+01:00',
      referrer: { display: 'Dr Rachel Referrer' },
      endpoint: [{ reference: 'Endpoint/rrk-wado' }],
      numberOfSeries: 1,
      numberOfInstances: 2,
      procedureCode: [{ coding: [{ system: 'https://nicip.nhs.uk', code: 'CCHEC', display: 'CT Chest with contrast' }] }],
      description: 'CT Chest',
      series: [{
        uid: '1.2.826.0.1.1.1', number: 1,
        modality: { system: 'http://dicom.nema.org/resources/ontology/DCM', code: 'CT' },
        description: 'Axial', numberOfInstances: 2,
        bodySite: { system: 'http://snomed.info/sct', code: '43799004', display: 'Chest' },
        laterality: { system: 'http://snomed.info/sct', code: '24028007', display: 'Right' },
        instance: [
          { uid: '1.2.826.0.1.1.1.1', sopClass: { system: 'urn:ietf:rfc:3986', code: 'urn:oid:1.2.840.10008.5.1.4.1.1.2' }, number: 1 },
          { uid: '1.2.826.0.1.1.1.2', sopClass: { system: 'urn:ietf:rfc:3986', code: 'urn:oid:1.2.840.10008.5.1.4.1.1.2' }, number: 2 },
        ],
      }],
    });
  });

  it('when optional attributes are missing, then their elements are absent (no empty values)', () => {
    const { imagingStudy, documentReferences } = mapped(mapStudy(aStudy(), OPTIONS));
    for (const key of ['started', 'referrer', 'procedureCode', 'description']) expect(imagingStudy).not.toHaveProperty(key);
    expect(imagingStudy.identifier).toHaveLength(1);
    expect(imagingStudy.series[0]).not.toHaveProperty('bodySite');
    expect(imagingStudy.series[0]).not.toHaveProperty('laterality');
    expect(documentReferences[0]!.context).not.toHaveProperty('period');
    expect(documentReferences[0]!.date).toBe('2025-01-01T00:00:00.000Z'); // no study date: the clock
  });

  it('when ModalitiesInStudy is multi-valued, then every acquisition modality is listed and SR left out', () => {
    const { imagingStudy } = mapped(mapStudy(aStudy({ modalitiesInStudy: ['PT', 'CT', 'SR'] }), OPTIONS));
    expect(imagingStudy.modality.map((c) => c.code)).toEqual(['CT', 'PT']);
  });

  it('when ModalitiesInStudy is absent, then the union of series modalities is used', () => {
    const base = aStudy().series[0]!;
    const { imagingStudy } = mapped(mapStudy(aStudy({
      series: [base, { ...base, seriesInstanceUid: '1.2.826.0.1.1.2', seriesNumber: 2, modality: 'PT' }, { ...base, seriesInstanceUid: '1.2.826.0.1.1.3', seriesNumber: 3, modality: 'CT' }],
    }), OPTIONS));
    expect(imagingStudy.modality.map((c) => c.code)).toEqual(['CT', 'PT']);
    expect(imagingStudy.numberOfSeries).toBe(3);
    expect(imagingStudy.numberOfInstances).toBe(6);
  });

  it('when a study holds only reports, then its modality is the report series modality (SR/DOC)', () => {
    const base = aStudy().series[0]!;
    const { imagingStudy } = mapped(mapStudy(aStudy({
      series: [{ ...base, modality: 'SR', instances: [{ sopInstanceUid: '1.2.3.9', sopClassUid: '1.2.840.10008.5.1.4.1.1.88.11' }] }],
    }), OPTIONS));
    expect(imagingStudy.modality).toEqual([{ system: 'http://dicom.nema.org/resources/ontology/DCM', code: 'SR' }]);
  });

  it('when a series modality is missing or unknown, then the series says OT', () => {
    const base = aStudy().series[0]!;
    const { imagingStudy } = mapped(mapStudy(aStudy({ series: [{ ...base, modality: 'XYZ' }] }), OPTIONS));
    expect(imagingStudy.series[0]!.modality.code).toBe('OT');
    expect(imagingStudy.modality.map((c) => c.code)).toEqual(['OT']);
  });

  it('when the procedure code is SNOMED CT, then it maps; SNOMED RT and local codes are dropped', () => {
    const { imagingStudy, documentReferences } = mapped(mapStudy(aStudy({
      procedureCodes: [
        { codeValue: 'P5-0800', codingSchemeDesignator: 'SRT' },
        { codeValue: 'LOCAL1', codingSchemeDesignator: '99RRK' },
        { codeValue: '82918005', codingSchemeDesignator: 'SCT', codeMeaning: 'PET/CT scan' },
      ],
    }), OPTIONS));
    expect(imagingStudy.procedureCode).toEqual([{ coding: [{ system: 'http://snomed.info/sct', code: '82918005', display: 'PET/CT scan' }] }]);
    expect(documentReferences[0]!.type).toEqual({ coding: [{ system: 'http://snomed.info/sct', code: '82918005', display: 'PET/CT scan' }] });
  });

  it.each([
    ['HEAD', '69536005'], ['ABDOMEN', '818981001'], ['PELVIS', '816092008'], ['KNEE', '72696002'], ['SPINE', '421060004'],
    ['BREAST', '76752008'], ['LSPINE', '122496007'], ['chest', '43799004'],
  ])('when BodyPartExamined is %s, then bodySite is SNOMED %s (PS3.16 Annex L)', (term, code) => {
    const base = aStudy().series[0]!;
    const { imagingStudy } = mapped(mapStudy(aStudy({ series: [{ ...base, bodyPartExamined: term, laterality: 'L' }] }), OPTIONS));
    expect(imagingStudy.series[0]!.bodySite?.code).toBe(code);
    expect(imagingStudy.series[0]!.laterality?.code).toBe('7771000');
  });
});

describe('mapStudy: patient identity', () => {
  it('when PatientID is not a valid NHS number, then the study is skipped without echoing the value', () => {
    const result = mapStudy(aStudy({ patient: { id: '9990000019', otherIds: [] } }), OPTIONS);
    expect(result).toEqual({ skipped: 'invalid-nhs-number', detail: expect.not.stringContaining('9990000019') });
  });

  it('when PatientID is empty, then the study is skipped', () => {
    expect(mapStudy(aStudy({ patient: { otherIds: [] } }), OPTIONS)).toMatchObject({ skipped: 'no-patient-id' });
  });

  it('when the NHS number is formatted with spaces, then it is normalised', () => {
    const spaced = `${NHS.slice(0, 3)} ${NHS.slice(3, 6)} ${NHS.slice(6)}`;
    const { imagingStudy } = mapped(mapStudy(aStudy({ patient: { id: spaced, otherIds: [] } }), OPTIONS));
    expect(imagingStudy.subject.identifier.value).toBe(NHS);
  });

  it('when an issuer is required, then PatientID counts only with that IssuerOfPatientID', () => {
    const opts = { ...OPTIONS, patientIdentity: { source: 'PatientID' as const, issuer: 'NHS' } };
    expect(mapStudy(aStudy({ patient: { id: NHS, issuer: 'RRK-MRN', otherIds: [] } }), opts)).toMatchObject({ skipped: 'issuer-mismatch' });
    expect(mapStudy(aStudy({ patient: { id: NHS, otherIds: [] } }), opts)).toMatchObject({ skipped: 'issuer-mismatch' });
    expect(mapped(mapStudy(aStudy({ patient: { id: NHS, issuer: 'NHS', otherIds: [] } }), opts)).imagingStudy.subject.identifier.value).toBe(NHS);
  });

  it('when the NHS number is in OtherPatientIDsSequence, then the item with the configured issuer is used', () => {
    const opts = { ...OPTIONS, patientIdentity: { source: 'OtherPatientIDsSequence' as const, issuer: 'NHS' } };
    const other = testNhsNumber(42);
    const patient = { id: 'MRN12345', issuer: 'RRK', otherIds: [{ id: 'X1', issuer: 'OTHER' }, { id: other, issuer: 'NHS' }] };
    expect(mapped(mapStudy(aStudy({ patient }), opts)).imagingStudy.subject.identifier.value).toBe(other);
    expect(mapStudy(aStudy({ patient: { ...patient, otherIds: [{ id: other, issuer: 'OTHER' }] } }), opts)).toMatchObject({ skipped: 'no-patient-id' });
    expect(mapStudy(aStudy({ patient: { ...patient, otherIds: [{ id: other, issuer: 'NHS' }, { id: NHS, issuer: 'NHS' }] } }), opts))
      .toMatchObject({ skipped: 'conflicting-nhs-numbers' });
  });

  it('when a UID is malformed, then the study is skipped', () => {
    expect(mapStudy(aStudy({ studyInstanceUid: '1.02.3' }), OPTIONS)).toMatchObject({ skipped: 'invalid-uid' });
  });

  it('when a study has no instances, then it is skipped', () => {
    expect(mapStudy(aStudy({ series: [] }), OPTIONS)).toMatchObject({ skipped: 'no-instances' });
  });
});

describe('mapStudy: DocumentReferences', () => {
  it('when a study is mapped, then the study DocumentReference has the exact pointer shape', () => {
    const [doc] = mapped(mapStudy(aStudy({ studyDate: '20240131', studyTime: '0930' }), OPTIONS)).documentReferences;
    expect(doc).toEqual({
      resourceType: 'DocumentReference',
      masterIdentifier: { system: 'urn:ietf:rfc:3986', value: 'urn:oid:1.2.826.0.1.1' },
      status: 'current',
      type: { coding: [{ system: 'http://snomed.info/sct', code: '363679005', display: 'Imaging' }] },
      category: [{ coding: [{ system: 'http://snomed.info/sct', code: '103693007', display: 'Diagnostic procedure' }] }],
      subject: { identifier: { system: 'https://fhir.nhs.uk/Id/nhs-number', value: NHS } },
      date: '2024-01-31T09:30:00+00:00',
      author: [{ identifier: { system: 'https://fhir.nhs.uk/Id/ods-organization-code', value: 'RRK' } }],
      custodian: { identifier: { system: 'https://fhir.nhs.uk/Id/ods-organization-code', value: 'RRK' } },
      content: [{ attachment: { contentType: 'application/dicom', url: 'https://pacs.rrk.example/dicom-web/studies/1.2.826.0.1.1' } }],
      context: {
        period: { start: '2024-01-31T09:30:00+00:00' },
        practiceSetting: { coding: [{ system: 'http://snomed.info/sct', code: '708175003', display: 'Diagnostic imaging service' }] },
        related: [{ identifier: { system: 'urn:dicom:uid', value: 'urn:oid:1.2.826.0.1.1' } }],
      },
    });
  });

  it('when a study has SR and PDF reports, then each gets a report DocumentReference with its status', () => {
    const base = aStudy().series[0]!;
    const sr = (uid: string, completionFlag?: string, verificationFlag?: string) => ({
      sopInstanceUid: uid, sopClassUid: '1.2.840.10008.5.1.4.1.1.88.11', completionFlag, verificationFlag, contentDate: '20240202', contentTime: '1400',
    });
    const result = mapped(mapStudy(aStudy({
      studyDate: '20240131',
      series: [base,
        { seriesInstanceUid: '1.2.826.0.1.1.2', seriesNumber: 2, modality: 'SR', instances: [sr('1.2.826.0.1.1.2.1', 'COMPLETE', 'VERIFIED'), sr('1.2.826.0.1.1.2.2', 'COMPLETE', 'UNVERIFIED'), sr('1.2.826.0.1.1.2.3', 'PARTIAL')] },
        { seriesInstanceUid: '1.2.826.0.1.1.3', seriesNumber: 3, modality: 'DOC', instances: [{ sopInstanceUid: '1.2.826.0.1.1.3.1', sopClassUid: '1.2.840.10008.5.1.4.1.1.104.1' }] }],
    }), OPTIONS));
    const reports = result.documentReferences.slice(1);
    expect(result.documentReferences).toHaveLength(5);
    expect(reports.map((d) => d.docStatus)).toEqual(['final', 'preliminary', 'preliminary', 'preliminary']);
    expect(reports[0]).toMatchObject({
      masterIdentifier: { system: 'urn:ietf:rfc:3986', value: 'urn:oid:1.2.826.0.1.1.2.1' },
      category: [{ coding: [{ system: 'http://snomed.info/sct', code: '721981007', display: 'Diagnostic studies report' }] }],
      content: [{ attachment: { contentType: 'application/dicom', url: 'https://pacs.rrk.example/dicom-web/studies/1.2.826.0.1.1/series/1.2.826.0.1.1.2/instances/1.2.826.0.1.1.2.1' } }],
      context: { related: [{ identifier: { system: 'urn:dicom:uid', value: 'urn:oid:1.2.826.0.1.1' } }] },
      date: '2024-02-02T14:00:00+00:00',
    });
    expect(reports[3]!.date).toBe('2024-01-31T00:00:00+00:00'); // the PDF has no content date: the study's
  });
});

describe('mapStudy from generated Part 10 files', () => {
  it('when a generated PT+CT study is read and mapped, then the pointers reflect the files', () => {
    const study = generateStudy(presetStudy('PT+CT', 7, 2, { charset: 'ISO_IR 100', patientName: 'Müller^Zoë' }));
    const collector = new StudyCollector();
    for (const inst of study.instances) collector.add(parsePart10(inst.bytes).dataset);
    const { imagingStudy, documentReferences } = mapped(mapStudy(collector.values()[0]!, OPTIONS));
    expect(imagingStudy.modality.map((c) => c.code)).toEqual(['CT', 'PT']);
    expect(imagingStudy.numberOfSeries).toBe(2);
    expect(imagingStudy.numberOfInstances).toBe(4);
    expect(imagingStudy.subject.identifier.value).toBe(testNhsNumber(7));
    expect(imagingStudy.procedureCode?.[0]?.coding?.[0]?.system).toBe('http://snomed.info/sct');
    expect(documentReferences).toHaveLength(1);
    expect(JSON.stringify({ imagingStudy, documentReferences })).not.toContain('Müller'); // the patient's name never enters a pointer
  });
});
