import type { SqlBuilder } from '../store/sql-builder';
import type { Principal } from './principal';

/**
 * The sharing policy, compiled into the SQL of every query that returns pointers, so that the
 * rules apply before paging (STYLE: "consent and sharing rules compiled into the same SQL
 * predicate"). `alias` is the pointer table's alias; the predicate may reference its columns
 * patient_nhs, custodian_ods, security and (for DocumentReference) categories.
 */
export interface PointerPolicy {
  /**
   * Rows the principal may see. `patient`: the caller promises the query is already pinned to this
   * one patient's rows, so the predicate may check that patient's consents once per query instead
   * of once per row.
   */
  visible(principal: Principal, alias: string, kind: 'ImagingStudy' | 'DocumentReference', b: SqlBuilder, now: Date, patient?: string): string;
  /** Whether break-glass could show this caller anything the policy withholds (false for a break-glass caller). */
  breakGlassCouldReveal?(principal: Principal): boolean;
  /** Rows withheld now that break-glass would reveal (for the searchset warning); undefined when none could be. */
  revealableByBreakGlass?(principal: Principal, alias: string, kind: 'ImagingStudy' | 'DocumentReference', b: SqlBuilder, now: Date, patient?: string): string | undefined;
  /**
   * Rows break-glass would show this caller: `visible` and `revealableByBreakGlass` together, without
   * the per-patient checks (consents, labels). Lets one scan fetch both kinds and flag each.
   */
  reach?(principal: Principal, alias: string, kind: 'ImagingStudy' | 'DocumentReference', b: SqlBuilder, now: Date): string;
  /**
   * A cheaper first scan of one patient's rows (no cursor, caller not in break-glass): `reach` as
   * above, and `shown`, true only for rows that are certainly visible. Sound, not complete: a row in
   * reach that `shown` leaves out may still be visible, and the search then classifies the rows
   * exactly (`visible`, `revealableByBreakGlass`). Undefined when the caller's lists make no such
   * shortcut possible.
   */
  quickReach?(principal: Principal, alias: string, kind: 'ImagingStudy' | 'DocumentReference', b: SqlBuilder, now: Date, patient: string): { reach: string; shown: string } | undefined;
  /** Reload cached organisation facts (after an Organization write). */
  refresh?(): Promise<void>;
  close?(): void;
}

/** Benchmarks' baseline only: every pointer visible to every authenticated caller with a read scope. */
export const allowAllPolicy: PointerPolicy = {
  visible: () => 'true',
};
