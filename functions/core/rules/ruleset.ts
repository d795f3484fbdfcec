import { createHash } from 'node:crypto';
import { calendarOf, type Calendar, periodDays } from '../days';
import { didYouMean } from '../did-you-mean';
import { type FileProblem, FileProblemsError, type ProblemAt, problemWithoutLine } from '../file-problems';
import { attachList, type ListCondition, listFileValues, regexProblem } from './conditions';
import { type Checked, known, type Refused } from './refused';
import { sameMapKey } from './routing';
import { accountTraitPrefix } from './trait-reference';
import { maxDistinctValues } from './limits';
import type { Condition, RulesFile, Signal } from './schema';

/**
 * Rules files validated into a Ruleset, from plain data: ./load.ts reads the YAML (or JSON) a person edits, with
 * lines in its problems, and validates it with the zod schema (./schema.ts); the deployed evaluator reads the rules
 * its bundle carries as compiled at synth (`compiledRulesJson`, `loadCompiledRules`), already validated, so its bundle
 * carries neither the YAML parser (about 110 KB) nor zod (about 100 KB). Both end in `rulesetOf`.
 */

export type RulesProblem = FileProblem;

export class RulesError extends FileProblemsError {
  override name = 'RulesError';
}

/** A validated ruleset, with what the engine and the evaluator need worked out once. */
export interface Ruleset {
  file: RulesFile;
  /** Changes whenever the meaning of the file changes: a new version makes the evaluator re-evaluate everyone. */
  version: string;
  /** Signal names in an order where every combination comes after the signals it combines. */
  order: string[];
  /** Event signals: the measures stored in the daily rollups. */
  eventSignals: string[];
  /** The longest rolling window and the longest since-signup span, in days: how far back the evaluator reads. */
  maxWindowDays: number;
  maxSinceSignupDays: number;
  /** Tier names best first, for comparisons such as best_member_tier. */
  tierRank: Map<string, number>;
  /**
   * The only measures a lifetime total needs: event signals over the whole retained history (no window, no
   * since_signup) and those whose first event a time-to-value signal reads.
   */
  lifetimeSignals: string[];
  /** Event signals counting days over the whole history: their lifetime measure keeps a day counter (Measure.days). */
  lifetimeDaySignals: string[];
  /** Event signals a time-to-value signal reads: their measures keep the time of the first matching event (Measure.first). */
  firstSignals: string[];
  /** User event signals counted over the since-signup span: the measures a user's state keeps of its span (facts.ts spanDaysOf). */
  spanSignals: string[];
  /** Whether any rule looks at accounts; without one, accounts are not evaluated at all. */
  evaluatesAccounts: boolean;
  /**
   * Whether an account signal counts its members' events by day (a window, a since-signup span, periods): only then
   * does an account's evaluation read its members' day rollups. Member counts, tiers, matched signals, activity and
   * lifetime totals come from the members' states.
   */
  accountsReadMemberDays: boolean;
  /**
   * The user signals that read their accounts' traits (`of: account`) and whether a tier of users routes by one
   * (`by: account.<trait>`): an account's new traits can move its members then.
   */
  accountTraitSignals: readonly string[];
  routesByAccountTrait: boolean;
  /** The user signals whose outcome accounts read of their members (`members_matching`): a turn of one moves the accounts. */
  memberSignals: ReadonlySet<string>;
  /** Whether anonymous visitors nobody claimed are leads of their own (`identity.anonymous_leads`). */
  anonymousLeads: boolean;
  /** The days the rules count in: the file's `timezone`, UTC by default. */
  calendar: Calendar;
}

/**
 * Where an issue belongs: `kind` is implied by a signal's keys, so when the file does not spell it out, the problem
 * belongs to the signal.
 */
export function rulesIssuePath(path: PropertyKey[], hasIn: (path: PropertyKey[]) => boolean): PropertyKey[] {
  return path.length === 3 && path[0] === 'signals' && path[2] === 'kind' && !hasIn(path) ? path.slice(0, -1) : path;
}

