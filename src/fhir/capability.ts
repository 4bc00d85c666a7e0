import type { CapabilityStatement, CapabilityStatementRestResource } from 'fhir/r4';
import { RESOURCE_TYPES } from '../registry/resource-types';
import type { ResourceTypeDef } from '../registry/resource-types';

export const LOCUS_VERSION = '0.1.0';

/** Extra resources and operations other modules register (AuditEvent, Consent, $resolve, ...). */
export interface CapabilityExtension {
  resources: CapabilityStatementRestResource[];
}

const extensions: CapabilityExtension[] = [];

export function registerCapability(extension: CapabilityExtension): void {
  extensions.push(extension);
}

function resourceEntry(def: ResourceTypeDef): CapabilityStatementRestResource {
  const params = def.searchParams.filter((p) => !p.name.includes(':') && !p.name.includes('.'));
  return {
    type: def.type,
    profile: def.profile,
    interaction: def.interactions.map((code) => ({ code })),
    versioning: 'versioned',
    readHistory: true,
    updateCreate: false,
    ...(def.interactions.includes('read') ? { conditionalRead: 'full-support' as const } : {}),
    conditionalCreate: def.conditionalCreate,
    conditionalUpdate: def.conditionalUpdate,
    conditionalDelete: 'not-supported',
    referencePolicy: ['literal', 'logical'],
    ...(def.type === 'ImagingStudy' ? { searchInclude: ['ImagingStudy:endpoint'] } : {}),
    searchParam: params.map((p) => ({
      name: p.name,
      type: p.type,
      ...(p.definition ? { definition: p.definition } : {}),
      documentation: `${p.documentation}${p.modifiers ? ` (modifiers: ${p.modifiers.join(', ')})` : ''}`,
    })),
    extension: def.searchParams
      .filter((p) => p.name.includes(':') || p.name.includes('.'))
      .map((p) => ({ url: 'https://locus.nhs.example/fhir/StructureDefinition/search-parameter-alias', valueString: `${p.name}: ${p.documentation}` })),
  };
}

/**
 * One entry per resource type (R4 cpb-11): an extension adding operations or interactions to a
 * type the core serves (e.g. `$resolve` on ImagingStudy) is folded into the core's entry.
 */
function mergeByType(entries: CapabilityStatementRestResource[]): CapabilityStatementRestResource[] {
  const byType = new Map<string, CapabilityStatementRestResource>();
  for (const e of entries) {
    const seen = byType.get(e.type);
    if (!seen) {
      byType.set(e.type, { ...e });
      continue;
    }
    const codes = new Set((seen.interaction ?? []).map((i) => i.code));
    seen.interaction = [...(seen.interaction ?? []), ...(e.interaction ?? []).filter((i) => !codes.has(i.code))];
    if (e.operation) seen.operation = [...(seen.operation ?? []), ...e.operation];
    if (e.searchParam) seen.searchParam = [...(seen.searchParam ?? []), ...e.searchParam];
  }
  return [...byType.values()];
}

/**
 * The CapabilityStatement, generated from the same resource-type registry the router and the
 * search engine use (so it cannot drift from what is served).
 */
export function capabilityStatement(fhirBase: string): CapabilityStatement {
  return {
    resourceType: 'CapabilityStatement',
    status: 'active',
    date: '2026-11-23',
    publisher: 'Locus',
    kind: 'instance',
    software: { name: 'Locus imaging pointer registry', version: LOCUS_VERSION },
    implementation: { description: 'Locus: imaging pointers for an NHS imaging network', url: fhirBase },
    fhirVersion: '4.0.1',
    format: ['application/fhir+json', 'json'],
    rest: [
      {
        mode: 'server',
        security: {
          cors: false,
          service: [{ coding: [{ system: 'http://terminology.hl7.org/CodeSystem/restful-security-service', code: 'SMART-on-FHIR' }] }],
          description:
            'Bearer JWT from a trusted issuer (SMART v2 scopes; organisation by ODS code; purpose of use). See /.well-known/smart-configuration.',
        },
        resource: mergeByType([...RESOURCE_TYPES.map(resourceEntry), ...extensions.flatMap((e) => e.resources)]),
        interaction: [{ code: 'transaction' }, { code: 'batch' }],
      },
    ],
  };
}
