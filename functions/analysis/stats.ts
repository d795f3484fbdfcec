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
 * proportions on the log scale (Katz). Null when a group is empty or nobody converted in either: there are no rates to
 * compare then, and a correction alone would make up a lift (0/7 against 0/21: 2.75; 0/1 against 0/100: 50.5).
 */
export function lift(convertedIn: number, totalIn: number, convertedOut: number, totalOut: number): Estimate | null {
  if (totalIn === 0 || totalOut === 0 || convertedIn + convertedOut === 0) return null;
  // An empty cell makes the log-scale variance infinite or nil: 0.5 added to every cell (Haldane) keeps it finite.
  const zeroCell = convertedIn === 0 || convertedOut === 0 || convertedIn === totalIn || convertedOut === totalOut;
  const [a, n1, c, n0] = zeroCell ? [convertedIn + 0.5, totalIn + 1, convertedOut + 0.5, totalOut + 1] : [convertedIn, totalIn, convertedOut, totalOut];
  const corrected = a / n1 / (c / n0);
  const half = z95 * Math.sqrt(1 / a - 1 / n1 + 1 / c - 1 / n0);
  // Katz's interval is the estimate times exp(±z·se): it is centred here on the very estimate shown, so the estimate
  // always lies within it (at its middle on the log scale). That estimate is the plain ratio of the two rates the report
  // shows beside it; the correction only gives the spread, and the estimate itself only when nobody outside converted
  // (the plain ratio is infinite then). Centred on the corrected ratio while the plain one was shown, the estimate and
  // its interval came from two different tables. The corrected ratio is no estimate to show where the plain one
  // exists: with few qualified it is far off (0/2 against 10/1000 makes it 15.9, "predicts conversion").
  const value = convertedOut > 0 ? convertedIn / totalIn / (convertedOut / totalOut) : corrected;
  // None of the qualified converted: the lift is 0, which no interval on the log scale can hold; as a Wilson interval
  // for no successes starts at 0, so does this one, up to the corrected ratio's upper bound.
  if (convertedIn === 0) return { value: 0, low: 0, high: corrected * Math.exp(half) };
  return { value, low: value * Math.exp(-half), high: value * Math.exp(half) };
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