/**
 * Reads a list file the rules name, by its path as written (relative to the rules file); throws when it cannot. Given
 * where rules files are read from disk (functions/local/rules-file.ts): the rules themselves read no files.
 */
export type ReadListFile = (path: string) => string;

/**
 * Checks the references of a rules file valid against the schema and works out its Ruleset; throws RulesError. List
 * files are read with `readListFile` and their values inlined, so the version changes with them.
 */
export function rulesetOf(parsed: RulesFile, problem: ProblemAt, source: string, readListFile?: ReadListFile): Ruleset {
  const { file, order, problems } = checkedRules(parsed, readListFile);
  if (problems.length > 0) throw new RulesError(source, problems.map(({ path, message }) => problem(path, message)));
  attachLists(file);

  const signals = Object.entries(file.signals);
  const eventSignals = signals.filter(([, signal]) => signal.kind === 'event').map(([name]) => name);
  const firstSignals = eventSignals.filter((name) => signals.some(([, signal]) => signal.kind === 'time_to_value' && (signal.to === name || (signal.from !== 'signup' && signal.from === name))));
  const days = (pick: (signal: Signal) => number | undefined) => Math.max(0, ...signals.map(([, signal]) => pick(signal) ?? 0));
  return {
    file,
    version: rulesVersion(file),
    order,
    eventSignals,
    maxWindowDays: days((s) => (s.kind === 'event' ? s.window : s.kind === 'active_users' ? s.active_users : s.kind === 'inactivity' ? s.inactive_for : undefined)),
    maxSinceSignupDays: days((s) => (s.kind === 'event' ? s.since_signup : undefined)),
    tierRank: new Map(file.tiers.map((tier, index) => [tier.name, index])),
    lifetimeSignals: eventSignals.filter((name) => overWholeHistory(file.signals[name]!) || firstSignals.includes(name)),
    lifetimeDaySignals: eventSignals.filter((name) => {
      const signal = file.signals[name]!;
      return overWholeHistory(signal) && signal.count === 'days';
    }),
    firstSignals,
    spanSignals: eventSignals.filter((name) => {
      const signal = file.signals[name]!;
      return signalLevel(signal) === 'user' && signal.kind === 'event' && signal.since_signup !== undefined;
    }),
    evaluatesAccounts: signals.some(([, signal]) => signalLevel(signal) === 'account') || file.tiers.some((tier) => tier.level === 'account'),
    accountsReadMemberDays: signals.some(([, signal]) => signalLevel(signal) === 'account' && signal.kind === 'event' && (signal.window !== undefined || signal.since_signup !== undefined || signal.per !== undefined)),
    accountTraitSignals: signals.flatMap(([name, signal]) => (signal.kind === 'trait' && signal.of === 'account' ? [name] : [])),
    routesByAccountTrait: file.tiers.some((tier) => tier.level !== 'account' && typeof tier.route === 'object' && tier.route.by.startsWith(accountTraitPrefix)),
    memberSignals: new Set(signals.flatMap(([, signal]) => (signal.kind === 'members' ? [signal.members_matching] : []))),
    anonymousLeads: file.identity.anonymous_leads,
    calendar: calendarOf(file.timezone ?? 'UTC'),
  };
}

/** A problem of a rules file at its path, before a line is found for it. */
export interface RulesProblemAt {
  path: (string | number)[];
  message: string;
}

/**
 * Every problem the schema cannot see (references, combinations that form a cycle, list files), with the file's list
 * files inlined and its signals in combination order. Of rules valid against the schema, or of the rest of a file it
 * refused, read leniently (./load.ts): a part the schema refused (`refused`) is checked no further, counts as given,
 * and a name it defines as defined, so that nothing said here is only a consequence of what the schema says.
 */
export function checkedRules<F extends Checked<RulesFile>>(parsed: F, readListFile?: ReadListFile): { file: F; order: string[]; problems: RulesProblemAt[] } {
  const problems: RulesProblemAt[] = [];
  const report = (path: (string | number)[], message: string) => problems.push({ path, message });
  const file = withListFilesInlined(parsed, readListFile, report);
  problems.push(...checkReferences(file));
  const order = combinationOrder(file, report);
  return { file, order, problems };
}

