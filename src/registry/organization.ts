import { z } from 'zod';
import { ODS_SYSTEM } from './codes';
import { codeableConceptSchema, domainResourceShape, identifierSchema, referenceSchema, str } from './fhir-datatypes';
import { identifierTokens } from './imaging-study';
import { odsCodeSchema } from './nhs-identifier';

export const ORGANIZATION_PROFILE = 'https://locus.nhs.example/fhir/StructureDefinition/locus-organization';
export const ORGANIZATION_KIND_SYSTEM = 'https://locus.nhs.example/fhir/CodeSystem/organization-kind';
export const ORGANIZATION_KINDS = ['network-trust', 'independent-provider', 'wales', 'peer-registry', 'shared-care-record', 'admin'] as const;
export type OrganizationKind = (typeof ORGANIZATION_KINDS)[number];

export const organizationSchema = z
  .object({
    resourceType: z.literal('Organization'),
    ...domainResourceShape,
    identifier: z.array(identifierSchema).min(1).max(10),
    active: z.boolean().optional(),
    type: z.array(codeableConceptSchema).min(1).max(10),
    name: str(256),
    alias: z.array(str(256)).max(10).optional(),
    telecom: z.array(z.object({}).loose()).max(10).optional(),
    address: z.array(z.object({}).loose()).max(10).optional(),
    partOf: referenceSchema.optional(),
    contact: z.array(z.object({}).loose()).max(10).optional(),
    endpoint: z.array(referenceSchema).max(20).optional(),
  })
  .strict()
  .superRefine((o, ctx) => {
    const ods = o.identifier.filter((i) => i.system === ODS_SYSTEM);
    if (ods.length !== 1) {
      ctx.addIssue({ code: 'custom', path: ['identifier'], message: `exactly one identifier with system ${ODS_SYSTEM} is required` });
    } else if (!odsCodeSchema.safeParse(ods[0]?.value).success) {
      ctx.addIssue({ code: 'custom', path: ['identifier', o.identifier.indexOf(ods[0] as never), 'value'], message: 'identifier value must be an ODS code' });
    }
    if (!kindOf(o)) {
      ctx.addIssue({ code: 'custom', path: ['type'], message: `type needs a coding from ${ORGANIZATION_KIND_SYSTEM} (code value one of ${ORGANIZATION_KINDS.join(', ')})` });
    }
  });
export type OrganizationResource = z.infer<typeof organizationSchema>;

export function kindOf(o: OrganizationResource): OrganizationKind | undefined {
  const code = o.type.flatMap((t) => t.coding ?? []).find((c) => c.system === ORGANIZATION_KIND_SYSTEM)?.code;
  return (ORGANIZATION_KINDS as readonly string[]).includes(code ?? '') ? (code as OrganizationKind) : undefined;
}

export function odsOf(o: OrganizationResource): string {
  return o.identifier.find((i) => i.system === ODS_SYSTEM)?.value ?? '';
}

export interface OrganizationColumns {
  ods: string;
  name_lower: string;
  kind: string;
  active: boolean;
  identifiers: string[];
}

export function organizationColumns(o: OrganizationResource): OrganizationColumns {
  return {
    ods: odsOf(o),
    name_lower: o.name.toLowerCase(),
    kind: kindOf(o) ?? 'network-trust',
    active: o.active ?? true,
    identifiers: identifierTokens(o.identifier),
  };
}
