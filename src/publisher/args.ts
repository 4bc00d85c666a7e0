import { availableParallelism } from 'node:os';
/**
 * `locus publish` arguments, validated with zod at the edge.
 */
import { z } from 'zod';
import { patientIdentityConfigSchema, type PatientIdentityConfig } from '../dicom/patient-identity';

export const publishUsage = `Usage: locus publish (--from-dir PATH | --from-qido URL --since DATE) --org ODS [options]

Publishes imaging pointers (ImagingStudy + DocumentReference) for the studies a trust holds.

Source (one of):
  --from-dir PATH            walk a folder tree of DICOM Part 10 files (headers only)
  --from-qido URL            a PACS's DICOMweb root (QIDO-RS), e.g. http://pacs/dicom-web
  --since DATE               first QIDO run: studies from this StudyDate (YYYY-MM-DD); later
                             runs continue from the state file's watermark
  --state FILE               QIDO watermark/fingerprint file (default .locus-publish-state.json)

Registry:
  --fhir URL                 Locus FHIR base (default http://localhost:8080/fhir)
  --org ODS                  the custodian organisation's ODS code (required)
  --endpoint Endpoint/<id>   the custodian's WADO-RS Endpoint (default: looked up by --org)
  --wado URL                 WADO-RS base for attachment URLs (default: the Endpoint's address)
  --token TOKEN              bearer token (default: $LOCUS_TOKEN)
  --client-id ID --client-secret SECRET --token-url URL
                             fetch a token with the OAuth client-credentials grant instead

Mapping:
  --patient-id-source PatientID|OtherPatientIDsSequence   where the NHS number is (default PatientID)
  --patient-id-issuer ISSUER required IssuerOfPatientID (required with OtherPatientIDsSequence)
  --time-zone ZONE           zone of DICOM times without an offset (default Europe/London)

Run:
  --batch-size N             studies per transaction Bundle (default 100)
  --concurrency N            parallel file reads / QIDO queries (default 8)
  --workers N                threads reading DICOM headers for --from-dir (default: the cores, at most 4; 0 = none)
  --max-retries N            retries on 429, 5xx and network errors (default 5)
  --dry-run                  print the transaction Bundles (JSON, one per line) instead of sending
  --help                     this text

Exit status: 0 when nothing failed (skipped studies are reported, not failures), 1 when a
study failed to publish or the run could not complete, 2 for bad arguments.
`;

const url = z.url({ protocol: /^https?$/ });
const positiveInt = (fallback: number) => z.coerce.number().int().positive().default(fallback);
const isoDate = z.string().regex(/^\d{4}-?\d{2}-?\d{2}$/, 'use YYYY-MM-DD').transform((d) => d.replace(/-/g, ''));

export const publishArgsSchema = z.object({
  fromDir: z.string().min(1).optional(),
  fromQido: url.optional(),
  since: isoDate.optional(),
  state: z.string().min(1).default('.locus-publish-state.json'),
  fhir: url.default('http://localhost:8080/fhir'),
  org: z.string().regex(/^[A-Z0-9]{3,10}$/i, 'an ODS code is 3–10 letters/digits').transform((o) => o.toUpperCase()).optional(),
  endpoint: z.string().regex(/^Endpoint\/[A-Za-z0-9\-.]{1,64}$/, 'use Endpoint/<id>').optional(),
  wado: url.optional(),
  token: z.string().min(1).optional(),
  clientId: z.string().min(1).optional(),
  clientSecret: z.string().min(1).optional(),
  tokenUrl: url.optional(),
  patientIdSource: z.enum(['PatientID', 'OtherPatientIDsSequence']).default('PatientID'),
  patientIdIssuer: z.string().min(1).optional(),
  timeZone: z.string().refine((tz) => { try { new Intl.DateTimeFormat('en-GB', { timeZone: tz }); return true; } catch { return false; } }, 'unknown time zone').default('Europe/London'),
  batchSize: positiveInt(100),
  concurrency: positiveInt(8),
  workers: z.coerce.number().int().min(0).max(16).default(Math.min(4, availableParallelism())),
  maxRetries: z.coerce.number().int().min(0).default(5),
  dryRun: z.boolean().default(false),
  help: z.boolean().default(false),
}).superRefine((a, ctx) => {
  if (a.help) return;
  if (!a.org) ctx.addIssue({ code: 'custom', path: ['org'], message: 'the custodian ODS code is required' });
  if (!!a.fromDir === !!a.fromQido) ctx.addIssue({ code: 'custom', message: 'give exactly one of --from-dir or --from-qido' });
  const cc = [a.clientId, a.clientSecret, a.tokenUrl].filter(Boolean).length;
  if (cc !== 0 && cc !== 3) ctx.addIssue({ code: 'custom', message: '--client-id, --client-secret and --token-url go together' });
  if (a.patientIdSource === 'OtherPatientIDsSequence' && !a.patientIdIssuer) {
    ctx.addIssue({ code: 'custom', message: '--patient-id-issuer is required with --patient-id-source OtherPatientIDsSequence' });
  }
});
export type PublishArgs = z.infer<typeof publishArgsSchema>;

const BOOLEAN_FLAGS = new Set(['dry-run', 'help']);
const camel = (flag: string): string => flag.replace(/-([a-z])/g, (_, c: string) => c.toUpperCase());

export function parsePublishArgs(argv: string[], env: Record<string, string | undefined> = {}): { args: PublishArgs } | { error: string } {
  const raw: Record<string, unknown> = {};
  for (let i = 0; i < argv.length; i++) {
    const token = argv[i]!;
    const m = /^--([a-z][a-z-]*)(?:=(.*))?$/.exec(token);
    if (!m) return { error: `unexpected argument: ${token}` };
    const [, flag, inline] = m as unknown as [string, string, string | undefined];
    const key = camel(flag);
    if (!(key in publishArgsSchema.shape)) return { error: `unknown option --${flag}` };
    if (BOOLEAN_FLAGS.has(flag)) raw[key] = true;
    else if (inline !== undefined) raw[key] = inline;
    else if (i + 1 < argv.length) raw[key] = argv[++i];
    else return { error: `--${flag} needs a value` };
  }
  if (raw.token === undefined && env.LOCUS_TOKEN) raw.token = env.LOCUS_TOKEN;
  const parsed = publishArgsSchema.safeParse(raw);
  if (!parsed.success) {
    return { error: parsed.error.issues.map((i) => (i.path.length ? `--${String(i.path[0]).replace(/[A-Z]/g, (c) => `-${c.toLowerCase()}`)}: ${i.message}` : i.message)).join('; ') };
  }
  return { args: parsed.data };
}

export function identityConfig(args: PublishArgs): PatientIdentityConfig {
  return patientIdentityConfigSchema.parse({ source: args.patientIdSource, ...(args.patientIdIssuer ? { issuer: args.patientIdIssuer } : {}) });
}