type EventSignal = Extract<Signal, { kind: 'event' }>;

/** An event signal with neither window nor since_signup: it reads the lifetime total. */
function overWholeHistory<S extends Checked<Signal>>(signal: S): signal is Extract<S, { kind: 'event' }> {
  return signal.kind === 'event' && signal.window === undefined && signal.since_signup === undefined;
}

/** Changes whenever the meaning of the rules changes: the hash of the validated file, list files inlined. */
function rulesVersion(file: RulesFile): string {
  return createHash('sha256').update(JSON.stringify(file)).digest('hex').slice(0, 12);
}

/**
 * The format of compiled rules: the validated file as the schema outputs it (kinds and defaults filled in, durations
 * in days). A change to that output (./schema.ts) must change this marker, so that a function never reads rules
 * compiled in another shape as its own; test/unit/compiled-rules.test.ts pins the output's shape to it.
 */
export const compiledRulesFormat = 'pql-radar-compiled-rules/1';

/**
 * The rules as the evaluator's bundle carries them (lib/evaluator.ts): the validated file, list files inlined, with
 * the format marker and the version it hashes to, which `loadCompiledRules` checks instead of validating again.
 */
export function compiledRulesJson(ruleset: Ruleset): string {
  return `${JSON.stringify({ format: compiledRulesFormat, version: ruleset.version, rules: ruleset.file }, null, 2)}\n`;
}

/**
 * The Ruleset of rules compiled by `compiledRulesJson`, which the deployed evaluator loads at cold start; throws
 * RulesError. No schema: the rules were validated when compiled (cdk synth, `rules check`). A file of another format
 * (compiled by another pql-radar version) or whose rules no longer hash to its version (edited after it was compiled)
 * is refused, naming the field, rather than trusted.
 */
export function loadCompiledRules(text: string, source: string): Ruleset {
  const refuse = (path: string, message: string) => new RulesError(source, [{ path, message }]);
  let data: unknown;
  try {
    data = JSON.parse(text);
  } catch (error) {
    throw refuse('', (error as Error).message);
  }
  if (data === null || typeof data !== 'object' || Array.isArray(data)) throw refuse('', `must be the rules as cdk synth compiles them, an object with format ${compiledRulesFormat}`);
  const { format, version, rules } = data as Record<string, unknown>;
  if (format !== compiledRulesFormat) {
    throw refuse('format', `is ${JSON.stringify(format)}, not ${compiledRulesFormat}: compile the rules file again with this pql-radar (cdk synth)`);
  }
  if (rules === null || typeof rules !== 'object' || Array.isArray(rules)) throw refuse('rules', 'must be the compiled rules file, an object');
  // Hashed before anything reads the rules: what hashes to the version is exactly what synth compiled and validated.
  const hashed = rulesVersion(rules as RulesFile);
  if (version !== hashed) {
    throw refuse('version', `is ${JSON.stringify(version)}, but the rules hash to "${hashed}": they were changed after they were compiled; edit the rules file and compile it again (cdk synth)`);
  }
  return rulesetOf(rules as RulesFile, problemWithoutLine, source);
}

/** The rules with each list file's values in place of its path: what the version hashes and the evaluator's JSON carries. */
function withListFilesInlined<F extends Checked<RulesFile>>(file: F, readListFile: ReadListFile | undefined, report: (path: (string | number)[], message: string) => void): F {
  if (!known(file.lists)) return file;
  const lists = Object.entries(file.lists).map(([name, list]) => {
    if (!known(list) || Array.isArray(list)) return [name, list];
    const at = ['lists', name, 'file'];
    if (readListFile === undefined) {
      report(at, 'list files are read with the rules file, from disk (rules check, dev, backtest, cdk synth): here, give the values inline');
      return [name, []];
    }
    let values: string[] = [];
    try {
      values = listFileValues(readListFile(list.file));
      if (values.length === 0) report(at, `${list.file} holds no values (one a line; blank lines and lines starting with # are skipped)`);
    } catch (error) {
      report(at, `cannot read ${list.file}: ${(error as Error).message}`);
    }
    return [name, values];
  });
  return { ...file, lists: Object.fromEntries(lists) };
}

