/*
 * How a pass cuts a volume into batches (the unit of a GROUP digest). Full batches are
 * `batchLeaves` leaves, aligned; the first full batch is cut into a ramp of 1/16, 1/16, 1/8, 1/4
 * and 1/2 of it, so that the first data moves after a 1 MiB read and hash on each side instead of
 * a 16 MiB one (a pass's start-up latency is the pipeline's fill time). Batches are named by their
 * first leaf, on both sides and on the wire.
 */

function ramp(batchLeaves: number): number[] | null {
  if (batchLeaves < 16 || batchLeaves % 16 !== 0) return null;
  const s = batchLeaves / 16;
  return [0, s, 2 * s, 4 * s, 8 * s];
}

/** The first leaf of the batch that holds `leaf`. */
export function batchStart(leaf: number, batchLeaves: number): number {
  const starts = ramp(batchLeaves);
  if (starts && leaf < batchLeaves) {
    for (let k = starts.length - 1; k >= 0; k -= 1) if (leaf >= starts[k]!) return starts[k]!;
  }
  return leaf - (leaf % batchLeaves);
}

/** Leaves in the batch that starts at `first` (before the volume's end cuts it). */
export function batchLength(first: number, batchLeaves: number): number {
  const starts = ramp(batchLeaves);
  if (starts && first < batchLeaves) {
    const k = starts.indexOf(first);
    return (starts[k + 1] ?? batchLeaves) - first;
  }
  return batchLeaves;
}

/** The first leaf of every batch of a volume of `leaves` leaves, in order. */
export function* batchFirsts(leaves: number, batchLeaves: number): Generator<number> {
  for (let first = 0; first < leaves; first += batchLength(first, batchLeaves)) yield first;
}
