/**
 * The statistics of the backtest and of signal discovery: proportions with Wilson intervals, and lift (a ratio of
 * two proportions) with the log-method interval. Small samples are where PQL rules mislead, so every figure
 * carries its 95% interval.
 */

export interface Estimate {
  value: number;
  /** 95% confidence interval. */
  low: number;
  high: number;
}

const z95 = 1.959964;

/** A proportion with its Wilson score interval, which stays sensible for small samples and for 0 or n successes. */
export function proportion(successes: number, trials: number): Estimate {
  if (trials === 0) return { value: 0, low: 0, high: 1 };
  const p = successes / trials;
  const z2 = z95 * z95;
  const centre = (p + z2 / (2 * trials)) / (1 + z2 / trials);
  const half = (z95 * Math.sqrt((p * (1 - p)) / trials + z2 / (4 * trials * trials))) / (1 + z2 / trials);
  return { value: p, low: Math.max(0, centre - half), high: Math.min(1, centre + half) };
}

/**
 * Lift: the conversion rate of the qualified over that of a comparison group, with the interval of a ratio of
 * proportions on the log scale (Katz). A zero cell gets 0.5 added to every cell (Haldane), so the interval stays
 * finite. Null when a group is empty or nobody converted in either: there are no rates to compare then, and the
 * correction alone would make up a lift (0/7 against 0/21: 2.75; 0/1 against 0/100: 50.5, its interval above 1).
 */
export function lift(convertedIn: number, totalIn: number, convertedOut: number, totalOut: number): Estimate | null {
  if (totalIn === 0 || totalOut === 0 || convertedIn + convertedOut === 0) return null;
  const zeroCell = convertedIn === 0 || convertedOut === 0 || convertedIn === totalIn || convertedOut === totalOut;
  const [a, n1, c, n0] = zeroCell ? [convertedIn + 0.5, totalIn + 1, convertedOut + 0.5, totalOut + 1] : [convertedIn, totalIn, convertedOut, totalOut];
  const ratio = a / n1 / (c / n0);
  const se = Math.sqrt(1 / a - 1 / n1 + 1 / c - 1 / n0);
  // The plain ratio when it exists; with no converter outside, only the corrected one is finite.
  const value = convertedOut > 0 ? convertedIn / totalIn / (convertedOut / totalOut) : ratio;
  // Nothing rules out a lift of 0 when none of the qualified converted; the corrected ratio's bound can lie above 1.
  const low = convertedIn === 0 ? 0 : ratio * Math.exp(-z95 * se);
  return { value, low, high: ratio * Math.exp(z95 * se) };
}

export function f1(precision: number, recall: number): number {
  return precision + recall === 0 ? 0 : (2 * precision * recall) / (precision + recall);
}

export function median(values: readonly number[]): number | null {
  if (values.length === 0) return null;
  const sorted = [...values].sort((a, b) => a - b);
  const middle = Math.floor(sorted.length / 2);
  return sorted.length % 2 === 1 ? sorted[middle]! : (sorted[middle - 1]! + sorted[middle]!) / 2;
}