/** Every condition of the rules with its path, a `domain` condition's inner condition too (none the schema refused). */
function conditionsOf(file: Checked<RulesFile>): { path: (string | number)[]; condition: Condition }[] {
  const found: { path: (string | number)[]; condition: Condition }[] = [];
  const add = (path: (string | number)[], condition: Condition | Refused | undefined) => {
    if (!known(condition)) return;
    found.push({ path, condition });
    if (typeof condition === 'object' && 'domain' in condition) found.push({ path: [...path, 'domain'], condition: condition.domain });
  };
  const addWhere = (path: (string | number)[], where: Checked<Record<string, Condition>> | Refused | undefined) => {
    if (known(where)) for (const [property, condition] of Object.entries(where)) add([...path, 'where', property], condition);
  };
  for (const [name, signal] of Object.entries(known(file.signals) ? file.signals : {})) {
    if (known(signal) && signal.kind === 'event') addWhere(['signals', name], signal.where);
    if (known(signal) && signal.kind === 'trait') add(['signals', name, 'is'], signal.is);
  }
  if (known(file.conversion)) {
    addWhere(['conversion'], file.conversion.where);
    add(['conversion', 'is'], file.conversion.is);
  }
  return found;
}

/** The list a condition names, with its operator; undefined for other conditions. */
function listReference(condition: Condition): { operator: 'in_list' | 'not_in_list'; list: string; condition: ListCondition } | undefined {
  if (typeof condition !== 'object') return undefined;
  if ('in_list' in condition) return { operator: 'in_list', list: condition.in_list, condition };
  if ('not_in_list' in condition) return { operator: 'not_in_list', list: condition.not_in_list, condition };
  return undefined;
}

/** Gives every list condition its list's values, lowercased (lists compare case-insensitively), once per ruleset. */
function attachLists(file: RulesFile) {
  const values = new Map(Object.entries(file.lists ?? {}).map(([name, list]) => [name, new Set((Array.isArray(list) ? list : []).map((value) => value.toLowerCase()))]));
  for (const { condition } of conditionsOf(file)) {
    const reference = listReference(condition);
    if (reference !== undefined) attachList(reference.condition, values.get(reference.list)!);
  }
}

/** Levels a signal kind can have: the member-based kinds only make sense for accounts. */
const accountOnly = new Set(['active_users', 'members', 'best_member']);

export function signalLevel<S extends Checked<Signal>>(signal: S): 'account' | S['level'] {
  return accountOnly.has(signal.kind) ? 'account' : signal.level;
}

/** The level of a signal of a file read leniently (checkedRules); undefined when the schema refused it, to compare with none. */
function knownLevel(signal: Checked<Signal> | undefined): 'user' | 'account' | undefined {
  const level = signal && signalLevel(signal);
  return known(level) ? level : undefined;
}

/** The signals a combination combines, each with its path under the combination; none whose name the schema refused. */
function combinationParts(signal: Checked<Extract<Signal, { kind: 'combination' }>>): { at: (string | number)[]; name: string }[] {
  const listed = (key: 'all' | 'any', names: (string | Refused)[] | Refused | undefined) => (known(names) ? names.flatMap((name, index) => (known(name) ? [{ at: [key, index], name }] : [])) : []);
  return [...listed('all', signal.all), ...listed('any', signal.any), ...(known(signal.not) ? [{ at: ['not'], name: signal.not }] : [])];
}

/** Whether a user's evaluation reads its accounts' traits: then an account's new traits can move its members. */
export const usersReadAccountTraits = (ruleset: Ruleset): boolean => ruleset.accountTraitSignals.length > 0 || ruleset.routesByAccountTrait;

const anLevel = (level: 'user' | 'account') => (level === 'account' ? 'an account' : 'a user');

