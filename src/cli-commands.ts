import { auditVerifyCommand } from './audit/verify-command';
import { runPublish } from './publisher';
import { agreementCommands } from './access/agreement-command';

/** Commands other capabilities add to the CLI (publish, audit verify, ...). */
export interface CommandExtension {
  /** `publish`, or `audit verify` for a sub-command. */
  name: string;
  usage: string;
  run(args: string[], io: { out(line: string): void; err(line: string): void }): Promise<number>;
}

export const commandExtensions: CommandExtension[] = [];
commandExtensions.push(auditVerifyCommand());
commandExtensions.push({
  name: 'publish',
  usage: 'publish --from-dir PATH | --from-qido URL [--since DATE] --org ODS ...   publish DICOM as pointers (see locus publish --help)',
  run: async (args) => {
    return runPublish(args, { stdout: process.stdout, stderr: process.stderr, isTTY: Boolean(process.stdout.isTTY) });
  },
});
commandExtensions.push(...agreementCommands());
