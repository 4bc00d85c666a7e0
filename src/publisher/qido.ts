/**
 * A QIDO-RS reader (DICOM PS3.18 §10.6 Search Transaction): studies by StudyDate range with
 * limit/offset paging (§8.3.4.4), then each study's series and instances. Answers are DICOM JSON
 * (§F.2), validated with zod before use. 204 No Content means no matches (§10.6.3.2).
 */
import { dicomJsonArraySchema, type DicomJsonDataset } from '../dicom/dicom-json';
import { TAG } from '../dicom/dicom-json';
import { instanceFromDataset, seriesFromDataset, studyFromDataset } from '../dicom/extract';
import type { DicomSeries, DicomStudy } from '../dicom/model';
import { isRetryableStatus, parseRetryAfter, withRetry, type FailureInfo, type RetryPolicy } from './retry';

/** Attributes beyond each level's defaults (PS3.18 Table 10.6.3-3/-4/-5) that the mapping needs. */
const STUDY_FIELDS = [TAG.ModalitiesInStudy, TAG.StudyDescription, TAG.NumberOfStudyRelatedSeries, TAG.NumberOfStudyRelatedInstances,
  TAG.ReferringPhysicianName, TAG.ProcedureCodeSequence, TAG.IssuerOfPatientID, TAG.OtherPatientIDsSequence, TAG.TimezoneOffsetFromUTC];
const SERIES_FIELDS = [TAG.SeriesDescription, TAG.BodyPartExamined, TAG.Laterality, TAG.NumberOfSeriesRelatedInstances];
const INSTANCE_FIELDS = [TAG.SeriesInstanceUID, TAG.CompletionFlag, TAG.VerificationFlag, TAG.ContentDate, TAG.ContentTime];

type Params = Array<[string, string]>;
/**
 * One includefield parameter per attribute (PS3.18 §8.3.4.3 allows repeating it): a comma list
 * would be sent as %2C by URLSearchParams, which Orthanc 1.10 does not split.
 */
const includeFields = (tags: string[]): Params => tags.map((t) => ['includefield', t]);

class QidoHttpError extends Error {
  constructor(readonly status: number, readonly retryAfter: string | null, url: string) {
    super(`QIDO-RS ${url} answered HTTP ${status}`);
  }
}

function classify(err: unknown): FailureInfo {
  if (err instanceof QidoHttpError) return { retryable: isRetryableStatus(err.status), retryAfterMs: parseRetryAfter(err.retryAfter), reason: `HTTP ${err.status}` };
  if (err instanceof TypeError) return { retryable: true, reason: 'network error' };
  return { retryable: false, reason: err instanceof Error ? err.message : String(err) };
}

export class QidoClient {
  private readonly base: string;

  constructor(baseUrl: string, private readonly retry: RetryPolicy, private readonly pageSize = 100, private readonly fetchImpl: typeof fetch = fetch) {
    this.base = baseUrl.replace(/\/+$/, '');
  }

  private async get(path: string, params: Params): Promise<DicomJsonDataset[]> {
    const url = `${this.base}${path}?${new URLSearchParams(params).toString()}`;
    return withRetry(async () => {
      const res = await this.fetchImpl(url, { headers: { accept: 'application/dicom+json' } });
      if (res.status === 204) return [];
      if (!res.ok) throw new QidoHttpError(res.status, res.headers.get('retry-after'), url);
      const text = await res.text();
      return text.trim() === '' ? [] : dicomJsonArraySchema.parse(JSON.parse(text));
    }, classify, this.retry);
  }

  /** All pages of a query, page by page, until a short page. */
  async *pages(path: string, params: Params): AsyncGenerator<DicomJsonDataset[]> {
    for (let offset = 0; ; offset += this.pageSize) {
      const page = await this.get(path, [...params, ['limit', String(this.pageSize)], ['offset', String(offset)]]);
      if (page.length > 0) yield page;
      if (page.length < this.pageSize) return;
    }
  }

  /** Study-level results with StudyDate ≥ since (YYYYMMDD), a page at a time. */
  studiesSince(since: string): AsyncGenerator<DicomJsonDataset[]> {
    return this.pages('/studies', [['StudyDate', `${since}-`], ...includeFields(STUDY_FIELDS)]);
  }

  private async all(path: string, params: Params): Promise<DicomJsonDataset[]> {
    const out: DicomJsonDataset[] = [];
    for await (const page of this.pages(path, params)) out.push(...page);
    return out;
  }

  /** The full study: its series, then all its instances in one (paged) study-level query. */
  async readStudy(studyResult: DicomJsonDataset): Promise<DicomStudy | undefined> {
    const study = studyFromDataset(studyResult);
    if (!study) return undefined;
    const uid = encodeURIComponent(study.studyInstanceUid);
    const seriesResults = await this.all(`/studies/${uid}/series`, includeFields(SERIES_FIELDS));
    const series = new Map<string, DicomSeries>();
    for (const ds of seriesResults) {
      const s = seriesFromDataset(ds);
      if (s) series.set(s.seriesInstanceUid, { ...s, instances: [] });
    }
    for (const ds of await this.all(`/studies/${uid}/instances`, includeFields(INSTANCE_FIELDS))) {
      const seriesUid = seriesFromDataset(ds)?.seriesInstanceUid;
      const instance = instanceFromDataset(ds);
      if (seriesUid && instance) series.get(seriesUid)?.instances.push(instance);
    }
    const full = { ...study, series: [...series.values()] };
    return this.withSequencesFromMetadata(full, studyResult);
  }

  /**
   * Sequences a PACS may not return in QIDO answers (Orthanc 1.10 returns neither
   * ProcedureCodeSequence nor OtherPatientIDsSequence from its index) are taken from one
   * instance's WADO-RS metadata (PS3.18 §10.4.1.1.3) on the same DICOMweb root.
   */
  private async withSequencesFromMetadata(study: DicomStudy, studyResult: DicomJsonDataset): Promise<DicomStudy> {
    const missing = !(TAG.ProcedureCodeSequence in studyResult) || !(TAG.OtherPatientIDsSequence in studyResult);
    const first = study.series.find((s) => s.instances.length > 0);
    if (!missing || !first) return study;
    const path = ['studies', study.studyInstanceUid, 'series', first.seriesInstanceUid, 'instances', first.instances[0]!.sopInstanceUid]
      .map(encodeURIComponent).join('/');
    const [metadata] = await this.get(`/${path}/metadata`, []);
    const fromInstance = metadata ? studyFromDataset(metadata) : undefined;
    if (!fromInstance) return study;
    return {
      ...study,
      procedureCodes: study.procedureCodes.length > 0 ? study.procedureCodes : fromInstance.procedureCodes,
      patient: { ...study.patient, otherIds: study.patient.otherIds.length > 0 ? study.patient.otherIds : fromInstance.patient.otherIds },
    };
  }
}
