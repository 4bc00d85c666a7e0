/**
 * Keeps the conformance resources in fhir-profiles/ in step with the code that enforces them:
 * canonical URLs, search-parameter codes and types, code-system codes, identifier and code systems,
 * and the code lists written into FHIRPath constraints. Pure: reads files and imports constants.
 */
import fs from 'node:fs';
import path from 'node:path';
import {
  ALL_MODALITIES,
  CATEGORY_REPORT,
  CATEGORY_STUDY,
  DCM_SYSTEM,
  ENDPOINT_CONNECTION_TYPE_SYSTEM,
  NICIP_SYSTEM,
  ODS_SYSTEM,
  SNOMED_SYSTEM,
} from '../src/registry/codes';
import { DICOM_UID_SYSTEM } from '../src/registry/dicom-uid';
import { DOCUMENT_REFERENCE_PROFILE } from '../src/registry/document-reference';
import { CONNECTION_TYPES, ENDPOINT_PROFILE } from '../src/registry/endpoint';
import { IMAGING_STUDY_PROFILE } from '../src/registry/imaging-study';
import { CONSENT_PROFILE } from '../src/registry/consent';
import { NHS_NUMBER_SYSTEM } from '../src/registry/nhs-number';
import { ORGANIZATION_KINDS, ORGANIZATION_KIND_SYSTEM, ORGANIZATION_PROFILE } from '../src/registry/organization';
import { RESOURCE_TYPES } from '../src/registry/resource-types';

const DIR = path.join(__dirname, '..', 'fhir-profiles');
const LOCUS = 'https://locus.nhs.example/';

interface Constraint {
  key: string;
  severity: string;
  human: string;
  expression: string;
  source?: string;
}
interface Coding {
  system?: string;
  code?: string;
}
interface ElementDefinition {
  id: string;
  path: string;
  sliceName?: string;
  min?: number;
  max?: string;
  fixedUri?: string;
  patternCoding?: Coding;
  patternCodeableConcept?: { coding?: Coding[] };
  constraint?: Constraint[];
  slicing?: { discriminator: { type: string; path: string }[]; rules: string };
}
interface Resource {
  resourceType: string;
  id?: string;
  url?: string;
  [k: string]: unknown;
}
interface StructureDefinition extends Resource {
  type: string;
  kind: string;
  derivation: string;
  baseDefinition: string;
  fhirVersion: string;
  differential: { element: ElementDefinition[] };
}
interface SearchParameter extends Resource {
  code: string;
  base: string[];
  type: string;
  expression: string;
}
interface CodeSystem extends Resource {
  count?: number;
  concept: { code: string; display?: string }[];
}

const jsonFiles = fs.readdirSync(DIR).filter((f) => f.endsWith('.json')).sort();
const resources: { file: string; resource: Resource }[] = jsonFiles.map((file) => ({
  file,
  resource: JSON.parse(fs.readFileSync(path.join(DIR, file), 'utf8')) as Resource,
}));
const ofType = <T extends Resource>(type: string): T[] => resources.filter((r) => r.resource.resourceType === type).map((r) => r.resource as T);
const structureDefinitions = ofType<StructureDefinition>('StructureDefinition');
const searchParameters = ofType<SearchParameter>('SearchParameter');
const codeSystems = ofType<CodeSystem>('CodeSystem');

function sdFor(url: string): StructureDefinition {
  const found = structureDefinitions.filter((s) => s.url === url);
  expect(found).toHaveLength(1);
  return found[0] as StructureDefinition;
}
function element(sd: StructureDefinition, id: string): ElementDefinition {
  const e = sd.differential.element.find((x) => x.id === id);
  if (!e) throw new Error(`${sd.url} has no differential element ${id}`);
  return e;
}
function constraint(sd: StructureDefinition, key: string): Constraint {
  const c = sd.differential.element.flatMap((e) => e.constraint ?? []).find((x) => x.key === key);
  if (!c) throw new Error(`${sd.url} has no constraint ${key}`);
  return c;
}
/** The quoted codes of a FHIRPath `in ('A' | 'B' | ...)` list. */
function inListCodes(expression: string): string[] {
  const list = /in \(('[^']*'(?: \| '[^']*')*)\)/.exec(expression)?.[1];
  if (!list) throw new Error(`no in (...) list in ${expression}`);
  return [...list.matchAll(/'([^']*)'/g)].map((m) => m[1] as string);
}

