import { InvalidArgumentError, Option, type Command } from 'commander';
import { dirname, resolve } from 'node:path';
import { fileURLToPath } from 'node:url';
import type { Ruleset } from '../core/rules/load';
import { createDynamoDbClient } from '../local/dynamodb-local';
import { loadRulesFile } from '../local/rules-file';
import { canonicalOrigin, originExamples } from '../core/origins';
import { ageMs, isDay } from '../core/days';
import { durationDays, durationRule } from '../core/rules/schema';

/** Option parsers and defaults the commands share. */

const durationUnits = { ms: 1, s: 1000, m: 60_000, h: 3_600_000 } as const;
/** The longest a Node timer waits: a longer one fires at once, and the pause between passes would vanish. */
const longestTimerMs = 2 ** 31 - 1;

/** `10s`, `1m`, `1h`, `500ms`: how often the evaluator runs, in milliseconds. */
export const duration = (name: string) => (value: string) => {
  const match = /^(\d+)(ms|s|m|h)$/.exec(value);
  if (!match) throw new InvalidArgumentError(`${name} must be a duration such as 10s, 1m, 1h or 500ms`);
  const ms = Number(match[1]) * durationUnits[match[2] as keyof typeof durationUnits];
  if (ms > longestTimerMs) throw new InvalidArgumentError(`${name} ${value}: at most ${Math.floor(longestTimerMs / durationUnits.h)}h (about 24 days)`);
  return ms;
};

/** `7d`, `12h`, `30m`: how far back, in milliseconds. */
export const age = (name: string) => (value: string) => {
  const ms = ageMs(value);
  if (ms === undefined) throw new InvalidArgumentError(`${name} must be an age such as 7d, 12h or 30m`);
  return ms;
};

/** `30d`, `2w`: whole days or weeks, as the rules file writes durations; in days. */
export const days = (name: string) => (value: string) => {
  const parsed = durationDays(value);
  if (parsed === undefined) throw new InvalidArgumentError(`${name} must be ${durationRule}`);
  return parsed;
};

/**
 * An ISO 8601 date or time (2026-11-30, 2026-11-30T09:00:00Z), else undefined. Date's own parser would take `5` for
 * May 2001 and 2026-02-30 for March 2: a typo would move an evaluation or a replay to a time nobody asked for.
 */
export function isoDateOrTime(value: string): Date | undefined {
  const at = new Date(value);
  return isDay(value.slice(0, 10)) && (value.length === 10 || value[10] === 'T') && !Number.isNaN(at.getTime()) ? at : undefined;
}

/**
 * An option read with `parse`, whose default is written as a user writes it (10s, 14d): --help shows that, where a
 * plain default shows what it parses to, milliseconds.
 */
export const parsedOption = (flags: string, description: string, parse: (value: string) => number, written: string): Option =>
  new Option(flags, description).argParser(parse).default(parse(written), written);

export const collect = (value: string, previous: string[]) => [...previous, value];


/** A repeatable browser origin, in its canonical form. */
export const browserOrigin = (value: string, previous: string[]) => {
  const read = canonicalOrigin(value);
  if ('problem' in read) throw new InvalidArgumentError(`${value} is not an origin: it ${read.problem}; give ${originExamples}`);
  return [...previous, read.origin];
};

const projectRoot = resolve(dirname(fileURLToPath(import.meta.url)), '../..');
export const defaultRulesFile = resolve(projectRoot, 'examples/activation.rules.yaml');

/** A rules file and the list files it names, read from disk and validated; throws RulesError. */
export function readRules(path: string): Ruleset {
  return loadRulesFile(path).ruleset;
}

/**
 * Prints the newest `limit` items `read` gives, reading one more than it shows to know, without reading them all,
 * whether `--limit` cut the list; then says so on stderr, where the --json lines stay JSON: `more` names what there
 * are more of, `narrowing` the options that narrow the list. Returns how many it printed.
 */
export async function printUpToLimit<T>(read: (count: number) => Promise<T[]>, limit: number, print: (item: T) => void, more: string, narrowing?: string): Promise<number> {
  const items = await read(limit + 1);
  for (const item of items.slice(0, limit)) print(item);
  if (items.length > limit) console.error(`${more} than the ${limit} shown (--limit): a higher --limit shows them${narrowing ? `; ${narrowing} narrow the list` : ''}`);
  return Math.min(items.length, limit);
}

/** The program's global options: the table, and the DynamoDB endpoint when it is not AWS's. */
export function tableOptions(program: Command): { table: string; endpoint?: string } {
  return program.opts<{ table: string; endpoint?: string }>();
}

/** A client for the configured DynamoDB and the table's name. */
export function storage(program: Command) {
  const { table, endpoint } = tableOptions(program);
  return { client: createDynamoDbClient(endpoint), tableName: table };
}
