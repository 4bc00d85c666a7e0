import { parseArgs } from 'node:util';
import { ZodError } from 'zod';
import type { CommandExtension } from '../cli-commands';
import { loadConfig } from '../config';
import type { Database } from '../store/database';
import { openDatabase } from '../store/open';
import { addAgreement, categoryNames, endAgreement, listAgreements } from './agreements';

async function defaultOpen(): Promise<Database> {
  const config = loadConfig();
  return openDatabase({ databaseUrl: config.databaseUrl, dataDir: config.dataDir });
}

/**
 * `locus agreement add|list|end`: network administrators manage sharing agreements. Running
 * servers pick changes up within their policy refresh interval (5 s). On the embedded database
 * stop the server first: PGlite has one process.
 */
export function agreementCommands(open: () => Promise<Database> = defaultOpen): CommandExtension[] {
  const withDb = async <T>(work: (db: Database) => Promise<T>): Promise<T> => {
    const db = await open();
    try {
      return await work(db);
    } finally {
      await db.close();
    }
  };
  return [
    {
      name: 'agreement add',
      usage: 'agreement add --provider ODS --recipient ODS --from DATE [--to DATE] [--categories study,report] --description TEXT',
      async run(args, io) {
        const { values } = parseArgs({
          args,
          options: { provider: { type: 'string' }, recipient: { type: 'string' }, from: { type: 'string' }, to: { type: 'string' }, categories: { type: 'string' }, description: { type: 'string' } },
          strict: true,
        });
        try {
          const row = await withDb((db) =>
            addAgreement(db, {
              provider: values.provider ?? '',
              recipient: values.recipient ?? '',
              start: values.from ?? '',
              end: values.to,
              categories: values.categories ? (values.categories.split(',') as ('study' | 'report')[]) : [],
              description: values.description ?? '',
            }),
          );
          io.out(`agreement ${row.id}: ${row.provider_ods} shares ${categoryNames(row.categories)} pointers with ${row.recipient_ods} from ${row.period_start.toISOString()}${row.period_end ? ` to ${row.period_end.toISOString()}` : ''}`);
          return 0;
        } catch (e) {
          io.err(`locus agreement add: ${e instanceof ZodError ? e.issues.map((i) => `${i.path.join('.') || 'agreement'}: ${i.message}`).join('; ') : e instanceof Error ? e.message : String(e)}`);
          return 2;
        }
      },
    },
    {
      name: 'agreement list',
      usage: 'agreement list                   list sharing agreements',
      async run(_args, io) {
        const rows = await withDb((db) => listAgreements(db));
        if (rows.length === 0) io.out('no sharing agreements');
        for (const r of rows) {
          io.out(`${r.id}  ${r.provider_ods} -> ${r.recipient_ods}  ${categoryNames(r.categories)}  ${r.period_start.toISOString().slice(0, 10)}..${r.period_end ? r.period_end.toISOString().slice(0, 10) : ''}  ${r.description}`);
        }
        return 0;
      },
    },
    {
      name: 'agreement end',
      usage: 'agreement end ID [--on DATE]    end an agreement (now by default)',
      async run(args, io) {
        const { values, positionals } = parseArgs({ args, options: { on: { type: 'string' } }, allowPositionals: true, strict: true });
        const id = positionals[0];
        const at = values.on ? new Date(values.on) : new Date();
        if (!id || Number.isNaN(at.getTime())) {
          io.err('locus agreement end: give the agreement id, and --on a valid date if not now');
          return 2;
        }
        const ended = await withDb((db) => endAgreement(db, id, at));
        io.out(ended ? `agreement ${id} ends ${at.toISOString()}` : `no open agreement ${id}`);
        return ended ? 0 : 1;
      },
    },
  ];
}