const PROFILES = [
  { name: 'IMAGING_STUDY_PROFILE', url: IMAGING_STUDY_PROFILE, type: 'ImagingStudy' },
  { name: 'DOCUMENT_REFERENCE_PROFILE', url: DOCUMENT_REFERENCE_PROFILE, type: 'DocumentReference' },
  { name: 'ORGANIZATION_PROFILE', url: ORGANIZATION_PROFILE, type: 'Organization' },
  { name: 'ENDPOINT_PROFILE', url: ENDPOINT_PROFILE, type: 'Endpoint' },
  { name: 'CONSENT_PROFILE', url: CONSENT_PROFILE, type: 'Consent' },
];

const locusSearchParams = RESOURCE_TYPES.flatMap((def) =>
  def.searchParams.filter((p) => p.definition?.startsWith(LOCUS)).map((p) => ({ base: def.type, param: p, definition: p.definition as string })),
);

describe('fhir-profiles files', () => {
  it('holds the expected resources', () => {
    expect(structureDefinitions.length).toBeGreaterThanOrEqual(4);
    expect(searchParameters.length).toBeGreaterThanOrEqual(1);
    expect(codeSystems.length).toBeGreaterThanOrEqual(1);
  });

  it.each(resources.map((r) => [r.file, r.resource] as const))('%s parses, has resourceType, id and a Locus url', (file, r) => {
    expect(typeof r.resourceType).toBe('string');
    expect(typeof r.url).toBe('string');
    expect(r.id).toMatch(/^[A-Za-z0-9\-.]{1,64}$/);
    expect(r.url).toBe(`https://locus.nhs.example/fhir/${r.resourceType}/${r.id}`);
    expect(file).toBe(`${r.resourceType}-${r.id}.json`);
  });

  it('has no two resources with the same url', () => {
    const urls = resources.map((r) => r.resource.url);
    expect(new Set(urls).size).toBe(urls.length);
  });

  it('README lists every file, and only files that exist', () => {
    const readme = fs.readFileSync(path.join(DIR, 'README.md'), 'utf8');
    const listed = [...readme.matchAll(/`([A-Za-z]+-[A-Za-z0-9\-.]+\.json)`/g)].map((m) => m[1]);
    expect([...new Set(listed)].sort()).toEqual(jsonFiles);
  });
});

