import { execFile, execFileSync, fork, spawnSync } from 'node:child_process';
import type { ChildProcess } from 'node:child_process';
import { cpSync, readFileSync, writeFileSync } from 'node:fs';
import http from 'node:http';
import { join } from 'node:path';
import { loadDevIssuer } from '../src/access/dev-issuer';
import { testNhsNumber } from '../src/registry/nhs-number';
import { SOP_CLASS, uidFor, writePart10 } from '../test-data/generate-dicom';
import { startOrthanc } from '../test/publisher/orthanc';
import type { OrthancInstance } from '../test/publisher/orthanc';
import { BENCH_AUDIENCE, DEFAULT_DATABASE_URL, ISSUER_DIR, dropAndCreateSchema, fmt, log } from './common';

/**
 * Issue 6: retrieving a ~200 MB study through the registry's DICOMweb gateway versus straight
 * from the PACS (Orthanc), side by side in one run, with the gateway process's peak RSS.
 * The registry runs in its own process as in service: compiled JavaScript (no tsx in the
 * process whose memory is measured), on the bench PostgreSQL, schema `bench_gateway`. BENCH_GATEWAY_INSTANCES × BENCH_GATEWAY_INSTANCE_MB (default 100 × 2 MB).
 */
export const GATEWAY_SCHEMA = 'bench_gateway';

export interface GatewayFigures {
  directMBps: number;
  gatewayMBps: number;
  ratio: number;
  peakRssMB: number;
}

const MB = 1024 * 1024;

/** User + system CPU seconds a process has used so far (Linux /proc). */
function cpuSeconds(pid: number): number {
  try {
    const stat = readFileSync(`/proc/${pid}/stat`, 'utf8');
    const fields = stat.slice(stat.lastIndexOf(')') + 2).split(' ');
    return (Number(fields[11]) + Number(fields[12])) / 100;
  } catch {
    return 0;
  }
}

function bigInstance(seed: string, i: number, bytes: number, nhs: string): Buffer {
  const side = Math.round(Math.sqrt(bytes / 2));
  const pixels = new Uint16Array(side * side);
  for (let p = 0; p < pixels.length; p++) pixels[p] = (p * 7 + i) & 0x0fff;
  return writePart10({
    SpecificCharacterSet: 'ISO_IR 192', StudyInstanceUID: uidFor(seed, 'study'), StudyDate: '20240115', StudyTime: '093000',
    AccessionNumber: 'BENCHGW1', StudyDescription: 'CT Chest (gateway benchmark)', StudyID: '1', PatientName: 'Synthetic^Bench', PatientID: nhs,
    PatientBirthDate: '19700101', PatientSex: 'O', SOPClassUID: SOP_CLASS.CT, SOPInstanceUID: uidFor(seed, 'instance', i), Modality: 'CT',
    SeriesInstanceUID: uidFor(seed, 'series', 0), SeriesNumber: 1, InstanceNumber: i + 1, BodyPartExamined: 'CHEST', Manufacturer: 'Locus synthetic',
    SamplesPerPixel: 1, PhotometricInterpretation: 'MONOCHROME2', Rows: side, Columns: side, BitsAllocated: 16, BitsStored: 12, HighBit: 11, PixelRepresentation: 0,
    PixelData: [pixels.buffer], _vrMap: { PixelData: 'OW' },
  });
}

/**
 * GETs a URL and drains it, counting bytes: the same client for both paths. curl when the machine
 * has it (native code, as a viewer's HTTP stack is): node:http copies every body chunk and its
 * garbage then costs the box more CPU than the gateway does, which would blur the comparison.
 */
function drain(url: string, headers: Record<string, string>): Promise<{ bytes: number; seconds: number }> {
  return HAVE_CURL ? drainWithCurl(url, headers) : drainWithNode(url, headers);
}

const HAVE_CURL = spawnSync('curl', ['--version']).status === 0;

function drainWithCurl(url: string, headers: Record<string, string>): Promise<{ bytes: number; seconds: number }> {
  const args = ['-sS', '-o', '/dev/null', '-w', '%{http_code} %{size_download} %{time_total}', ...Object.entries(headers).flatMap(([k, v]) => ['-H', `${k}: ${v}`]), url];
  return new Promise((resolve, reject) => {
    execFile('curl', args, (err, out) => {
      if (err) return reject(err);
      const [status, bytes, seconds] = out.trim().split(' ');
      if (status !== '200') return reject(new Error(`GET ${url.replace(/\?.*/, '')}: HTTP ${status}`));
      resolve({ bytes: Number(bytes), seconds: Number(seconds) });
    });
  });
}

