import type { DevIssuer } from '../src/access/dev-issuer';
import type { Database } from '../src/store/database';
import { BENCH_SCHEMA, fmt, log, trustOds } from './common';
import type { BenchOptions } from './common';

/**
 * Seeding through the real write path: Organizations and Endpoints with an admin token, then
 * ImagingStudy pointers in transaction Bundles over HTTP with each custodian's publisher token.
 */
export interface Trust {
  ods: string;
  orgId: string;
  endpointId: string;
}

const FHIR_JSON = 'application/fhir+json';
const MODALITIES = ['CT', 'MR', 'CR', 'US', 'DX', 'MG', 'NM', 'XA'];
const DESCRIPTIONS = ['CT Chest', 'MRI Head', 'XR Chest', 'US Abdomen', 'XR Hand', 'Mammogram', 'Bone scan', 'Angiogram'];

async function postJson(url: string, token: string, body: unknown): Promise<{ status: number; json: Record<string, unknown> }> {
  const res = await fetch(url, { method: 'POST', headers: { authorization: `Bearer ${token}`, 'content-type': FHIR_JSON }, body: JSON.stringify(body) });
  const text = await res.text();
  return { status: res.status, json: text ? (JSON.parse(text) as Record<string, unknown>) : {} };
}

export async function registerTrusts(fhirBase: string, issuer: DevIssuer, audience: string, count: number): Promise<Trust[]> {
  const admin = await issuer.mint({ org: 'ADMIN', role: 'admin', audience });
  const trusts: Trust[] = [];
  for (let i = 0; i < count; i++) {
    const ods = trustOds(i);
    const org = await postJson(`${fhirBase}/Organization`, admin, {
      resourceType: 'Organization',
      identifier: [{ system: 'https://fhir.nhs.uk/Id/ods-organization-code', value: ods }],
      active: true,
      type: [{ coding: [{ system: 'https://locus.nhs.example/fhir/CodeSystem/organization-kind', code: 'network-trust' }] }],
      name: `Benchmark Trust ${ods}`,
    });
    if (org.status !== 201) throw new Error(`registering organisation ${ods}: HTTP ${org.status} ${JSON.stringify(org.json).slice(0, 300)}`);
    const ep = await postJson(`${fhirBase}/Endpoint`, admin, {
      resourceType: 'Endpoint',
      status: 'active',
      connectionType: { system: 'http://terminology.hl7.org/CodeSystem/endpoint-connection-type', code: 'dicom-wado-rs' },
      name: `PACS ${ods}`,
      managingOrganization: { reference: `Organization/${String(org.json.id)}` },
      payloadType: [{ coding: [{ system: 'http://terminology.hl7.org/CodeSystem/endpoint-payload-type', code: 'DICOM' }] }],
      address: `https://pacs.${ods.toLowerCase()}.example.nhs.uk/dicom-web`,
    });
    if (ep.status !== 201) throw new Error(`registering endpoint of ${ods}: HTTP ${ep.status} ${JSON.stringify(ep.json).slice(0, 300)}`);
    trusts.push({ ods, orgId: String(org.json.id), endpointId: String(ep.json.id) });
  }
  return trusts;
}

/** The k-th study of patient p: deterministic, so a re-run seeds exactly the same pointers. */
export function benchStudy(patientIndex: number, k: number, nhs: string, trust: Trust): Record<string, unknown> {
  const uid = `1.2.826.0.1.3680043.10.1000.${patientIndex + 1}.${k + 1}`;
  const m = (patientIndex * 7 + k * 3) % MODALITIES.length;
  const day = (patientIndex * 13 + k * 397) % 3650;
  const started = new Date(Date.UTC(2015, 0, 1) + day * 86_400_000 + ((patientIndex + k) % 600) * 60_000).toISOString();
  return {
    resourceType: 'ImagingStudy',
    identifier: [
      { system: 'urn:dicom:uid', value: `urn:oid:${uid}` },
      { type: { coding: [{ system: 'http://terminology.hl7.org/CodeSystem/v2-0203', code: 'ACSN' }] }, value: `ACC${patientIndex + 1}-${k + 1}` },
    ],
    status: 'available',
    modality: [{ system: 'http://dicom.nema.org/resources/ontology/DCM', code: MODALITIES[m] }],
    subject: { identifier: { system: 'https://fhir.nhs.uk/Id/nhs-number', value: nhs } },
    started,
    numberOfSeries: 1 + (k % 4),
    numberOfInstances: 20 + ((patientIndex + k) % 400),
    endpoint: [{ reference: `Endpoint/${trust.endpointId}` }],
    description: DESCRIPTIONS[m],
  };
}

interface Job {
  trust: Trust;
  entries: Record<string, unknown>[];
}

/**
 * Pointers grouped by custodian into Bundles of `bundleSize`: pointer j (0-based) belongs to
 * patient j % patients (so every patient has pointers / patients of them) and to a trust chosen
 * from patient and study index, spreading each patient's imaging across several trusts.
 */
