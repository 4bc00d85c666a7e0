/**
 * DICOM dates and times → FHIR dateTime / instant.
 *
 * DICOM: DA is YYYYMMDD (PS3.5 §6.2; older "YYYY.MM.DD" tolerated; partial YYYY / YYYYMM accepted
 * because some archives send them), TM is HH[MM[SS[.F{1,6}]]], and TimezoneOffsetFromUTC
 * (0008,0201) "+HHMM"/"-HHMM" applies to every date and time in the dataset (PS3.3 C.12.1.1.8).
 *
 * FHIR R4 dateTime (§2.24.0.3): a time requires a timezone offset, and seconds. So:
 * - a partial date (YYYY, YYYY-MM) is emitted alone, without a time;
 * - a full date without a time is emitted as a date;
 * - a date and time with an offset is emitted with that offset;
 * - a date and time without an offset is taken as local time in `timeZone` (default
 *   Europe/London, which is what a UK PACS records), converted with the IANA rules in force on
 *   that date (GMT/BST). In the repeated hour when clocks go back the later (GMT) reading wins.
 */
export const DEFAULT_TIME_ZONE = 'Europe/London';

interface DicomDate { year: number; month?: number; day?: number }
interface DicomTime { hour: number; minute: number; second: number; fraction?: string }

export function parseDicomDate(da: string | undefined): DicomDate | undefined {
  if (!da) return undefined;
  const m = /^(\d{4})(?:\.?(\d{2})(?:\.?(\d{2}))?)?$/.exec(da.trim());
  if (!m) return undefined;
  const year = Number(m[1]);
  const month = m[2] === undefined ? undefined : Number(m[2]);
  const day = m[3] === undefined ? undefined : Number(m[3]);
  if (year < 1) return undefined;
  if (month !== undefined && (month < 1 || month > 12)) return undefined;
  if (day !== undefined) {
    const daysInMonth = new Date(Date.UTC(year, month!, 0)).getUTCDate();
    if (day < 1 || day > daysInMonth) return undefined;
  }
  return { year, month, day };
}

export function parseDicomTime(tm: string | undefined): DicomTime | undefined {
  if (!tm) return undefined;
  // ACR-NEMA "HH:MM:SS" is still sent by some equipment (PS3.5 §6.2 note).
  const m = /^(\d{2})(?::?(\d{2})(?::?(\d{2})(?:\.(\d{1,6}))?)?)?$/.exec(tm.trim());
  if (!m) return undefined;
  const hour = Number(m[1]);
  const minute = m[2] === undefined ? 0 : Number(m[2]);
  // DICOM allows second 60 (leap second); FHIR's regex allows it too.
  const second = m[3] === undefined ? 0 : Number(m[3]);
  if (hour > 23 || minute > 59 || second > 60) return undefined;
  return { hour, minute, second, fraction: m[4] };
}

/** "+0100" → 60; undefined when absent or malformed (PS3.3 C.12.1.1.8: -1200..+1400). */
export function parseTimezoneOffset(offset: string | undefined): number | undefined {
  const m = offset ? /^([+-])(\d{2})(\d{2})$/.exec(offset.trim()) : null;
  if (!m) return undefined;
  const minutes = Number(m[2]) * 60 + Number(m[3]);
  if (Number(m[3]) > 59) return undefined;
  const signed = m[1] === '-' ? -minutes : minutes;
  return signed < -12 * 60 || signed > 14 * 60 ? undefined : signed;
}

const pad = (n: number, width = 2): string => String(n).padStart(width, '0');

function formatOffset(minutes: number): string {
  const sign = minutes < 0 ? '-' : '+';
  const abs = Math.abs(minutes);
  return `${sign}${pad(Math.floor(abs / 60))}:${pad(abs % 60)}`;
}

/** The UTC offset (minutes) of `timeZone` at the UTC instant `utcMs`. */
function zoneOffsetAt(utcMs: number, timeZone: string): number {
  const name = new Intl.DateTimeFormat('en-GB', { timeZone, timeZoneName: 'longOffset' })
    .formatToParts(new Date(utcMs))
    .find((p) => p.type === 'timeZoneName')?.value;
  const m = name ? /GMT([+-])(\d{2}):(\d{2})/.exec(name) : null;
  if (!m) return 0; // "GMT" alone means +00:00
  const minutes = Number(m[2]) * 60 + Number(m[3]);
  return m[1] === '-' ? -minutes : minutes;
}

/** The offset to use for a wall-clock reading in `timeZone` (see the module note on ambiguity). */
export function localOffsetMinutes(wallAsUtcMs: number, timeZone: string): number {
  const first = zoneOffsetAt(wallAsUtcMs, timeZone);
  const second = zoneOffsetAt(wallAsUtcMs - first * 60_000, timeZone);
  if (first === second) return first;
  return zoneOffsetAt(wallAsUtcMs - second * 60_000, timeZone) === second ? second : first;
}

export interface DateTimeInput {
  date?: string;
  time?: string;
  timezoneOffset?: string;
  timeZone?: string;
}

/** A FHIR dateTime (possibly a date or partial date only), or undefined when there is no valid date. */
export function toFhirDateTime(input: DateTimeInput): string | undefined {
  const date = parseDicomDate(input.date);
  if (!date) return undefined;
  if (date.month === undefined) return pad(date.year, 4);
  if (date.day === undefined) return `${pad(date.year, 4)}-${pad(date.month)}`;
  const day = `${pad(date.year, 4)}-${pad(date.month)}-${pad(date.day)}`;
  const time = parseDicomTime(input.time);
  if (!time) return day;
  const clock = `${pad(time.hour)}:${pad(time.minute)}:${pad(time.second)}${time.fraction ? `.${time.fraction}` : ''}`;
  let offset = parseTimezoneOffset(input.timezoneOffset);
  if (offset === undefined) {
    const wall = Date.UTC(date.year, date.month - 1, date.day, time.hour, time.minute, Math.min(time.second, 59));
    offset = localOffsetMinutes(wall, input.timeZone ?? DEFAULT_TIME_ZONE);
  }
  return `${day}T${clock}${formatOffset(offset)}`;
}

/**
 * A FHIR instant (§2.24.0.1: full date, time and offset) from a FHIR dateTime produced above.
 * A date or partial date becomes the start of that day/month/year in `timeZone`.
 */
export function toFhirInstant(dateTime: string, timeZone = DEFAULT_TIME_ZONE): string {
  if (dateTime.includes('T')) return dateTime;
  const [y, m = '01', d = '01'] = dateTime.split('-');
  const wall = Date.UTC(Number(y), Number(m) - 1, Number(d));
  return `${y}-${m}-${d}T00:00:00${formatOffset(localOffsetMinutes(wall, timeZone))}`;
}
