import { z } from 'zod';
import { ENDPOINT_CONNECTION_TYPE_SYSTEM, ODS_SYSTEM } from './codes';
import { codeableConceptSchema, codingSchema, domainResourceShape, identifierSchema, periodSchema, referenceSchema, str, urlSchema } from './fhir-datatypes';
import { identifierTokens } from './imaging-study';

export const ENDPOINT_PROFILE = 'https://locus.nhs.example/fhir/StructureDefinition/locus-endpoint';
export const CONNECTION_TYPES = ['dicom-wado-rs', 'dicom-qido-rs', 'dicom-stow-rs', 'ihe-iid', 'hl7-fhir-rest'] as const;

export const endpointSchema = z
  .object({
    resourceType: z.literal('Endpoint'),
    ...domainResourceShape,
    identifier: z.array(identifierSchema).max(10).optional(),
    status: z.enum(['active', 'suspended', 'error', 'off', 'entered-in-error', 'test']),
    connectionType: codingSchema.refine(
      (c) => c.system === ENDPOINT_CONNECTION_TYPE_SYSTEM && (CONNECTION_TYPES as readonly string[]).includes(c.code ?? ''),
      `connectionType must be a code of ${ENDPOINT_CONNECTION_TYPE_SYSTEM}: ${CONNECTION_TYPES.join(', ')}`,
    ),
    name: str(256).optional(),
    managingOrganization: referenceSchema.refine(
      (r) => /^Organization\/[A-Za-z0-9\-.]{1,64}$/.test(r.reference ?? '') || (r.identifier?.system === ODS_SYSTEM && Boolean(r.identifier.value)),
      'managingOrganization must reference a registered Organization (Organization/<id>, or identifier with the ODS system)',
    ),
    contact: z.array(z.object({}).loose()).max(10).optional(),
    period: periodSchema.optional(),
    payloadType: z.array(codeableConceptSchema).min(1).max(10),
    payloadMimeType: z.array(str(128)).max(20).optional(),
    address: urlSchema,
    header: z.array(str(1024)).max(10).optional(),
  })
  .strict();
export type EndpointResource = z.infer<typeof endpointSchema>;

export interface EndpointColumns {
  managing_org_id: string;
  managing_ods: string;
  connection_type: string;
  status: string;
  name_lower: string;
  identifiers: string[];
  address: string;
}

export function endpointColumns(e: EndpointResource, org: { id: string; ods: string }): EndpointColumns {
  return {
    managing_org_id: org.id,
    managing_ods: org.ods,
    connection_type: e.connectionType.code ?? '',
    status: e.status,
    name_lower: (e.name ?? '').toLowerCase(),
    identifiers: identifierTokens(e.identifier ?? []),
    address: e.address.replace(/\/+$/, ''),
  };
}