function* jobs(o: BenchOptions, patients: string[], trusts: Trust[]): Generator<Job> {
  const pending = new Map<string, Record<string, unknown>[]>();
  for (let j = 0; j < o.pointers; j++) {
    const p = j % o.patients;
    const k = Math.floor(j / o.patients);
    const trust = trusts[(p + k * 5) % trusts.length] as Trust;
    const list = pending.get(trust.ods) ?? [];
    list.push({ fullUrl: `urn:uuid:bench-${j}`, resource: benchStudy(p, k, patients[p] as string, trust), request: { method: 'POST', url: 'ImagingStudy' } });
    pending.set(trust.ods, list);
    if (list.length === o.bundleSize) {
      pending.delete(trust.ods);
      yield { trust, entries: list };
    }
  }
  for (const [ods, list] of pending) yield { trust: trusts.find((t) => t.ods === ods) as Trust, entries: list };
}

export interface SeedResult {
  pointers: number;
  seconds: number;
  perSecond: number;
  bundles: number;
  bundleMsP50: number;
  bundleMsMax: number;
}

export async function publishPointers(fhirBase: string, issuer: DevIssuer, audience: string, o: BenchOptions, patients: string[], trusts: Trust[]): Promise<SeedResult> {
  const tokens = new Map<string, string>();
  for (const t of trusts) tokens.set(t.ods, await issuer.mint({ org: t.ods, role: 'publisher', audience, expiresInSeconds: 4 * 3600 }));
  const source = jobs(o, patients, trusts);
  const bundleMs: number[] = [];
  let written = 0;
  let lastReport = Date.now();
  const started = process.hrtime.bigint();
  const worker = async (): Promise<void> => {
    for (let next = source.next(); !next.done; next = source.next()) {
      const { trust, entries } = next.value;
      const t0 = process.hrtime.bigint();
      const res = await fetch(`${fhirBase}`, {
        method: 'POST',
        headers: { authorization: `Bearer ${tokens.get(trust.ods) as string}`, 'content-type': FHIR_JSON },
        body: JSON.stringify({ resourceType: 'Bundle', type: 'transaction', entry: entries }),
      });
      const text = await res.text();
      // The response carries ids and outcomes only (no patient data), but print only its size on failure.
      if (res.status !== 200) throw new Error(`transaction Bundle for ${trust.ods} failed: HTTP ${res.status}: ${text.slice(0, 400)}`);
      bundleMs.push(Number(process.hrtime.bigint() - t0) / 1e6);
      written += entries.length;
      if (Date.now() - lastReport > 10_000) {
        lastReport = Date.now();
        const s = Number(process.hrtime.bigint() - started) / 1e9;
        log(`seeded ${fmt(written)} / ${fmt(o.pointers)} pointers (${fmt(written / s)}/s)`);
      }
    }
  };
  await Promise.all(Array.from({ length: o.publishConcurrency }, () => worker()));
  const seconds = Number(process.hrtime.bigint() - started) / 1e9;
  bundleMs.sort((a, b) => a - b);
  return {
    pointers: written,
    seconds,
    perSecond: written / seconds,
    bundles: bundleMs.length,
    bundleMsP50: bundleMs[Math.floor(bundleMs.length / 2)] ?? 0,
    bundleMsMax: bundleMs[bundleMs.length - 1] ?? 0,
  };
}

/** Marks the schema as seeded at this scale, so that `--reuse` can skip the seed next time. */
export async function recordSeed(db: Database, o: BenchOptions, trusts: Trust[]): Promise<void> {
  await db.exec('create table if not exists bench_seed (pointers integer not null, patients integer not null, trusts text not null, seeded_at timestamptz not null default now())');
  await db.query('insert into bench_seed (pointers, patients, trusts) values ($1, $2, $3)', [o.pointers, o.patients, JSON.stringify(trusts)]);
}

/** The trusts of an earlier seed at exactly this scale, or undefined when the schema must be seeded again. */
export async function previousSeed(db: Database, o: BenchOptions): Promise<Trust[] | undefined> {
  const t = await db.query<{ n: number }>(`select count(*)::int as n from information_schema.tables where table_schema = $1 and table_name = 'bench_seed'`, [BENCH_SCHEMA]);
  if ((t.rows[0]?.n ?? 0) === 0) return undefined;
  const r = await db.query<{ trusts: string }>('select trusts from bench_seed where pointers = $1 and patients = $2 order by seeded_at desc limit 1', [o.pointers, o.patients]);
  const row = r.rows[0];
  if (!row) return undefined;
  const count = await db.query<{ n: number }>('select count(*)::int as n from imaging_study');
  return count.rows[0]?.n === o.pointers ? (JSON.parse(row.trusts) as Trust[]) : undefined;
}
