/*
 * How a pass cuts a volume into batches (the unit of a GROUP digest). Full batches are
 * `batchLeaves` leaves, aligned. The first full batch is cut into a ramp up of 1/16, 1/16, 1/8, 1/4
 * and 1/2 of it, so the first data moves after a 1 MiB read and hash on each side instead of a
 * 16 MiB one (the pipeline's fill time); the last batch into a ramp down of 1/2, 1/4, 1/8, 1/16 and
 * 1/16, so what is left once the last data has arrived (reading back and verifying the last batch)
 * is short (the pipeline's drain time). Batches are named by their first leaf, on both sides and on
 * the wire; the agent accepts any batch of up to MAX_BATCH_LEAVES leaves.
 */
export class BatchLayout {
  /** First leaves of the ramp batches, sorted; each runs to the next start (or the volume's end). */
  private readonly ramp: number[] = [];
  private readonly lastFull: number;

  constructor(
    private readonly leaves: number,
    private readonly batchLeaves: number,
  ) {
    this.lastFull = Math.floor(Math.max(0, leaves - 1) / batchLeaves) * batchLeaves;
    if (batchLeaves < 16 || batchLeaves % 16 !== 0) return;
    const s = batchLeaves / 16;
    const up = [0, s, 2 * s, 4 * s, 8 * s];
    const down = this.lastFull > 0 ? [0, 8 * s, 12 * s, 14 * s, 15 * s].map((o) => this.lastFull + o) : [];
    this.ramp = [...up, ...down].filter((first) => first < leaves);
  }

  /** The first leaf of the batch that holds `leaf`. */
  start(leaf: number): number {
    if (leaf < this.batchLeaves || leaf >= this.lastFull) {
      for (let k = this.ramp.length - 1; k >= 0; k -= 1) if (leaf >= this.ramp[k]!) return this.ramp[k]!;
    }
    return leaf - (leaf % this.batchLeaves);
  }

  /** Leaves in the batch that starts at `first`, up to the volume's end. */
  length(first: number): number {
    // A ramp batch ends at the next ramp start or at the end of the full batch it cuts.
    const fullEnd = first - (first % this.batchLeaves) + this.batchLeaves;
    const k = this.ramp.indexOf(first);
    const next = k >= 0 ? (this.ramp[k + 1] ?? fullEnd) : fullEnd;
    return Math.min(next, fullEnd, this.leaves) - first;
  }

  /** The first leaf of every batch, in order. */
  *firsts(): Generator<number> {
    for (let first = 0; first < this.leaves; first += this.length(first)) yield first;
  }
}
