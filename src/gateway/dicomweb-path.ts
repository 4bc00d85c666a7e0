import { isValidDicomUid } from '../registry/dicom-uid';

/** One DICOMweb request the gateway may forward, after its path and query were checked. */
export interface DicomWebTarget {
  custodian: string;
  studyUid: string;
  /** The path below the service root, e.g. `/studies/1.2.3/series/4.5/metadata`. */
  path: string;
  /** The query string to forward (without `?`), or ''. */
  query: string;
  /** QIDO-RS (a search) or WADO-RS (a retrieval). */
  kind: 'qido' | 'wado';
  /** What is asked for, for the audit trail: study, study/metadata, series/instances, frames, ... */
  resource: string;
}

export class DicomWebPathError extends Error {}

const ODS = /^[A-Z0-9]{1,10}$/;
const FRAMES = /^[1-9]\d{0,5}(,[1-9]\d{0,5}){0,99}$/;
const LEAF = new Set(['metadata', 'rendered', 'thumbnail']);
/** QIDO-RS and WADO-RS query keys (PS3.18 8.3.4, 10.4.1, 9.5): attribute keywords or tags, and the controls. */
const QUERY_KEY = /^([A-Za-z][A-Za-z0-9]{0,63}|[0-9A-Fa-f]{8}(\.[0-9A-Fa-f]{8}){0,3})$/;
const STUDY_UID_KEYS = new Set(['StudyInstanceUID', '0020000D', '0020000d']);

function uid(segment: string | undefined, what: string): string {
  if (!segment || !isValidDicomUid(segment)) throw new DicomWebPathError(`${what} is not a valid DICOM UID`);
  return segment;
}

/**
 * Parses `/{custodian}/studies[/{study}[/series[/{series}[/instances[/{instance}]]]]][/metadata|/rendered|/thumbnail|/frames/{n}]`
 * (PS3.18 10.4 WADO-RS and 10.6 QIDO-RS resources). A study-level QIDO search must name exactly
 * one StudyInstanceUID, which is what the caller is allowed to see: anything broader is refused.
 */
export function parseDicomWebPath(path: string, rawQuery: string): DicomWebTarget {
  if (path.length > 1024 || rawQuery.length > 4096) throw new DicomWebPathError('the DICOMweb request is too long');
  const segments = path.split('/').slice(1);
  const custodian = segments.shift() ?? '';
  if (!ODS.test(custodian)) throw new DicomWebPathError('the custodian must be an ODS code');
  if (segments.shift() !== 'studies') throw new DicomWebPathError('only /studies resources are served');
  const params = new URLSearchParams(rawQuery);
  for (const key of params.keys()) if (!QUERY_KEY.test(key)) throw new DicomWebPathError(`query parameter ${key.slice(0, 64)} is not a DICOMweb parameter`);
  const query = params.toString();
  if (segments.length === 0) {
    const given = [...params.entries()].filter(([k]) => STUDY_UID_KEYS.has(k));
    if (given.length !== 1) throw new DicomWebPathError('a study search must name exactly one StudyInstanceUID');
    return { custodian, studyUid: uid(given[0]?.[1], 'StudyInstanceUID'), path: '/studies', query, kind: 'qido', resource: 'studies' };
  }
  const studyUid = uid(segments.shift(), 'the Study Instance UID');
  for (const [k, v] of params) if (STUDY_UID_KEYS.has(k) && v !== studyUid) throw new DicomWebPathError('StudyInstanceUID in the query must be the study in the path');
  const out: string[] = ['study'];
  let kind: 'qido' | 'wado' = 'wado';
  let level: 'study' | 'series' | 'instance' = 'study';
  while (segments.length > 0) {
    const s = segments.shift() as string;
    if (s === 'series' && level === 'study') {
      if (segments.length === 0) {
        kind = 'qido';
        out.push('series');
        break;
      }
      uid(segments.shift(), 'the Series Instance UID');
      level = 'series';
      out.push('series');
    } else if (s === 'instances' && level !== 'instance') {
      if (segments.length === 0) {
        kind = 'qido';
        out.push('instances');
        break;
      }
      uid(segments.shift(), 'the SOP Instance UID');
      level = 'instance';
      out.push('instance');
    } else if (s === 'frames' && level === 'instance') {
      const list = segments.shift();
      if (!list || !FRAMES.test(list)) throw new DicomWebPathError('frames must be a comma-separated list of frame numbers');
      out.push('frames');
      if (segments[0] === 'rendered' && segments.length === 1) out.push(segments.shift() as string);
      if (segments.length > 0) throw new DicomWebPathError('nothing may follow the frame list');
    } else if (LEAF.has(s) && segments.length === 0) {
      out.push(s);
    } else {
      throw new DicomWebPathError(`${s.slice(0, 64)} is not a DICOMweb resource here`);
    }
  }
  return { custodian, studyUid, path: path.slice(custodian.length + 1), query, kind, resource: out.join('/') };
}
