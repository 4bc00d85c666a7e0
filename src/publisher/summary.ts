/**
 * Run totals for the end-of-run summary. Reasons are codes and counts; failures list study UIDs.
 */
export class Summary {
  published = 0;
  updated = 0;
  unchanged = 0;
  mapped = 0;
  /** QIDO studies whose fingerprint matches the last run: not re-sent. */
  known = 0;
  readonly skipped = new Map<string, number>();
  readonly failed = new Map<string, string[]>();

  skip(reason: string, count = 1): void {
    this.skipped.set(reason, (this.skipped.get(reason) ?? 0) + count);
  }

  fail(reason: string, studyUid: string): void {
    this.failed.set(reason, [...(this.failed.get(reason) ?? []), studyUid]);
  }

  get failedCount(): number {
    return [...this.failed.values()].reduce((n, uids) => n + uids.length, 0);
  }

  get skippedCount(): number {
    return [...this.skipped.values()].reduce((n, c) => n + c, 0);
  }

  render(dryRun: boolean, rate: number): string {
    const lines = dryRun
      ? [`dry run: ${this.mapped} studies mapped (nothing sent)`]
      : [`published ${this.published} · updated ${this.updated} · unchanged ${this.unchanged} · skipped ${this.skippedCount} · failed ${this.failedCount} · ${rate.toFixed(1)} studies/s`];
    if (this.known > 0) lines.push(`  ${this.known} studies already published and unchanged since the last run (not re-sent)`);
    for (const [reason, count] of [...this.skipped].sort()) lines.push(`  skipped ${count}: ${reason}`);
    for (const [reason, uids] of this.failed) {
      lines.push(`  failed ${uids.length}: ${reason}`);
      for (const uid of uids.slice(0, 20)) lines.push(`    study ${uid}`);
      if (uids.length > 20) lines.push(`    … and ${uids.length - 20} more`);
    }
    return `${lines.join('\n')}\n`;
  }
}
