import { maxStateBytes } from '../facts';
import { distinctValue, maxDistinctValueLength, maxNameBytes, maxNamesPerDay, type DayRollup, type Measure } from './engine';
import { maxDistinctValues } from './limits';
import type { Ruleset } from './ruleset';

/**
 * How large one day's rollup of a user can grow under a ruleset, from the rules alone: every bound the engine keeps a
 * day within, at its most, whatever clients send (the public write key is enough to send it). A user's state holds its
 * open days and a day item holds one day, and DynamoDB refuses an item past 400 KB at that user's every save.
 */

/** The most JSON one day rollup can hold, in bytes of UTF-8, and the parts of it the event names and distinct signals take. */
export interface DaySize {
  bytes: number;
  names: number;
  /** Each signal counting distinct values, in the order of the file, with the bytes its measure takes. */
  distinct: { signal: string; bytes: number }[];
}

/**
 * Past the bound a state is kept within, refused: a state sheds its open days rather than pass it (facts'
 * withinStateBound), so such a day is saved as a day item of its own, and that bound is the JSON the code relies on
 * DynamoDB to take in one item. The day alone, not with the rest of a state, for that reason.
 */
const refusedPast = maxStateBytes;
/**
 * Past half, warned: a state keeps yesterday's and today's day open (facts' closeDays), and two such days cannot both
 * stay; they are saved as day items instead, with the race withinStateBound describes, and saves go on.
 */
const warnedPast = maxStateBytes / 2;

/** A value whose JSON is longer than the engine keeps as it is becomes its hash: the longest kept is the longer of the two. */
const longestValue = Math.max(maxDistinctValueLength, distinctValue('x'.repeat(maxDistinctValueLength + 1)).length);
/** Counts are whole numbers of events; a sum may be any finite number, whose JSON is at most a minus, "0.00000" and 17 digits. */
const longestCount = Number.MAX_SAFE_INTEGER;
const longestSum = -0.0000012345678901234567;
/** Times are kept as ingest stores them (toISOString, in years ingest takes). */
const longestTime = new Date(0).toISOString();

/**
 * The JSON of a day rollup with every bound at its most: the most event names at the most bytes kept as they are, each
 * event signal's measure with every field at its longest, and the most distinct values at the most bytes kept. In bytes
 * of UTF-8, as a state's bound counts them and DynamoDB an item: a name or value of other text (three-byte characters,
 * JSON's escapes) takes no more, being hashed first (engine's keptText).
 */
export function worstDaySize(ruleset: Ruleset): DaySize {
  const names: Record<string, number> = {};
  for (let index = 0; index < maxNamesPerDay; index++) names[String(index).padStart(maxNameBytes, 'x')] = longestCount;
  const values = Array.from({ length: maxDistinctValues }, (_, index) => String(index).padStart(longestValue, 'x'));
  // Required: a field added to Measure or DayRollup is counted here, or this does not compile.
  const measure: Required<Omit<Measure, 'distinct'>> = { count: longestCount, sum: longestSum, last: longestTime, first: longestTime, sessions: longestCount, days: longestCount };
  const measures: Record<string, Measure> = {};
  const distinct: DaySize['distinct'] = [];
  for (const name of ruleset.eventSignals) {
    const signal = ruleset.file.signals[name]!;
    measures[name] = signal.kind === 'event' && signal.distinct !== undefined ? { ...measure, distinct: values } : measure;
    if (measures[name].distinct !== undefined) distinct.push({ signal: name, bytes: entryBytes(name, measures[name]) });
  }
  const rollup: Required<DayRollup> = { day: ruleset.calendar.dayOf(longestTime), activity: longestCount, lastActivity: longestTime, names, measures };
  return { bytes: jsonBytes(rollup), names: jsonBytes(names), distinct };
}

const jsonBytes = (value: unknown): number => Buffer.byteLength(JSON.stringify(value));
/** The bytes an entry takes in a JSON object: `"key":value,`. */
const entryBytes = (key: string, value: unknown): number => jsonBytes(key) + jsonBytes(value) + 2;

/** Why a day of these rules may be too large for DynamoDB to save, or undefined when it cannot: a problem of `signals`. */
export function daySizeProblem(ruleset: Ruleset): string | undefined {
  const size = worstDaySize(ruleset);
  if (size.bytes <= refusedPast) return undefined;
  return `${reach(size)}, more than the ${kb(maxStateBytes)} a state is kept within: DynamoDB may refuse to save such a day, and so every evaluation of that user. ${makeUp(size)}; count fewer properties distinct`;
}

/** What `rules check` says of a ruleset whose day can outgrow the room a state keeps for it, short of a problem. */
export function daySizeWarnings(ruleset: Ruleset): string[] {
  const size = worstDaySize(ruleset);
  if (size.bytes <= warnedPast || size.bytes > refusedPast) return [];
  return [
    `signals: ${reach(size)}, more than half the ${kb(maxStateBytes)} a state is kept within: two such days, yesterday's and today's, cannot both stay in the state, ` +
      `and are saved as day items (a run overlapping the save may then leave its own count of such a day until its next change). ${makeUp(size)}`,
  ];
}

const reach = (size: DaySize): string => `a day's rollup of one user can reach ${kb(size.bytes)} of JSON`;

function makeUp(size: DaySize): string {
  const names = `It holds up to ${maxNamesPerDay} event names of up to ${maxNameBytes} bytes (${kb(size.names)})`;
  if (size.distinct.length === 0) return names;
  const each = Math.max(...size.distinct.map((part) => part.bytes));
  return `${names}, and up to ${maxDistinctValues} values of up to ${longestValue} bytes (${kb(each)}) for each of the ${size.distinct.length} distinct signals ${size.distinct.map((part) => part.signal).join(', ')}`;
}

const kb = (bytes: number): string => `${Number((bytes / 1024).toFixed(1))} KB`;