function drainWithNode(url: string, headers: Record<string, string>): Promise<{ bytes: number; seconds: number }> {
  const started = process.hrtime.bigint();
  return new Promise((resolve, reject) => {
    http
      .get(url, { headers, agent: false }, (res) => {
        if (res.statusCode !== 200) {
          reject(new Error(`GET ${url.replace(/\?.*/, '')}: HTTP ${res.statusCode}`));
          res.resume();
          return;
        }
        let bytes = 0;
        res.on('data', (c: Buffer) => {
          bytes += c.length;
        });
        res.on('end', () => resolve({ bytes, seconds: Number(process.hrtime.bigint() - started) / 1e9 }));
        res.on('error', reject);
      })
      .on('error', reject);
  });
}

function rssMB(pid: number): number {
  const m = /VmRSS:\s+(\d+) kB/.exec(readFileSync(`/proc/${pid}/status`, 'utf8'));
  return m ? Number(m[1]) / 1024 : 0;
}

/** Where the registry is compiled for the child (under dist/, which git ignores, so node_modules resolve). */
const CHILD_DIR = join(__dirname, '..', 'dist', 'bench-gateway');

/** The registry server as `node` runs it in service: compiled, with the bench's development issuer trusted. */
const CHILD_SOURCE = `'use strict';
const { loadConfig } = require('./src/config');
const { loadDevIssuer } = require('./src/access/dev-issuer');
const { startLocus } = require('./src/server');
const { openDatabase } = require('./src/store/open');
const { createLogger } = require('./src/log');
(async () => {
  const base = loadConfig({ ...process.env, PORT: '0', HOST: '127.0.0.1' });
  const issuer = await loadDevIssuer(process.env.BENCH_ISSUER_DIR);
  const config = { ...base, trustedIssuers: [...base.trustedIssuers, issuer.trusted], devIssuer: false };
  const db = await openDatabase({ databaseUrl: config.databaseUrl, searchPath: process.env.BENCH_SCHEMA, poolSize: 4 });
  const locus = await startLocus(config, { db, logger: createLogger('warn') });
  config.baseUrl = locus.url;
  const stop = () => { locus.close().then(() => db.close()).finally(() => process.exit(0)); };
  process.on('SIGTERM', stop);
  process.on('disconnect', stop);
  process.send({ url: locus.url });
})().catch((e) => { process.stderr.write('gateway bench child: ' + (e && e.message) + '\\n'); process.exit(1); });
`;

function compileRegistry(): string {
  const root = join(__dirname, '..');
  execFileSync(process.execPath, [join(root, 'node_modules', 'typescript', 'bin', 'tsc'), '-p', join(root, 'tsconfig.build.json'), '--outDir', CHILD_DIR], { stdio: 'inherit' });
  cpSync(join(root, 'src', 'store', 'migrations'), join(CHILD_DIR, 'src', 'store', 'migrations'), { recursive: true });
  const entry = join(CHILD_DIR, 'gateway-child.js');
  writeFileSync(entry, CHILD_SOURCE);
  return entry;
}

async function startChild(entry: string, databaseUrl: string): Promise<{ child: ChildProcess; url: string }> {
  const child = fork(entry, [], {
    execArgv: process.env.BENCH_CHILD_CPU_PROF ? ['--cpu-prof', `--cpu-prof-dir=${process.env.BENCH_CHILD_CPU_PROF}`] : [],
    env: { ...process.env, DATABASE_URL: databaseUrl, LOCUS_AUDIENCE: BENCH_AUDIENCE, LOCUS_LOG_LEVEL: 'warn', BENCH_ISSUER_DIR: ISSUER_DIR, BENCH_SCHEMA: GATEWAY_SCHEMA },
    stdio: ['ignore', 'inherit', 'inherit', 'ipc'],
  });
  const url = await new Promise<string>((resolve, reject) => {
    child.once('message', (m: { url?: string }) => (m.url ? resolve(m.url) : reject(new Error('registry child did not start'))));
    child.once('exit', (code) => reject(new Error(`registry child exited with ${code}`)));
  });
  return { child, url };
}

