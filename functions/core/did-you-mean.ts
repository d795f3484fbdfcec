/**
 * Suggestions for misspelt names in config and rules files: `; did you mean "window"?` after the problem, when one
 * known name is close enough to be the one meant.
 */

/**
 * The edit distance of two strings, counting an insertion, a deletion, a substitution or a swap of two neighbouring
 * characters as one edit (optimal string alignment), since swapped letters are the commonest typo.
 */
export function editDistance(a: string, b: string): number {
  // rows[i][j]: the distance between the first i characters of a and the first j of b.
  const rows = Array.from({ length: a.length + 1 }, (_, i) => Array.from({ length: b.length + 1 }, (_, j) => (i === 0 ? j : j === 0 ? i : 0)));
  for (let i = 1; i <= a.length; i++) {
    for (let j = 1; j <= b.length; j++) {
      const substitution = a[i - 1] === b[j - 1] ? 0 : 1;
      let distance = Math.min(rows[i - 1]![j]! + 1, rows[i]![j - 1]! + 1, rows[i - 1]![j - 1]! + substitution);
      if (i > 1 && j > 1 && a[i - 1] === b[j - 2] && a[i - 2] === b[j - 1]) distance = Math.min(distance, rows[i - 2]![j - 2]! + 1);
      rows[i]![j] = distance;
    }
  }
  return rows[a.length]![b.length]!;
}

/**
 * The known name closest to `name`, when it is close enough to be a typo of it: at most one edit for names of up to 5
 * characters, two for longer ones. Case is ignored (`pql-a` finds the tier `PQL-A`); the first of equally close names wins.
 */
export function closestName(name: string, known: Iterable<string>): string | undefined {
  const maxDistance = name.length <= 5 ? 1 : 2;
  let best: { name: string; distance: number } | undefined;
  for (const candidate of known) {
    if (candidate === name) continue;
    const distance = editDistance(name.toLowerCase(), candidate.toLowerCase());
    if (distance <= maxDistance && (best === undefined || distance < best.distance)) best = { name: candidate, distance };
  }
  return best?.name;
}

/** `; did you mean "window"?` when a known name is close to `name`, else nothing: appended to a problem's message. */
export function didYouMean(name: string, known: Iterable<string>): string {
  const closest = closestName(name, known);
  return closest === undefined ? '' : `; did you mean "${closest}"?`;
}
