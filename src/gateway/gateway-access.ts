import type { Principal } from '../access/principal';
import { hasScope, isBreakGlass } from '../access/principal';
import { TokenError } from '../access/tokens';
import type { UnverifiedIdentity } from '../access/tokens';
import { FhirError, forbidden, unauthorized } from '../fhir/errors';
import type { AppDeps } from '../fhir/pipeline';
import type { ResolveState } from '../resolve/resolve-state';
import { looksLikeRetrievalToken, retrievalPrincipal, signRetrievalToken, verifyRetrievalToken } from '../resolve/retrieval-token';
import type { StudyPointer } from '../resolve/study-pointers';
import { findStudyPointers } from '../resolve/study-pointers';
import type { DicomWebTarget } from './dicomweb-path';

/** Who the gateway let in, and the token it sends on to the custodian's PACS. */
export interface GatewayGrant {
  principal: Principal;
  via: 'retrieval-token' | 'access-token';
  pointers: StudyPointer[];
  /** A retrieval token for the PACS: the caller's own, or one minted for this request. */
  upstreamToken: string;
}

/** What the audit trail knows of the caller, even when they were refused. */
export interface GatewayCaller {
  principal?: Principal;
  claimed?: UnverifiedIdentity;
}

export function bearerOf(header: string | undefined): string {
  if (!header) throw unauthorized('an Authorization: Bearer token is required (a retrieval token from $resolve, or an access token)');
  const m = /^Bearer\s+(\S+)$/i.exec(header);
  if (!m) throw unauthorized('the Authorization header must be Bearer <JWT>');
  return m[1] as string;
}

/**
 * The gateway's access decision (issue 6). A retrieval token must be bound to exactly this
 * custodian and study; an access token must carry a read scope. Either way the caller must pass
 * the same consent and sharing predicate as a read of one of the study's pointers (withheld and
 * missing are both 404), checked at each request.
 */
export async function authorizeRetrieval(deps: AppDeps, state: ResolveState, token: string, target: DicomWebTarget, caller: GatewayCaller, breakGlassReason?: string): Promise<GatewayGrant> {
  const issuer = deps.config.baseUrl;
  if (looksLikeRetrievalToken(token)) {
    const v = await verifyRetrievalToken(state.keys, issuer, token, target.custodian);
    caller.principal = retrievalPrincipal(v);
    if (v.studyUid !== target.studyUid) throw forbidden('the retrieval token is not bound to this study', 'ACCESS_DENIED');
    // The sharing rules are applied again at every retrieval, as the token's holder: a patient's
    // opt-out, a restriction or an ended agreement takes effect now, not when the token expires.
    const pointers = await findStudyPointers(deps.db, target.custodian, target.studyUid, { principal: caller.principal, policy: deps.policy });
    if (pointers.length === 0) throw new FhirError(404, 'not-found', `no pointer to this study at ${target.custodian} is known to this registry`, 'NO_RECORD_FOUND');
    return { principal: caller.principal, via: 'retrieval-token', pointers, upstreamToken: token };
  }
  let principal: Principal;
  try {
    principal = await deps.verifier.verify(token, breakGlassReason);
  } catch (e) {
    if (e instanceof TokenError) caller.claimed = e.claimed;
    throw e;
  }
  caller.principal = principal;
  if (!hasScope(principal, 'ImagingStudy', 'r')) throw forbidden("the token's scopes do not allow read of ImagingStudy, which retrieval needs", 'ACCESS_DENIED_LEVEL');
  const pointers = await findStudyPointers(deps.db, target.custodian, target.studyUid, { principal, policy: deps.policy });
  if (pointers.length === 0) throw new FhirError(404, 'not-found', `no pointer to this study at ${target.custodian} is known to this registry`, 'NO_RECORD_FOUND');
  const minted = await signRetrievalToken(
    state.keys,
    issuer,
    {
      studyUid: target.studyUid,
      custodian: target.custodian,
      organization: principal.organization,
      subject: principal.subject,
      role: principal.role,
      purposeOfUse: principal.purposeOfUse,
      breakGlass: isBreakGlass(principal),
      userName: principal.userName,
    },
    state.config.tokenTtlSeconds,
  );
  return { principal, via: 'access-token', pointers, upstreamToken: minted.token };
}