async function fhir(url: string, token: string, method: string, body?: unknown): Promise<Record<string, unknown>> {
  const res = await fetch(url, { method, headers: { authorization: `Bearer ${token}`, 'content-type': 'application/fhir+json' }, body: body ? JSON.stringify(body) : undefined });
  const json = (await res.json()) as Record<string, unknown>;
  if (!res.ok) throw new Error(`${method} ${url}: HTTP ${res.status} ${JSON.stringify(json).slice(0, 300)}`);
  return json;
}

export async function benchGateway(): Promise<GatewayFigures> {
  const instances = Number(process.env.BENCH_GATEWAY_INSTANCES ?? 100);
  const instanceMB = Number(process.env.BENCH_GATEWAY_INSTANCE_MB ?? 2);
  const rounds = Math.max(1, Number(process.env.BENCH_GATEWAY_ROUNDS ?? 11));
  const databaseUrl = process.env.DATABASE_URL ?? DEFAULT_DATABASE_URL;
  const nhs = testNhsNumber(990);
  const seed = 'bench-gateway';
  let orthanc: OrthancInstance | undefined;
  let child: ChildProcess | undefined;
  try {
    orthanc = await startOrthanc('BENCHPACS');
    log(`gateway: loading ${instances} × ${instanceMB} MB instances into Orthanc`);
    for (let i = 0; i < instances; i++) await orthanc.upload(bigInstance(seed, i, instanceMB * MB, nhs));
    const uid = uidFor(seed, 'study');
    log('gateway: compiling the registry for its own process');
    const entry = compileRegistry();
    await dropAndCreateSchema(databaseUrl, GATEWAY_SCHEMA);
    const started = await startChild(entry, databaseUrl);
    child = started.child;
    const issuer = await loadDevIssuer(ISSUER_DIR);
    const admin = await issuer.mint({ org: 'ADMIN', role: 'admin', audience: BENCH_AUDIENCE });
    const org = await fhir(`${started.url}/fhir/Organization`, admin, 'POST', {
      resourceType: 'Organization', identifier: [{ system: 'https://fhir.nhs.uk/Id/ods-organization-code', value: 'RB01' }], active: true, name: 'Bench Trust',
      type: [{ coding: [{ system: 'https://locus.nhs.example/fhir/CodeSystem/organization-kind', code: 'network-trust' }] }],
    });
    const ep = await fhir(`${started.url}/fhir/Endpoint`, admin, 'POST', {
      resourceType: 'Endpoint', status: 'active', name: 'Bench PACS', address: orthanc.dicomWebRoot, managingOrganization: { reference: `Organization/${org.id as string}` },
      connectionType: { system: 'http://terminology.hl7.org/CodeSystem/endpoint-connection-type', code: 'dicom-wado-rs' },
      payloadType: [{ coding: [{ system: 'http://terminology.hl7.org/CodeSystem/endpoint-payload-type', code: 'DICOM' }] }],
    });
    const publisher = await issuer.mint({ org: 'RB01', role: 'publisher', audience: BENCH_AUDIENCE });
    const study = await fhir(`${started.url}/fhir/ImagingStudy`, publisher, 'POST', {
      resourceType: 'ImagingStudy', status: 'available', identifier: [{ system: 'urn:dicom:uid', value: `urn:oid:${uid}` }],
      modality: [{ system: 'http://dicom.nema.org/resources/ontology/DCM', code: 'CT' }], subject: { identifier: { system: 'https://fhir.nhs.uk/Id/nhs-number', value: nhs } },
      started: '2024-01-15T09:30:00Z', endpoint: [{ reference: `Endpoint/${ep.id as string}` }], numberOfSeries: 1, numberOfInstances: instances,
    });
    const clinician = await issuer.mint({ org: 'RB01', role: 'clinician', audience: BENCH_AUDIENCE });
    const accept = { accept: 'multipart/related; type="application/dicom"; transfer-syntax=*' };
    log(`gateway: registry process RSS before any transfer ${fmt(rssMB(child.pid as number))} MB`);
    const direct: number[] = [];
    const viaGateway: number[] = [];
    let peak = 0;
    // One untimed transfer each way first: Orthanc's file cache and both connection paths warm.
    await drain(`${orthanc.dicomWebRoot}/studies/${uid}`, accept);
    {
      const resolved = await fhir(`${started.url}/fhir/ImagingStudy/${study.id as string}/$resolve`, clinician, 'GET');
      const params = resolved.parameter as { name: string; valueUrl?: string; part?: { name: string; valueString?: string }[] }[];
      const token = params.find((p) => p.name === 'retrievalToken')?.part?.find((p) => p.name === 'token')?.valueString as string;
      await drain(params.find((p) => p.name === 'gatewayStudyUrl')?.valueUrl as string, { ...accept, authorization: `Bearer ${token}` });
    }
    const ratios: number[] = [];
    const gatewayCpu: number[] = [];
    const pacsDirectCpu: number[] = [];
    const pacsViaGatewayCpu: number[] = [];
    for (let r = 0; r < rounds; r++) {
      // A fresh $resolve each round, as a viewer would (tokens last five minutes).
      const resolved = await fhir(`${started.url}/fhir/ImagingStudy/${study.id as string}/$resolve`, clinician, 'GET');
      const params = resolved.parameter as { name: string; valueUrl?: string; part?: { name: string; valueString?: string }[] }[];
      const gatewayUrl = params.find((p) => p.name === 'gatewayStudyUrl')?.valueUrl as string;
      const token = params.find((p) => p.name === 'retrievalToken')?.part?.find((p) => p.name === 'token')?.valueString as string;
      const pid = child.pid as number;
      const viaGatewayOnce = async (): Promise<{ bytes: number; seconds: number }> => {
        const sampler = setInterval(() => {
          peak = Math.max(peak, rssMB(pid));
        }, 20);
        try {
          return await drain(gatewayUrl, { ...accept, authorization: `Bearer ${token}` });
        } finally {
          clearInterval(sampler);
        }
      };
      // The two retrievals of a round run back to back, in alternating order, so that drift on a
      // shared machine falls on both and neither always goes first.
      const directOnce = (): Promise<{ bytes: number; seconds: number }> => drain(`${orthanc!.dicomWebRoot}/studies/${uid}`, accept);
      const timedDirect = async (): Promise<{ bytes: number; seconds: number }> => {
        const p0 = cpuSeconds(orthanc!.pid);
        const out = await directOnce();
        pacsDirectCpu.push(cpuSeconds(orthanc!.pid) - p0);
        return out;
      };
      const timedGateway = async (): Promise<{ bytes: number; seconds: number }> => {
        const g0 = cpuSeconds(pid);
        const p0 = cpuSeconds(orthanc!.pid);
        const out = await viaGatewayOnce();
        gatewayCpu.push(cpuSeconds(pid) - g0);
        pacsViaGatewayCpu.push(cpuSeconds(orthanc!.pid) - p0);
        return out;
      };
      const [d, g] = r % 2 === 0 ? [await timedDirect(), await timedGateway()] : await timedGateway().then(async (first) => [await timedDirect(), first] as const);
      if (g.bytes !== d.bytes) throw new Error(`the gateway sent ${g.bytes} bytes, the PACS ${d.bytes}`);
      direct.push(d.bytes / MB / d.seconds);
      viaGateway.push(g.bytes / MB / g.seconds);
      ratios.push((viaGateway[r] as number) / (direct[r] as number));
      log(`gateway round ${r + 1}: ${fmt(d.bytes / MB)} MB · direct ${fmt(direct[r] as number)} MB/s · gateway ${fmt(viaGateway[r] as number)} MB/s · ratio ${fmt((ratios[r] as number) * 100)} % · peak RSS ${fmt(peak)} MB`);
    }
    const median = (xs: number[]): number => [...xs].sort((a, b) => a - b)[Math.floor(xs.length / 2)] as number;
    const directMBps = median(direct);
    const gatewayMBps = median(viaGateway);
    log(`gateway: CPU per retrieval (median): registry ${fmt(median(gatewayCpu) * 1000)} ms; Orthanc ${fmt(median(pacsDirectCpu) * 1000)} ms direct, ${fmt(median(pacsViaGatewayCpu) * 1000)} ms through the gateway`);
    return { directMBps, gatewayMBps, ratio: median(ratios), peakRssMB: peak };
  } finally {
    if (child && child.exitCode === null) {
      const exited = new Promise((r) => child!.once('exit', r));
      child.kill('SIGTERM');
      await exited;
    }
    await orthanc?.stop();
  }
}

if (require.main === module) {
  benchGateway()
    .then((f) => process.stdout.write(`gateway retrieval: direct ${fmt(f.directMBps)} MB/s · through the gateway ${fmt(f.gatewayMBps)} MB/s · ratio ${fmt(f.ratio * 100)}% · gateway peak RSS ${fmt(f.peakRssMB)} MB\n`))
    .catch((e: unknown) => {
      process.stderr.write(`gateway bench: ${e instanceof Error ? e.stack : String(e)}\n`);
      process.exit(1);
    });
}
