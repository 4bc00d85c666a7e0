import { toFhirDateTime, toFhirInstant } from '../../src/dicom';

describe('DICOM date/time → FHIR dateTime', () => {
  it('when only a date is present, then the date is emitted without a time', () => {
    expect(toFhirDateTime({ date: '20240131' })).toBe('2024-01-31');
  });
  it('when the date is partial (YYYY or YYYYMM), then the partial date is emitted and the time dropped', () => {
    expect(toFhirDateTime({ date: '2024', time: '101500' })).toBe('2024');
    expect(toFhirDateTime({ date: '202403', time: '101500' })).toBe('2024-03');
  });
  it('when TimezoneOffsetFromUTC is present, then it is the offset', () => {
    expect(toFhirDateTime({ date: '20240131', time: '101530.25', timezoneOffset: '-0500' })).toBe('2024-01-31T10:15:30.25-05:00');
    expect(toFhirDateTime({ date: '20240701', time: '0915', timezoneOffset: '+0530' })).toBe('2024-07-01T09:15:00+05:30');
  });
  it('when there is no offset, then the time is Europe/London local time (GMT in winter, BST in summer)', () => {
    expect(toFhirDateTime({ date: '20240131', time: '10' })).toBe('2024-01-31T10:00:00+00:00');
    expect(toFhirDateTime({ date: '20240701', time: '101530' })).toBe('2024-07-01T10:15:30+01:00');
  });
  it('when the clocks change, then each side of the change gets its own offset', () => {
    // 31 March 2024: 01:00 GMT → 02:00 BST; 27 October 2024: 02:00 BST → 01:00 GMT.
    expect(toFhirDateTime({ date: '20240331', time: '003000' })).toBe('2024-03-31T00:30:00+00:00');
    expect(toFhirDateTime({ date: '20240331', time: '030000' })).toBe('2024-03-31T03:00:00+01:00');
    expect(toFhirDateTime({ date: '20241027', time: '003000' })).toBe('2024-10-27T00:30:00+01:00');
    expect(toFhirDateTime({ date: '20241027', time: '023000' })).toBe('2024-10-27T02:30:00+00:00');
  });
  it('when another zone is configured, then it is used for offset-less times', () => {
    expect(toFhirDateTime({ date: '20240701', time: '120000', timeZone: 'America/New_York' })).toBe('2024-07-01T12:00:00-04:00');
  });
  it('when the ACR-NEMA colon time form is used, then it is understood', () => {
    expect(toFhirDateTime({ date: '2024.01.31', time: '10:15:30', timezoneOffset: '+0000' })).toBe('2024-01-31T10:15:30+00:00');
  });
  it('when values are malformed, then no date (or no time) is invented', () => {
    expect(toFhirDateTime({ date: '20241345' })).toBeUndefined();
    expect(toFhirDateTime({ date: '20240230' })).toBeUndefined();
    expect(toFhirDateTime({ date: 'yesterday' })).toBeUndefined();
    expect(toFhirDateTime({ date: '20240131', time: '256000' })).toBe('2024-01-31');
    expect(toFhirDateTime({ date: '20240131', time: '1000', timezoneOffset: '+9900' })).toBe('2024-01-31T10:00:00+00:00');
  });
  it('when converting to an instant, then dates become the start of the day in London', () => {
    expect(toFhirInstant('2024-07-01')).toBe('2024-07-01T00:00:00+01:00');
    expect(toFhirInstant('2024')).toBe('2024-01-01T00:00:00+00:00');
    expect(toFhirInstant('2024-07-01T10:15:30+01:00')).toBe('2024-07-01T10:15:30+01:00');
  });
});
