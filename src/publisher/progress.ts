/**
 * Progress for a person (a redrawn bar with studies/s and ETA on a TTY) or for a log (plain lines).
 * Lines carry counts and UIDs only, never patient data.
 */
export interface Output { write(text: string): unknown }

export class Progress {
  private done = 0;
  private total: number | undefined;
  private startedAt = 0;
  private lastDraw = 0;
  private barShown = false;

  constructor(private readonly out: Output, private readonly tty: boolean, private readonly now: () => number = Date.now) {}

  start(total?: number): void {
    this.total = total;
    this.done = 0;
    this.startedAt = this.now();
  }

  setTotal(total: number): void {
    this.total = total;
  }

  advance(studies: number): void {
    this.done += studies;
    if (this.tty) {
      if (this.now() - this.lastDraw >= 100 || this.done === this.total) this.draw();
    } else {
      this.out.write(`progress: ${this.status()}\n`);
    }
  }

  /** A log line; on a TTY the bar is cleared first and redrawn after. */
  log(line: string): void {
    if (this.tty && this.barShown) this.out.write('\r\x1b[2K');
    this.out.write(`${line}\n`);
    if (this.tty && this.barShown) this.draw();
  }

  finish(): void {
    if (this.tty && this.barShown) {
      this.draw();
      this.out.write('\n');
      this.barShown = false;
    }
  }

  rate(): number {
    const seconds = (this.now() - this.startedAt) / 1000;
    return seconds > 0 ? this.done / seconds : 0;
  }

  private status(): string {
    const rate = this.rate();
    const of = this.total !== undefined ? `/${this.total}` : '';
    const eta = this.total !== undefined && rate > 0 ? ` · ETA ${formatDuration((this.total - this.done) / rate)}` : '';
    return `${this.done}${of} studies · ${rate.toFixed(1)} studies/s${eta}`;
  }

  private draw(): void {
    this.lastDraw = this.now();
    const width = 30;
    const filled = this.total ? Math.round((width * Math.min(this.done, this.total)) / this.total) : 0;
    const bar = this.total ? `[${'#'.repeat(filled)}${'.'.repeat(width - filled)}] ` : '';
    this.out.write(`\r\x1b[2K${bar}${this.status()}`);
    this.barShown = true;
  }
}

export function formatDuration(seconds: number): string {
  const s = Math.max(0, Math.round(seconds));
  const h = Math.floor(s / 3600);
  const m = Math.floor((s % 3600) / 60);
  const rest = String(s % 60).padStart(2, '0');
  return h > 0 ? `${h}:${String(m).padStart(2, '0')}:${rest}` : `${m}:${rest}`;
}
