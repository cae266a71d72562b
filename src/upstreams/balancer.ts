/**
 * Smooth weighted round robin (nginx's): each pick adds every usable item's weight to its running
 * score, takes the highest, and takes the total back from it. Over any run of picks each item gets
 * its share of the weights, spread out (weights 3:1 give a a b a, a a b a, …, never a a a b in a
 * burst), and the same picks come out in the same order on every run: spreading can be tested
 * exactly. Items that are not usable now (a breaker open, tried already) are passed over.
 */
export class SmoothWeighted {
  private readonly scores: number[];

  constructor(private readonly weights: readonly number[]) {
    this.scores = weights.map(() => 0);
  }

  /** The next item among those `usable` accepts, as its index; -1 when none is usable. */
  next(usable: (index: number) => boolean): number {
    let total = 0;
    let best = -1;
    for (let i = 0; i < this.weights.length; i++) {
      if (!usable(i)) continue;
      const weight = this.weights[i]!;
      this.scores[i]! += weight;
      total += weight;
      if (best === -1 || this.scores[i]! > this.scores[best]!) best = i;
    }
    if (best !== -1) this.scores[best]! -= total;
    return best;
  }
}
