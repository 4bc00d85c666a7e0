import type { DicomStudy, MapOptions } from '../../src/dicom';
import { testNhsNumber } from '../../src/registry/nhs-number';

export const NHS = testNhsNumber(1);

/** A minimal valid study: one CT series with two instances. */
export function aStudy(overrides: Partial<DicomStudy> = {}): DicomStudy {
  return {
    studyInstanceUid: '1.2.826.0.1.1',
    modalitiesInStudy: [],
    patient: { id: NHS, otherIds: [] },
    procedureCodes: [],
    series: [{
      seriesInstanceUid: '1.2.826.0.1.1.1', seriesNumber: 1, modality: 'CT',
      instances: [
        { sopInstanceUid: '1.2.826.0.1.1.1.2', sopClassUid: '1.2.840.10008.5.1.4.1.1.2', instanceNumber: 2 },
        { sopInstanceUid: '1.2.826.0.1.1.1.1', sopClassUid: '1.2.840.10008.5.1.4.1.1.2', instanceNumber: 1 },
      ],
    }],
    ...overrides,
  };
}

export const OPTIONS: MapOptions = {
  custodianOds: 'RRK',
  wadoBaseUrl: 'https://pacs.rrk.example/dicom-web/',
  endpointReference: 'Endpoint/rrk-wado',
  patientIdentity: { source: 'PatientID' },
  now: () => new Date('2025-01-01T00:00:00.000Z'),
};