function checkReferences(file: Checked<RulesFile>): RulesProblemAt[] {
  const problems: RulesProblemAt[] = [];
  // A section the schema refused whole (no map, no list) defines names no one knows: what names them is not checked.
  const signals = known(file.signals) ? file.signals : undefined;
  const tiers = known(file.tiers) ? file.tiers : undefined;
  const tierNames = tiers && new Set(tiers.flatMap((tier) => (known(tier) && known(tier.name) ? [tier.name] : [])));
  // Own keys only: `name in signals` would find "constructor" on every object. A signal the schema refused whole is
  // defined, and not known.
  const reference = (path: (string | number)[], name: string): Checked<Signal> | undefined => {
    if (signals === undefined) return undefined;
    if (Object.hasOwn(signals, name)) return known(signals[name]) ? signals[name] : undefined;
    problems.push({ path, message: `no signal named "${name}"${didYouMean(name, Object.keys(signals))}` });
    return undefined;
  };

  for (const [name, signal] of Object.entries(signals ?? {})) {
    if (!known(signal)) continue;
    const at = (...rest: (string | number)[]) => ['signals', name, ...rest];
    const level = knownLevel(signal);
    if ('at_least' in signal || 'at_most' in signal || 'exactly' in signal) {
      const given = ['at_least', 'at_most', 'exactly'].filter((key) => (signal as Record<string, unknown>)[key] !== undefined);
      if (given.length > 1) problems.push({ path: at(given[1]!), message: `give one threshold, not ${given.join(' and ')}` });
    }
    switch (signal.kind) {
      case 'event':
        if ((signal.event === undefined) === (signal.events === undefined)) problems.push({ path: at('event'), message: 'give either event or events' });
        if (signal.distinct !== undefined && signal.sum !== undefined) problems.push({ path: at('sum'), message: 'give either distinct or sum, not both' });
        for (const key of ['distinct', 'sum'] as const) {
          const property = signal[key];
          const message = known(property) ? notAPropertyProblem(key, property) : undefined;
          if (message !== undefined) problems.push({ path: at(key), message });
        }
        if (signal.window !== undefined && signal.since_signup !== undefined) problems.push({ path: at('since_signup'), message: 'give either window or since_signup, not both' });
        checkCounting(signal, level, at, problems);
        if (signal.distinct !== undefined) checkDistinctThreshold(signal, at, problems);
        break;
      case 'time_to_value':
        for (const key of ['from', 'to'] as const) {
          const part = signal[key];
          if (!known(part) || (key === 'from' && part === 'signup')) continue;
          const target = reference(at(key), part);
          const targetLevel = knownLevel(target);
          if (!target) continue;
          if (target.kind !== 'event') problems.push({ path: at(key), message: `"${part}" is not an event signal (it is ${target.kind}): time to value reads the first event of an event signal` });
          else if (targetLevel && level && targetLevel !== level) problems.push({ path: at(key), message: `"${part}" is ${anLevel(targetLevel)} signal, but this is ${anLevel(level)} signal` });
        }
        break;
      case 'trait':
        if (signal.of === 'account' && level === 'account') problems.push({ path: at('of'), message: 'of: account is for user signals; an account signal reads its own traits' });
        break;
      case 'combination':
        if (signal.all === undefined && signal.any === undefined && signal.not === undefined) problems.push({ path: at(), message: 'a combination needs all, any or not' });
        for (const part of combinationParts(signal)) {
          const targetLevel = knownLevel(reference(at(...part.at), part.name));
          if (targetLevel && level && targetLevel !== level) problems.push({ path: at(...part.at), message: `"${part.name}" is ${anLevel(targetLevel)} signal and cannot be combined into ${anLevel(level)} signal` });
        }
        break;
      case 'members': {
        const matching = signal.members_matching;
        if (known(matching) && knownLevel(reference(at('members_matching'), matching)) === 'account') problems.push({ path: at('members_matching'), message: `"${matching}" must be a user signal` });
        break;
      }
      case 'best_member':
        if (tierNames && known(signal.best_member_tier) && !tierNames.has(signal.best_member_tier)) {
          problems.push({ path: at('best_member_tier'), message: `no tier named "${signal.best_member_tier}"${didYouMean(signal.best_member_tier, tierNames)}` });
        }
        break;
    }
  }
  const conversion = file.conversion;
  if (known(conversion)) {
    if ((conversion.event === undefined) === (conversion.trait === undefined)) problems.push({ path: ['conversion'], message: 'give either event (with optional where) or trait (with is)' });
    if (conversion.trait !== undefined && conversion.is === undefined) problems.push({ path: ['conversion', 'is'], message: 'a trait conversion needs is: the value that converts, e.g. { in: [pro, business] }' });
    if (conversion.event === undefined && conversion.where !== undefined) problems.push({ path: ['conversion', 'where'], message: 'where filters the properties of a conversion event: give event' });
    if (conversion.trait === undefined && conversion.is !== undefined) problems.push({ path: ['conversion', 'is'], message: 'is is the condition on a conversion trait: give trait' });
  }
  // Undefined when the schema refused the lists whole: a list named then may be one of them.
  const listNames = file.lists === undefined ? [] : known(file.lists) ? Object.keys(file.lists) : undefined;
  for (const { path, condition } of conditionsOf(file)) {
    if (typeof condition === 'object' && 'matches' in condition) {
      const reason = regexProblem(condition.matches);
      if (reason !== undefined) problems.push({ path: [...path, 'matches'], message: `"${condition.matches}" is not a valid regular expression: ${reason}` });
    }
    const reference = listReference(condition);
    if (reference !== undefined && listNames !== undefined && !listNames.includes(reference.list)) {
      const hint = listNames.length === 0 ? ': define it under lists' : didYouMean(reference.list, listNames);
      problems.push({ path: [...path, reference.operator], message: `no list named "${reference.list}"${hint}` });
    }
  }
  const seenTiers = new Set<string>();
  tiers?.forEach((tier, index) => {
    if (!known(tier)) return;
    if (known(tier.name) && seenTiers.has(tier.name)) problems.push({ path: ['tiers', index, 'name'], message: `tier "${tier.name}" is defined twice` });
    if (known(tier.name)) seenTiers.add(tier.name);
    if (typeof tier.route === 'object') {
      const keys = Object.keys(tier.route.map);
      keys.forEach((key, i) => {
        const same = keys.slice(0, i).find((earlier) => sameMapKey(earlier, key));
        if (same !== undefined) problems.push({ path: ['tiers', index, 'route', 'map', key], message: `"${key}" and "${same}" are one trait value: values are compared trimmed, without regard to case` });
      });
    }
    if (!known(tier.require)) return;
    tier.require.forEach((name, i) => {
      if (!known(name)) return;
      const targetLevel = knownLevel(reference(['tiers', index, 'require', i], name));
      if (targetLevel && (tier.level === 'user' || tier.level === 'account') && targetLevel !== tier.level) {
        problems.push({ path: ['tiers', index, 'require', i], message: `"${name}" is ${anLevel(targetLevel)} signal, but the tier is for ${tier.level}s` });
      }
    });
  });
  return problems;
}

