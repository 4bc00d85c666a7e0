import { CATEGORY_STUDY, CONFIDENTIALITY_SYSTEM } from '../registry/codes';
import type { DenyRule } from '../registry/consent';
import type { OrganizationKind } from '../registry/organization';

/**
 * The sharing rules as a pure decision (issue: "a policy decision is a pure function of
 * principal, pointer, consents, agreements, time"). The SQL predicate in network-policy.ts
 * compiles the same rules; a property test checks that the two agree.
 *
 * 1. The custodian always sees its own pointers.
 * 2. Network trusts see each other's pointers for direct care (TREAT, or ETREAT).
 * 3. Others see a custodian's pointers only under an active sharing agreement covering the
 *    pointer's category (one row per direction; expired or future agreements grant nothing).
 * 4. A patient's active Consent deny rules withhold pointers from everyone but the custodian,
 *    from named organisations, or for a category, within their period.
 * 5. Pointers labelled R or V (v3 Confidentiality) are for the custodian only.
 * 6. Break-glass (ETREAT with a stated reason) reveals what 3–5 withheld, but never pointers of a
 *    custodian with which the caller has no relationship at all (not both network trusts, and no
 *    agreement ever made).
 */
export interface PolicyPrincipal {
  org: string;
  orgKind?: OrganizationKind;
  purposeOfUse: string;
  breakGlass: boolean;
}

export interface PolicyPointer {
  custodian: string;
  custodianKind?: OrganizationKind;
  category: string;
  security: string[];
}

export interface Agreement {
  provider: string;
  recipient: string;
  categories: string[];
  start: Date;
  end: Date | null;
}

export type Decision = 'permit' | 'deny' | 'deny-break-glass-would-permit';

export const DIRECT_CARE = new Set(['TREAT', 'ETREAT']);
export const RESTRICTED_LABELS = [`${CONFIDENTIALITY_SYSTEM}|R`, `${CONFIDENTIALITY_SYSTEM}|V`];

function within(now: Date, start: Date | string | null, end: Date | string | null): boolean {
  return (start === null || new Date(start) <= now) && (end === null || new Date(end) > now);
}

export function decide(p: PolicyPrincipal, ptr: PolicyPointer, consents: DenyRule[], agreements: Agreement[], now: Date): Decision {
  if (ptr.custodian === p.org) return 'permit';
  const network = p.orgKind === 'network-trust' && ptr.custodianKind === 'network-trust' && DIRECT_CARE.has(p.purposeOfUse);
  const between = agreements.filter((a) => a.provider === ptr.custodian && a.recipient === p.org);
  const agreed = between.some((a) => within(now, a.start, a.end) && (a.categories.length === 0 || a.categories.includes(ptr.category)));
  const restricted = ptr.security.some((s) => RESTRICTED_LABELS.includes(s));
  const consentDenied = consents.some(
    (r) => within(now, r.start, r.end) && (r.orgs.length === 0 || r.orgs.includes(p.org)) && (r.categories.length === 0 || r.categories.includes(ptr.category)),
  );
  if ((network || agreed) && !restricted && !consentDenied) return 'permit';
  const related = (p.orgKind === 'network-trust' && ptr.custodianKind === 'network-trust') || between.length > 0;
  if (!related) return 'deny';
  return p.breakGlass ? 'permit' : 'deny-break-glass-would-permit';
}

export const STUDY_CATEGORY = CATEGORY_STUDY;
