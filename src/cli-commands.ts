/** Commands other capabilities add to the CLI (publish, audit verify, ...). */
export interface CommandExtension {
  /** `publish`, or `audit verify` for a sub-command. */
  name: string;
  usage: string;
  run(args: string[], io: { out(line: string): void; err(line: string): void }): Promise<number>;
}

export const commandExtensions: CommandExtension[] = [];
