import { hasScope } from '../access/principal';
import type { Principal } from '../access/principal';
import { badRequest, forbidden } from '../fhir/errors';
import type { AppDeps, AuditDraft, Ctx, Reply, RouteDef } from '../fhir/pipeline';
import type { ResolvableType, ResolvedStudy } from './resolve-study';
import { resolveParameters, resolveStudy } from './resolve-study';
import { resolveState } from './resolve-state';

const ID = /^[A-Za-z0-9\-.]{1,64}$/;

/**
 * Resolves one pointer for a principal and fills the audit draft (the pointer, its patient,
 * the study and the token's id), for the FHIR route and the viewer page alike.
 */
export async function resolveFor(deps: AppDeps, principal: Principal, type: ResolvableType, id: string, draft: AuditDraft): Promise<ResolvedStudy> {
  draft.resourceType = type;
  if (!ID.test(id)) throw badRequest(`${id.slice(0, 80)} is not a FHIR id`, 'id');
  draft.entities.push({ type, id });
  if (!hasScope(principal, type, 'r')) throw forbidden(`the token's scopes do not allow read of ${type}, which $resolve needs`, 'ACCESS_DENIED_LEVEL');
  const state = resolveState(deps);
  const r = await resolveStudy({ q: deps.db, principal, policy: deps.policy, keys: state.keys, config: state.config, baseUrl: deps.config.baseUrl }, type, id);
  draft.entities[draft.entities.length - 1] = { type, id, version: r.version };
  if (r.patient) draft.patients.push(r.patient);
  draft.extraDetail = [
    ...(draft.extraDetail ?? []),
    { type: 'study-instance-uid', value: r.studyUid },
    { type: 'custodian', value: r.custodian },
    { type: 'retrieval-token-id', value: r.tokenId },
  ];
  return r;
}

function resolveRoute(type: ResolvableType): RouteDef {
  return {
    method: 'get',
    path: `/fhir/${type}/:id/$resolve`,
    subtype: 'operation',
    operation: '$resolve',
    action: 'E',
    auth: true,
    handle: async (ctx: Ctx): Promise<Reply> => {
      const r = await resolveFor(ctx.deps, ctx.principal, type, String(ctx.req.params.id), ctx.draft);
      return { status: 200, body: JSON.stringify(resolveParameters(r)) };
    },
  };
}

/** `GET /fhir/ImagingStudy/{id}/$resolve` and `GET /fhir/DocumentReference/{id}/$resolve` (issue 6). */
export const resolveRoutes: RouteDef[] = [resolveRoute('ImagingStudy'), resolveRoute('DocumentReference')];
