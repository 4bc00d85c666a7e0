import type { PointerPolicy } from '../access/policy';
import type { Principal } from '../access/principal';
import type { Queryable } from '../store/database';
import { SqlBuilder } from '../store/sql-builder';

export interface StudyPointer {
  type: 'ImagingStudy' | 'DocumentReference';
  id: string;
  version: number;
  patient: string;
}

/**
 * The pointers to one study at one custodian: ImagingStudy by (custodian, study UID), and
 * DocumentReference by its related `uid|` token. With a principal, only those the sharing
 * policy lets them see (the gateway's consent check); without, all of them. One statement.
 */
export async function findStudyPointers(q: Queryable, custodian: string, studyUid: string, visibleTo?: { principal: Principal; policy: PointerPolicy; now?: Date }): Promise<StudyPointer[]> {
  const b = new SqlBuilder();
  const ods = b.param(custodian);
  const uid = b.param(studyUid);
  const token = b.param(`uid|${studyUid}`);
  const now = visibleTo?.now ?? new Date();
  const policy = (alias: string, kind: 'ImagingStudy' | 'DocumentReference'): string =>
    visibleTo ? visibleTo.policy.visible(visibleTo.principal, alias, kind, b, now) : 'true';
  const sql = `select 'ImagingStudy' as type, s.id, s.version, s.patient_nhs as patient from imaging_study s
      where s.custodian_ods = ${ods} and s.study_uid = ${uid} and ${policy('s', 'ImagingStudy')}
    union all
    select 'DocumentReference' as type, d.id, d.version, d.patient_nhs as patient from document_reference d
      where d.custodian_ods = ${ods} and d.related @> array[${token}::text] and d.status = 'current' and ${policy('d', 'DocumentReference')}
    order by type desc, id`;
  return (await q.query<StudyPointer>(sql, b.params)).rows;
}
