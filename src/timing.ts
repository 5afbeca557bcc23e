/** Where the time of an operation goes, phase by phase, for --json output and the benchmarks. */
export class PhaseTimer {
  private last = process.hrtime.bigint();
  readonly phases: Record<string, number> = {};

  /** Close the current phase under `name`. */
  mark(name: string): void {
    const now = process.hrtime.bigint();
    this.phases[name] = (this.phases[name] ?? 0) + Number(now - this.last) / 1e6;
    this.last = now;
  }
}
