/**
 * A progress bar on stderr, drawn only when stderr is a terminal and the work has already
 * taken more than a second (short dumps stay quiet). Work runs synchronously (ptrace must
 * stay on one thread), so the bar is redrawn from the progress callback, at most 10 times a second.
 * STASIS_PROGRESS_DELAY_MS changes the second (the tests set 0 to see the bar of any dump).
 */
export class ProgressBar {
  private readonly label: string;
  private readonly started = Date.now();
  private lastDraw = 0;
  private drawn = false;
  private readonly enabled: boolean;
  private readonly delayMs: number;

  constructor(label: string, enabled = process.stderr.isTTY === true, delayMs = Number(process.env.STASIS_PROGRESS_DELAY_MS ?? 1000)) {
    this.label = label;
    this.enabled = enabled;
    this.delayMs = Number.isFinite(delayMs) ? delayMs : 1000;
  }

  update = (done: number, total: number): void => {
    if (!this.enabled) return;
    const now = Date.now();
    if (now - this.started < this.delayMs || (this.drawn && now - this.lastDraw < 100)) return;
    this.lastDraw = now;
    this.drawn = true;
    const width = 30;
    const fraction = total > 0 ? Math.min(1, done / total) : 1;
    const filled = Math.round(fraction * width);
    const mib = (n: number) => (n / 1048576).toFixed(0);
    process.stderr.write(`\r${this.label} [${'#'.repeat(filled)}${' '.repeat(width - filled)}] ${mib(done)}/${mib(total)} MiB`);
  };

  done(): void {
    if (this.drawn) process.stderr.write('\r\x1b[K');
  }
}
