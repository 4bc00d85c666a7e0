import { parseArgs } from 'node:util';
import type { CommandExtension } from '../cli-commands';
import { loadConfig } from '../config';
import type { Database } from '../store/database';
import { openDatabase } from '../store/open';
import { describeProblem, verifyAuditTrail } from './verify';

/** `locus audit verify`: walks every hash chain; exit 0 and OK, or exit 1 and the first break of each broken chain. */
export function auditVerifyCommand(open: () => Promise<Database> = defaultOpen): CommandExtension {
  return {
    name: 'audit verify',
    usage: 'audit verify [--concurrency N]  check the audit trail hash chains; exit 1 on tampering',
    async run(args, io) {
      const { values } = parseArgs({ args, options: { concurrency: { type: 'string' } }, strict: true });
      const concurrency = values.concurrency === undefined ? undefined : Number(values.concurrency);
      if (concurrency !== undefined && (!Number.isInteger(concurrency) || concurrency < 1 || concurrency > 16)) {
        io.err('locus audit verify: --concurrency must be a whole number from 1 to 16');
        return 2;
      }
      const db = await open();
      try {
        const result = await verifyAuditTrail(db, { concurrency: concurrency ?? (db.kind === 'postgres' ? 4 : 1) });
        const seconds = (result.ms / 1000).toFixed(1);
        if (result.ok) {
          io.out(`OK: ${result.events} audit events in ${result.chains} chains verified in ${seconds}s`);
          return 0;
        }
        io.out(`TAMPERED: ${result.problems.length} of ${result.chains} chains are broken (${result.events} events verified before the breaks, ${seconds}s)`);
        for (const p of result.problems) io.out(describeProblem(p));
        return 1;
      } finally {
        await db.close();
      }
    },
  };
}

async function defaultOpen(): Promise<Database> {
  const config = loadConfig();
  return openDatabase({ databaseUrl: config.databaseUrl, dataDir: config.dataDir, poolSize: Math.max(config.poolSize, 5) });
}