describe('StructureDefinitions', () => {
  it.each(PROFILES)('$name has exactly one StructureDefinition of type $type', ({ url, type }) => {
    const sd = sdFor(url);
    expect(sd.type).toBe(type);
    expect(sd.kind).toBe('resource');
    expect(sd.derivation).toBe('constraint');
    expect(sd.fhirVersion).toBe('4.0.1');
    expect(sd.baseDefinition).toBe(`http://hl7.org/fhir/StructureDefinition/${type}`);
  });

  it('every resource type Locus serves with a StructureDefinition here uses its profile url and type', () => {
    for (const def of RESOURCE_TYPES) {
      const found = structureDefinitions.filter((s) => s.url === def.profile);
      expect(found.length).toBeLessThanOrEqual(1);
      if (found[0]) expect(found[0].type).toBe(def.type);
    }
    for (const sd of structureDefinitions) expect(RESOURCE_TYPES.map((d) => d.profile)).toContain(sd.url);
  });

  it.each(structureDefinitions.map((sd) => [sd.url, sd] as const))('%s: differential is well formed', (_url, sd) => {
    const els = sd.differential.element;
    expect(els[0]?.id).toBe(sd.type);
    const ids = els.map((e) => e.id);
    expect(new Set(ids).size).toBe(ids.length);
    const keys = els.flatMap((e) => (e.constraint ?? []).map((c) => c.key));
    expect(new Set(keys).size).toBe(keys.length);
    for (const e of els) {
      expect(e.path === sd.type || e.path.startsWith(`${sd.type}.`)).toBe(true);
      // The id is the path with slice names (`:name`) after the sliced element.
      expect(e.id.replace(/:[A-Za-z0-9-]+/g, '')).toBe(e.path);
      if (e.sliceName) expect(e.id.endsWith(`:${e.sliceName}`)).toBe(true);
      if (e.min !== undefined && e.max !== undefined && e.max !== '*') expect(e.min).toBeLessThanOrEqual(Number(e.max));
      for (const c of e.constraint ?? []) {
        expect(c.key).toMatch(/^locus-[a-z]+-\d+$/);
        expect(['error', 'warning']).toContain(c.severity);
        expect(c.human.length).toBeGreaterThan(10);
        expect(c.expression.length).toBeGreaterThan(0);
        expect(c.source).toBe(sd.url);
        // Parentheses and quotes balance (a cheap guard against broken FHIRPath).
        expect(c.expression.split('(').length).toBe(c.expression.split(')').length);
        expect((c.expression.match(/'/g) ?? []).length % 2).toBe(0);
      }
    }
    // Every slice belongs to an element that declares slicing.
    for (const e of els.filter((x) => x.sliceName)) {
      const sliced = els.find((x) => x.id === e.path && x.slicing);
      expect(sliced).toBeDefined();
    }
  });
});

describe('SearchParameters', () => {
  it('Locus defines some custom search parameters', () => {
    expect(locusSearchParams.length).toBeGreaterThan(0);
  });

  it.each(locusSearchParams.map((s) => [`${s.base} ${s.param.name}`, s] as const))('%s has a SearchParameter with that url, code and type', (_label, s) => {
    const found = searchParameters.filter((sp) => sp.url === s.definition);
    expect(found).toHaveLength(1);
    const sp = found[0] as SearchParameter;
    expect(sp.code).toBe(s.param.name.split(':')[0]);
    expect(sp.type).toBe(s.param.type);
    expect(sp.base).toEqual([s.base]);
    expect(sp.expression).toBe(s.param.expression);
    expect(sp.status).toBe('active');
    expect(typeof sp.description).toBe('string');
  });

  it('every SearchParameter file is one the registry points to', () => {
    const defined = new Set(locusSearchParams.map((s) => s.definition));
    for (const sp of searchParameters) expect(defined).toContain(sp.url);
  });

  it('custodian and organization:identifier document the ODS system they accept', () => {
    for (const id of ['ImagingStudy-custodian', 'Endpoint-organization-identifier']) {
      const sp = searchParameters.find((x) => x.id === id);
      expect(sp?.description).toContain(ODS_SYSTEM);
    }
    expect(searchParameters.find((x) => x.id === 'Endpoint-organization-identifier')?.description).toContain('organization:identifier');
  });
});

describe('CodeSystem organization-kind', () => {
  const cs = codeSystems.find((c) => c.url === ORGANIZATION_KIND_SYSTEM);

  it('exists at ORGANIZATION_KIND_SYSTEM', () => {
    expect(cs).toBeDefined();
    expect(ORGANIZATION_KIND_SYSTEM).toBe('https://locus.nhs.example/fhir/CodeSystem/organization-kind');
  });

  it('has exactly the codes of ORGANIZATION_KINDS', () => {
    const codes = (cs?.concept ?? []).map((c) => c.code);
    expect([...codes].sort()).toEqual([...ORGANIZATION_KINDS].sort());
    expect(new Set(codes).size).toBe(codes.length);
    expect(cs?.count).toBe(ORGANIZATION_KINDS.length);
  });

  it('the Organization profile checks the same codes', () => {
    const sd = sdFor(ORGANIZATION_PROFILE);
    const c = constraint(sd, 'locus-org-2');
    expect(c.expression).toContain(`'${ORGANIZATION_KIND_SYSTEM}'`);
    expect(inListCodes(c.expression).sort()).toEqual([...ORGANIZATION_KINDS].sort());
    expect(element(sd, 'Organization.type:kind').patternCodeableConcept?.coding?.[0]?.system).toBe(ORGANIZATION_KIND_SYSTEM);
  });
});

describe('identifier and code systems equal the constants in the code', () => {
  const imaging = (): StructureDefinition => sdFor(IMAGING_STUDY_PROFILE);
  const docref = (): StructureDefinition => sdFor(DOCUMENT_REFERENCE_PROFILE);
  const org = (): StructureDefinition => sdFor(ORGANIZATION_PROFILE);
  const endpoint = (): StructureDefinition => sdFor(ENDPOINT_PROFILE);

  it('every fixedUri and pattern system is a known constant', () => {
    const known = new Set([DCM_SYSTEM, NHS_NUMBER_SYSTEM, ODS_SYSTEM, SNOMED_SYSTEM, ENDPOINT_CONNECTION_TYPE_SYSTEM, DICOM_UID_SYSTEM, ORGANIZATION_KIND_SYSTEM]);
    for (const sd of structureDefinitions) {
      for (const e of sd.differential.element) {
        if (e.fixedUri !== undefined) {
          if (e.path.endsWith('.system')) expect(known).toContain(e.fixedUri);
          else expect(e.path.endsWith('.type') && ['Patient', 'Organization'].includes(e.fixedUri)).toBe(true);
        }
        if (e.patternCoding?.system !== undefined) expect(known).toContain(e.patternCoding.system);
        for (const c of e.patternCodeableConcept?.coding ?? []) expect(known).toContain(c.system);
      }
    }
  });

  it('DCM: modality pattern and the modality code lists', () => {
    const sd = imaging();
    expect(element(sd, 'ImagingStudy.modality').patternCoding?.system).toBe(DCM_SYSTEM);
    expect(element(sd, 'ImagingStudy.series.modality').patternCoding?.system).toBe(DCM_SYSTEM);
    for (const key of ['locus-is-6', 'locus-is-8']) {
      const c = constraint(sd, key);
      expect(c.expression).toContain(`system = '${DCM_SYSTEM}'`);
      expect(inListCodes(c.expression).sort()).toEqual([...ALL_MODALITIES].sort());
    }
    expect(constraint(docref(), 'locus-dr-1').expression).toContain(`system = '${DCM_SYSTEM}' and code = '110180'`);
  });

  it('NHS number: subject.identifier.system on both pointer profiles', () => {
    for (const sd of [imaging(), docref()]) {
      expect(element(sd, `${sd.type}.subject.identifier`).min).toBe(1);
      expect(element(sd, `${sd.type}.subject.identifier.system`).fixedUri).toBe(NHS_NUMBER_SYSTEM);
      const value = element(sd, `${sd.type}.subject.identifier.value`);
      expect(value.min).toBe(1);
      const c = value.constraint?.find((x) => x.key === 'locus-nhs-1');
      expect(c?.expression).toContain("matches('^[0-9]{10}$')");
      expect(c?.expression).toContain('mod 11');
      expect(c?.human).toMatch(/modulus-11/);
    }
  });

  it('ODS: custodian, organisation identifier and Endpoint managingOrganization', () => {
    expect(element(docref(), 'DocumentReference.custodian.identifier.system').fixedUri).toBe(ODS_SYSTEM);
    expect(element(docref(), 'DocumentReference.custodian').min).toBe(1);
    expect(element(org(), 'Organization.identifier:odsCode.system').fixedUri).toBe(ODS_SYSTEM);
    expect(element(org(), 'Organization.identifier:odsCode').min).toBe(1);
    expect(element(org(), 'Organization.identifier:odsCode').max).toBe('1');
    expect(constraint(org(), 'locus-org-1').expression).toContain(`'${ODS_SYSTEM}'`);
    expect(constraint(endpoint(), 'locus-ep-1').expression).toContain(`'${ODS_SYSTEM}'`);
  });

  it('DICOM UID: the Study Instance UID slice', () => {
    const sd = imaging();
    expect(element(sd, 'ImagingStudy.identifier').slicing?.discriminator).toEqual([{ type: 'value', path: 'system' }]);
    const slice = element(sd, 'ImagingStudy.identifier:studyInstanceUid');
    expect([slice.min, slice.max]).toEqual([1, '1']);
    expect(element(sd, 'ImagingStudy.identifier:studyInstanceUid.system').fixedUri).toBe(DICOM_UID_SYSTEM);
    expect(constraint(sd, 'locus-is-1').expression).toBe(`identifier.where(system = '${DICOM_UID_SYSTEM}').count() = 1`);
    expect(constraint(docref(), 'locus-dr-1').expression).toContain(`system = '${DICOM_UID_SYSTEM}'`);
  });

  it('SNOMED and NICIP: DocumentReference category slices and type', () => {
    const sd = docref();
    expect(element(sd, 'DocumentReference.category:study').patternCodeableConcept?.coding).toEqual([{ system: SNOMED_SYSTEM, code: CATEGORY_STUDY }]);
    expect(element(sd, 'DocumentReference.category:report').patternCodeableConcept?.coding).toEqual([{ system: SNOMED_SYSTEM, code: CATEGORY_REPORT }]);
    const cat = constraint(sd, 'locus-dr-3').expression;
    expect(cat).toContain(`'${CATEGORY_STUDY}'`);
    expect(cat).toContain(`'${CATEGORY_REPORT}'`);
    const type = constraint(sd, 'locus-dr-4').expression;
    expect(type).toContain(`'${NICIP_SYSTEM}'`);
    expect(type).toContain(`'${SNOMED_SYSTEM}'`);
  });

  it('Endpoint connection types', () => {
    const sd = endpoint();
    expect(element(sd, 'Endpoint.connectionType').patternCoding?.system).toBe(ENDPOINT_CONNECTION_TYPE_SYSTEM);
    const c = element(sd, 'Endpoint.connectionType').constraint?.find((x) => x.key === 'locus-ep-2');
    expect(inListCodes(c?.expression ?? '').sort()).toEqual([...CONNECTION_TYPES].sort());
    expect(c?.expression).toContain(`'${ENDPOINT_CONNECTION_TYPE_SYSTEM}'`);
  });
});
