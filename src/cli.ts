import { parseArgs } from 'node:util';
import { loadDevIssuer } from './access/dev-issuer';
import { ROLES } from './access/principal';
import type { Role } from './access/principal';
import { ConfigError, loadConfig } from './config';
import { DEMO_PATIENTS, seedDemo } from './demo/seed';
import { startLocus } from './server';
import { openDatabase } from './store/open';
import { commandExtensions } from './cli-commands';

export const USAGE = `locus — an imaging pointer registry over FHIR R4

Usage: locus <command> [options]

Commands:
  serve [--no-demo]          start the registry (embedded PGlite unless DATABASE_URL is set);
                             on first start it seeds demo data and prints a clinician token
  token --org ODS --role R   print a development token the local server accepts
        [--purpose TREAT|ETREAT] [--reason TEXT] [--scope "..."] [--sub ID] [--expires SECONDS]
  migrate                    apply database migrations and exit
${commandExtensions.map((c) => `  ${c.usage}`).join('\n')}
Roles: ${ROLES.join(', ')}
Environment: PORT, HOST, DATABASE_URL, LOCUS_DATA_DIR, LOCUS_BASE_URL, LOCUS_TRUSTED_ISSUERS,
  LOCUS_DEV_ISSUER, LOCUS_LOG_LEVEL (see README).`;

interface Io {
  out(line: string): void;
  err(line: string): void;
}

const stdio: Io = { out: (l) => process.stdout.write(`${l}\n`), err: (l) => process.stderr.write(`${l}\n`) };

async function serve(args: string[], io: Io): Promise<number> {
  const { values } = parseArgs({ args, options: { 'no-demo': { type: 'boolean' }, demo: { type: 'boolean' } }, strict: true });
  const config = loadConfig();
  const db = await openDatabase({ databaseUrl: config.databaseUrl, dataDir: config.dataDir, poolSize: config.poolSize });
  const seeded = !values['no-demo'] && !config.databaseUrl ? await seedDemo(db) : values.demo ? await seedDemo(db) : false;
  const locus = await startLocus(config, { db });
  io.out(`Locus is listening on ${locus.url} (FHIR base ${config.baseUrl}/fhir, database ${db.kind}${db.kind === 'pglite' ? ` in ${config.dataDir}` : ''})`);
  if (seeded) io.out('Demo data seeded: West Midlands trusts, their endpoints and pointers for test patients.');
  if (locus.devIssuer) {
    const token = await locus.devIssuer.mint({ org: 'RRK', role: 'clinician', audience: config.audience, expiresInSeconds: 12 * 3600, name: 'Dr Demo Clinician' });
    io.out('\nA clinician token at RRK (12 hours):\n');
    io.out(token);
    io.out('\nTry:\n');
    io.out(`  curl -s -H "Authorization: Bearer $TOKEN" '${config.baseUrl}/fhir/ImagingStudy?patient.identifier=https://fhir.nhs.uk/Id/nhs-number|${DEMO_PATIENTS.shared}'`);
    io.out(`\nMore tokens: npx locus token --org RJE --role clinician   (roles: ${ROLES.join(', ')})`);
  }
  const stop = async (): Promise<void> => {
    await locus.close();
    await db.close();
    process.exit(0);
  };
  process.once('SIGINT', () => void stop());
  process.once('SIGTERM', () => void stop());
  return -1; // keep running
}

async function token(args: string[], io: Io): Promise<number> {
  const { values } = parseArgs({
    args,
    options: {
      org: { type: 'string' },
      role: { type: 'string', default: 'clinician' },
      purpose: { type: 'string', default: 'TREAT' },
      reason: { type: 'string' },
      scope: { type: 'string' },
      sub: { type: 'string' },
      expires: { type: 'string', default: '3600' },
    },
    strict: true,
  });
  if (!values.org || !/^[A-Z0-9]{1,10}$/.test(values.org)) {
    io.err('locus token: --org needs an ODS code (capital letters and digits), e.g. --org RRK');
    return 2;
  }
  if (!(ROLES as readonly string[]).includes(values.role)) {
    io.err(`locus token: --role must be one of ${ROLES.join(', ')}`);
    return 2;
  }
  const config = loadConfig();
  if (config.databaseUrl && !config.devIssuer) {
    io.err('locus token: the development issuer is off (set LOCUS_DEV_ISSUER=true to use it with PostgreSQL)');
    return 2;
  }
  const issuer = await loadDevIssuer(config.dataDir);
  io.out(
    await issuer.mint({
      org: values.org,
      role: values.role as Role,
      purposeOfUse: values.purpose.toUpperCase(),
      breakGlassReason: values.reason,
      scope: values.scope,
      sub: values.sub,
      audience: config.audience,
      expiresInSeconds: Number(values.expires) || 3600,
    }),
  );
  return 0;
}

async function migrateCommand(_args: string[], io: Io): Promise<number> {
  const config = loadConfig();
  const db = await openDatabase({ databaseUrl: config.databaseUrl, dataDir: config.dataDir });
  await db.close();
  io.out('migrations applied');
  return 0;
}

export async function main(argv: string[], io: Io = stdio): Promise<number> {
  const [command, ...rest] = argv;
  try {
    switch (command) {
      case 'serve': return await serve(rest, io);
      case 'token': return await token(rest, io);
      case 'migrate': return await migrateCommand(rest, io);
      case undefined:
      case '--help':
      case '-h':
      case 'help':
        io.out(USAGE);
        return command === undefined ? 2 : 0;
      default: {
        const ext = commandExtensions.find((c) => c.name === command || `${c.name} ${rest[0]}` === c.name);
        const sub = commandExtensions.find((c) => c.name === `${command} ${rest[0] ?? ''}`.trim());
        const found = sub ?? ext;
        if (found) return await found.run(sub ? rest.slice(1) : rest, io);
        io.err(`locus: unknown command ${command}\n`);
        io.out(USAGE);
        return 2;
      }
    }
  } catch (e) {
    if (e instanceof ConfigError) {
      io.err(e.message);
      return 1;
    }
    if (e instanceof TypeError && (e as { code?: string }).code?.startsWith('ERR_PARSE_ARGS')) {
      io.err(`locus ${command}: ${e.message}`);
      return 2;
    }
    throw e;
  }
}

if (require.main === module) {
  main(process.argv.slice(2)).then(
    (code) => {
      if (code >= 0) process.exitCode = code;
    },
    (e: unknown) => {
      process.stderr.write(`locus: ${e instanceof Error ? e.message : String(e)}\n`);
      process.exitCode = 1;
    },
  );
}