/** The checks of what an event signal counts: count, and the periods of per. */
/** A distinct count stops at maxDistinctValues: a threshold it cannot tell apart would never, or always, match. */
function checkDistinctThreshold(signal: Checked<EventSignal>, at: (...rest: (string | number)[]) => (string | number)[], problems: { path: (string | number)[]; message: string }[]): void {
  for (const key of ['at_least', 'at_most', 'exactly'] as const) {
    const value = signal[key];
    // At least the cap is met by a count of the cap or more; at most, or exactly, the cap would also take any count past it.
    const highest = key === 'at_least' ? maxDistinctValues : maxDistinctValues - 1;
    if (known(value) && value > highest) {
      const effect = key === 'at_least' ? 'could never be met' : 'would also match any count past it';
      problems.push({ path: at(key), message: `a distinct count stops at ${maxDistinctValues} values, so ${key}: ${value} ${effect}: give at most ${highest}` });
    }
  }
}

function checkCounting(
  signal: Checked<EventSignal>,
  level: 'user' | 'account' | undefined,
  at: (...rest: (string | number)[]) => (string | number)[],
  problems: { path: (string | number)[]; message: string }[],
): void {
  if (signal.count !== undefined) {
    const count = known(signal.count) ? `count: ${signal.count}` : 'count';
    for (const other of ['distinct', 'sum'] as const) {
      if (signal[other] !== undefined) problems.push({ path: at('count'), message: `${count} cannot be combined with ${other} (that counts ${other === 'sum' ? 'a sum' : 'distinct values'}): give one of them` });
    }
    if (signal.count === 'days' && level === 'account' && overWholeHistory(signal)) {
      problems.push({ path: at('count'), message: "count: days over an account's whole history cannot be worked out exactly from its members' totals (two members active on one day are one day): give window or since_signup" });
    }
  }
  if (signal.per === undefined) {
    for (const key of ['periods', 'consecutive'] as const) if (signal[key] !== undefined) problems.push({ path: at(key), message: `${key} counts periods of the window: give per (day or week) and window` });
    return;
  }
  if (signal.periods !== undefined && signal.consecutive !== undefined) problems.push({ path: at('consecutive'), message: 'give either periods or consecutive, not both' });
  if (signal.window === undefined) {
    problems.push({ path: at('per'), message: 'per splits the window into periods: give window' });
    return;
  }
  if (!known(signal.per) || !known(signal.window)) return;
  const length = periodDays[signal.per];
  if (signal.window % length !== 0) {
    problems.push({ path: at('window'), message: `must be a whole number of ${signal.per}s to split per ${signal.per} (${signal.window} days is not)` });
    return;
  }
  const count = signal.window / length;
  for (const key of ['periods', 'consecutive'] as const) {
    const wanted = signal[key];
    if (known(wanted) && wanted > count) problems.push({ path: at(key), message: `can never be met: the window holds ${count} ${signal.per}${count === 1 ? '' : 's'}` });
  }
}

/** What names that read as message fields are instead: distinct and sum read event properties, and these are none. */
const notProperties = new Map([
  ...['timestamp', 'event', 'type', 'userId', 'anonymousId', 'messageId', 'receivedAt', 'sentAt', 'originalTimestamp', 'context', 'integrations', 'properties', 'traits'].map((field) => [field, 'a field of the message'] as const),
  ['day', "the event's day"],
  ['date', "the event's day"],
]);

/** Why distinct or sum cannot read `property`, or undefined when it names an event property. */
function notAPropertyProblem(key: 'distinct' | 'sum', property: string): string | undefined {
  const [first, ...rest] = property.split('.');
  if (first === 'properties' && rest.length > 0) return `${key} reads the event's properties: write "${rest.join('.')}", not "${property}"`;
  const what = notProperties.get(first!);
  if (what === undefined) return undefined;
  const instead = key === 'distinct' ? 'distinct counts distinct values of an event property; to count active days use `count: days`' : 'sum adds up a numeric event property';
  return `"${property}" is ${what}, not an event property: ${instead}`;
}

/** Orders the signals so combinations come after their parts; a cycle is reported with its path. */
function combinationOrder(file: Checked<RulesFile>, report: (path: (string | number)[], message: string) => void): string[] {
  const signals = known(file.signals) ? file.signals : {};
  const order: string[] = [];
  const state = new Map<string, 'visiting' | 'done'>();
  const visit = (name: string, trail: string[]) => {
    if (state.get(name) === 'done' || !Object.hasOwn(signals, name)) return;
    if (state.get(name) === 'visiting') {
      report(['signals', name], `combinations form a cycle: ${[...trail, name].join(' -> ')}`);
      return;
    }
    state.set(name, 'visiting');
    const signal = signals[name];
    if (known(signal) && signal.kind === 'combination') {
      for (const part of combinationParts(signal)) visit(part.name, [...trail, name]);
    }
    state.set(name, 'done');
    order.push(name);
  };
  for (const name of Object.keys(signals)) visit(name, []);
  return order;
}
