import { z } from 'zod';
import { calendarOf } from '../days';
import { closestName } from '../did-you-mean';
import { accountTraitPrefix } from './trait-reference';

/**
 * The rules file: named signals over events and traits, scored and sorted into tiers. Kept in the user's repo as
 * YAML or JSON; every object is strict, so a misspelt key is an error with its path, not a silently ignored line.
 */

/** `7d`, `2w`: the rules work at day granularity, as the stored rollups do. */
export const durationSchema = z
  .string()
  .regex(/^[1-9]\d{0,3}[dw]$/, 'must be a duration such as 7d or 2w (days or weeks)')
  .transform((value) => Number(value.slice(0, -1)) * (value.endsWith('w') ? 7 : 1));

/** What a duration must be, for an error naming where one was given. */
export const durationRule = 'a number of days or weeks, at least 1, such as 30d or 2w';

/** A duration as the rules file writes it (`30d`, `2w`), in days; undefined for anything else. */
export function durationDays(value: string): number | undefined {
  const parsed = durationSchema.safeParse(value);
  return parsed.success ? parsed.data : undefined;
}

const scalar = z.union([z.string(), z.number(), z.boolean()]);
const oneOrMoreStrings = z.union([z.string().min(1), z.array(z.string().min(1)).min(1)]);

/** Lowercase letters, digits and _: the names rules refer to one another by. */
const identifier = (what: string) => z.string().regex(/^[a-z][a-z0-9_]{0,63}$/, `must be a ${what} name: lowercase letters, digits and _, starting with a letter`);
const listName = identifier('list');

/** One operator each; the text operators (starts_with to not_in_list) hold only for a string value. */
const operatorConditions = [
  z.strictObject({ equals: scalar }),
  z.strictObject({ not_equals: scalar }),
  z.strictObject({ in: z.array(scalar).min(1) }),
  z.strictObject({ not_in: z.array(scalar).min(1) }),
  z.strictObject({ gt: z.number() }),
  z.strictObject({ gte: z.number() }),
  z.strictObject({ lt: z.number() }),
  z.strictObject({ lte: z.number() }),
  z.strictObject({ exists: z.boolean() }),
  z.strictObject({ contains: z.string() }),
  /** Case-insensitive, as e-mail addresses and domains are; a list means any of them. */
  z.strictObject({ starts_with: oneOrMoreStrings }),
  z.strictObject({ ends_with: oneOrMoreStrings }),
  /** A JavaScript regular expression, `^a.*z$`, or with flags, `/^a.*z$/i`; it matches anywhere unless anchored. */
  z.strictObject({ matches: z.string().min(1) }),
  /** A list of the rules file's `lists`, compared case-insensitively. */
  z.strictObject({ in_list: listName }),
  z.strictObject({ not_in_list: listName }),
] as const;
const valueCondition = z.union([scalar, ...operatorConditions]);

/**
 * A condition on one value: a bare scalar means equals; otherwise exactly one operator. `domain` applies a condition
 * to the domain of an e-mail address (after the last @, lowercased); a value without one matches only
 * `domain: { exists: false }`.
 */
export const conditionSchema = z.union([scalar, ...operatorConditions, z.strictObject({ domain: valueCondition })], {
  // The issue is the whole condition's: say which part is wrong when it is the condition under domain.
  error: (issue) => {
    const input = issue.input;
    if (input !== null && typeof input === 'object' && !Array.isArray(input) && 'domain' in input && Object.keys(input).length === 1) {
      return `domain takes a condition on the domain: ${conditionProblem((input as { domain: unknown }).domain, operatorNames)}`;
    }
    return conditionProblem(input, [...operatorNames, 'domain']);
  },
});

/** What each operator takes, for the message of a condition that gives it something else. */
const operatorTakes: Partial<Record<string, string>> = {
  equals: 'a value (a string, number or boolean)',
  not_equals: 'a value (a string, number or boolean)',
  in: 'a list of values, e.g. [pro, team]',
  not_in: 'a list of values, e.g. [pro, team]',
  gt: 'a number',
  gte: 'a number',
  lt: 'a number',
  lte: 'a number',
  exists: 'true or false',
  contains: 'a string',
  starts_with: 'a string, or a list of strings',
  ends_with: 'a string, or a list of strings',
  matches: 'a regular expression, e.g. ^pro or /^pro/i',
  in_list: "the name of one of the rules file's lists",
  not_in_list: "the name of one of the rules file's lists",
  domain: 'a condition on the domain of an e-mail address',
};
const operatorNames = operatorConditions.map((object) => Object.keys(object.shape)[0]!);

/** Why a condition is not one, as precisely as its shape allows: the operator's operand, a misspelt operator, or two at once. */
function conditionProblem(input: unknown, allowed: readonly string[]): string {
  const expected = `must be a value, or an object with one of: ${allowed.join(', ')}`;
  if (input === null || typeof input !== 'object' || Array.isArray(input)) return expected;
  const keys = Object.keys(input);
  if (keys.length !== 1) return `${expected} (one operator per condition; ${keys.length === 0 ? 'none given' : `got ${keys.join(', ')}`})`;
  const [operator] = keys as [string];
  const given = JSON.stringify((input as Record<string, unknown>)[operator]) ?? 'nothing';
  if (allowed.includes(operator)) return `${operator} takes ${operatorTakes[operator] ?? 'another kind of value'}, not ${given.length > 40 ? `${given.slice(0, 40)}...` : given}`;
  const meant = closestName(operator, allowed);
  return `unknown operator "${operator}"${meant === undefined ? `: ${expected}` : `; did you mean "${meant}"?`}`;
}
export type Condition = z.output<typeof conditionSchema>;

export const signalName = identifier('signal');

const thresholds = {
  /** Matched when the value is at least this (the default is at_least: 1). */
  at_least: z.number().optional(),
  at_most: z.number().optional(),
  exactly: z.number().optional(),
};

const scoring = {
  description: z.string().optional(),
  /** Points when matched; negative for anti-PQL signals. @default 0 */
  points: z.number().default(0),
  /** engagement (behaviour) or fit (who they are). @default engagement, or fit for trait signals */
  category: z.enum(['engagement', 'fit']).optional(),
  /** Whose signal this is: a user's own, or an account's (rolled up over its members). @default user */
  level: z.enum(['user', 'account']).default('user'),
};

const eventSignal = z.strictObject({
  kind: z.literal('event'),
  ...scoring,
  ...thresholds,
  /** A track event name; pages and screens are `Page Viewed` / `Screen Viewed`; `*` is any event. */
  event: z.string().min(1).optional(),
  events: z.array(z.string().min(1)).min(1).optional(),
  /** Property filters, all of which must hold, e.g. `{ plan: pro, rows: { gte: 1000 } }`. Dotted names reach nested properties. */
  where: z.record(z.string(), conditionSchema).optional(),
  /** Count distinct values of this property instead of counting events (e.g. 3+ distinct invitees). */
  distinct: z.string().optional(),
  /** Sum this numeric property instead of counting events. */
  sum: z.string().optional(),
  /**
   * What is counted instead of events: `days` with a matching event, or `sessions`, runs of matching events with gaps
   * under 30 minutes. Sessions are counted per day of the rules' time zone: one running across midnight counts on both
   * days. An account's days are the days any member matched; its sessions are its members' added up. Not with distinct
   * or sum.
   * @default events
   */
  count: z.enum(['events', 'days', 'sessions']).optional(),
  /** Rolling window ending now. Without window or since_signup, the whole retained history counts. */
  window: durationSchema.optional(),
  /**
   * Splits the window into periods ending today (today is the last day of the first one; weeks are rolling 7-day
   * blocks, not calendar weeks) and applies the threshold to each period's count: the value is the number of periods
   * that meet it. The window must be a whole number of periods.
   */
  per: z.enum(['day', 'week']).optional(),
  /** With per: matched when at least this many periods meet the threshold ("in any week" is 1). @default 1 */
  periods: z.number().int().min(1).optional(),
  /** With per: matched when this many consecutive periods meet the threshold; the value is then the longest run. */
  consecutive: z.number().int().min(1).optional(),
  /** Only events within this long of signup. */
  since_signup: durationSchema.optional(),
  /** Halve the points for every this-long since the last matching event. */
  decay: durationSchema.optional(),
});

const timeToValueSignal = z.strictObject({
  kind: z.literal('time_to_value'),
  ...scoring,
  /**
   * Where the clock starts: `signup` (the signup time), or the first event of this event signal (its event and
   * where; its window, since_signup and count do not apply). @default signup
   */
  from: signalName.default('signup'),
  /** The event signal whose first event stops the clock (its event and where). Unmatched until it happens. */
  to: signalName,
  /**
   * Matched when the first `to` event came at most this long after the start; a `to` before the first `from` event
   * does not match (one before signup counts as at signup: the signup trait and the events come from different
   * clocks). The value is the time it took in days, to one decimal.
   */
  within: durationSchema,
});

const inactivitySignal = z.strictObject({
  kind: z.literal('inactivity'),
  ...scoring,
  /** Matched when there has been no event at all for this long; the value is the days since the last one. */
  inactive_for: durationSchema,
});

const signupAgeSignal = z.strictObject({
  kind: z.literal('signup_age'),
  ...scoring,
  /** Matched when signup was longer ago than this; the value is the days since signup. */
  signup_older_than: durationSchema,
});

const traitSignal = z.strictObject({
  kind: z.literal('trait'),
  ...scoring,
  /** A trait from identify (users) or group (accounts) calls. */
  trait: z.string().min(1),
  /** The condition on the trait. */
  is: conditionSchema,
  /** A user signal may look at the traits of the user's accounts instead (any account matching counts). @default self */
  of: z.enum(['self', 'account']).default('self'),
});

const combinationSignal = z.strictObject({
  kind: z.literal('combination'),
  ...scoring,
  all: z.array(signalName).min(1).optional(),
  any: z.array(signalName).min(1).optional(),
  not: signalName.optional(),
});

const activeUsersSignal = z.strictObject({
  kind: z.literal('active_users'),
  ...scoring,
  ...thresholds,
  /** Account signal: the number of members with any event within this window. */
  active_users: durationSchema,
});

const membersSignal = z.strictObject({
  kind: z.literal('members'),
  ...scoring,
  ...thresholds,
  /** Account signal: the number of members for whom this user signal matches (at_least 1 = any member). */
  members_matching: signalName,
  /** Matched only when every member matches. */
  every: z.boolean().optional(),
});

const bestMemberSignal = z.strictObject({
  kind: z.literal('best_member'),
  ...scoring,
  /** Account signal: matched when the best tier among the members is this tier or a higher one. */
  best_member_tier: z.string().min(1),
});

export const signalVariants = [eventSignal, timeToValueSignal, inactivitySignal, signupAgeSignal, traitSignal, combinationSignal, activeUsersSignal, membersSignal, bestMemberSignal] as const;

/** Which kind a signal is follows from its defining key, so rule authors never write `kind`. */
const kindByKey: [string, string][] = [
  ['event', 'event'],
  ['events', 'event'],
  ['inactive_for', 'inactivity'],
  ['signup_older_than', 'signup_age'],
  ['trait', 'trait'],
  ['all', 'combination'],
  ['any', 'combination'],
  ['not', 'combination'],
  ['active_users', 'active_users'],
  ['members_matching', 'members'],
  ['best_member_tier', 'best_member'],
  ['to', 'time_to_value'],
  ['within', 'time_to_value'],
];

const definingKeys = [...new Set(kindByKey.map(([key]) => key))];
const signalKeys = new Set(signalVariants.flatMap((variant) => Object.keys(variant.shape)));

/** `; did you mean "event" for "evnt"?` when a signal has no defining key because it is misspelt. */
function definingKeySuggestion(signal: unknown): string {
  if (signal === null || typeof signal !== 'object') return '';
  for (const key of Object.keys(signal).filter((key) => !signalKeys.has(key))) {
    const meant = closestName(key, definingKeys);
    if (meant !== undefined) return `; did you mean "${meant}" for "${key}"?`;
  }
  return '';
}

const signalSchema = z.preprocess(
  (value) => {
    if (value === null || typeof value !== 'object' || Array.isArray(value) || 'kind' in value) return value;
    const kind = kindByKey.find(([key]) => key in value)?.[1];
    return kind ? { kind, ...value } : value;
  },
  z.discriminatedUnion('kind', signalVariants, {
    error: (issue) => (issue.code === 'invalid_union' ? `a signal needs one of these keys: ${definingKeys.join(', ')}${definingKeySuggestion(issue.input)}` : undefined),
  }),
);
export type Signal = z.output<typeof signalSchema>;

/**
 * A route as the deployment config names it (lib/config.ts): a route outside this form could never have destinations.
 */
export const routeName = z.string().regex(/^[a-z][a-z0-9-]{0,31}$/, 'must be a route name: lowercase letters, digits and -, starting with a letter, at most 32 characters');

/** A trait of the entity (`region`), or of the user's accounts (`account.region`; an account reads its own). */
const traitReference = z
  .string()
  .min(1)
  .refine((name) => name !== accountTraitPrefix, `must name the trait after ${accountTraitPrefix}, e.g. ${accountTraitPrefix}region`);

const routeByTrait = z
  .strictObject({
    by: traitReference,
    map: z.record(z.string().min(1), routeName).refine((map) => Object.keys(map).length > 0, 'must map at least one trait value to a route'),
    default: routeName,
  })
  .describe(
    'Chooses the route from a trait: `by` names a trait of the entity (region) or of the user\'s accounts (account.region: ' +
      'the first account by account id whose trait is set; an account reads its own trait); its value, trimmed and compared ' +
      'without regard to case, picks a route from `map`; `default` is the route when the trait is missing or not in the map.',
  );

const routeByTraitKeys = Object.keys(routeByTrait.shape);

const routeSchema = z.union([routeName, routeByTrait], {
  // zod names no branch when a key is missing: say what a route by trait needs, and which key was meant when misspelt.
  error: (issue) => {
    if (issue.code !== 'invalid_union') return undefined;
    if (issue.input === null || typeof issue.input !== 'object') return 'must be a route name, or { by, map, default } to choose the route from a trait';
    const misspelt = Object.keys(issue.input).filter((key) => !routeByTraitKeys.includes(key));
    const meant = misspelt.map((key) => [key, closestName(key, routeByTraitKeys)] as const).find(([, closest]) => closest !== undefined);
    return `a route chosen by a trait needs by (the trait), map ({ trait value: route }) and default (a route)${meant ? `; did you mean "${meant[1]}" for "${meant[0]}"?` : ''}`;
  },
});

const tierSchema = z.strictObject({
  name: z.string().min(1),
  /** @default no minimum */
  min_score: z.number().optional(),
  /** Signals that must all match. */
  require: z.array(signalName).default([]),
  // Described with .describe rather than TSDoc: the JSON Schema editors get from `rules schema` shows it.
  route: routeSchema.describe('Where leads of this tier go: a route name such as sales, or { by, map, default } to choose it from a trait.'),
  owner: traitReference
    .optional()
    .describe(
      'The trait that names who owns the lead, e.g. owner_email, or account.owner_email for the user\'s accounts (the first by ' +
        'account id whose trait is set): the lead events carry its value as owner (null when the trait is missing).',
    ),
  /** @default both */
  level: z.enum(['user', 'account', 'both']).default('both'),
});
export type Tier = z.output<typeof tierSchema>;
export type TierRoute = Tier['route'];

/**
 * What converting means: an event (with property filters, as event signals have), or a trait taking a value (from
 * identify calls for users, group calls for accounts). An account converts when it or one of its members does.
 */
export const conversionSchema = z.strictObject({
  /** A track event name, e.g. `Order Completed`. */
  event: z.string().min(1).optional(),
  /** Property filters on the event, all of which must hold, as in event signals. */
  where: z.record(z.string(), conditionSchema).optional(),
  /** A trait whose new value, set by an identify or group call, converts, e.g. `plan`. */
  trait: z.string().min(1).optional(),
  /** The condition on the trait's new value, e.g. `{ in: [pro, business] }`. */
  is: conditionSchema.optional(),
  /** Converted customers leave the lead tiers unless this is true. @default false */
  keep_in_tiers: z.boolean().default(false),
});
export type ConversionRule = z.output<typeof conversionSchema>;

/**
 * A named list of values for in_list and not_in_list: inline, or a text file with one value a line (blank lines and
 * lines starting with # are skipped), relative to the rules file. A file is read where the rules file is read from
 * disk, and its values inlined: the evaluator's bundle carries them (lib/config.ts).
 */
const listSchema = z.union([z.array(z.string().min(1)).min(1), z.strictObject({ file: z.string().min(1) })], {
  error: 'must be a list of values, or { file: path } naming a text file with one value a line',
});

export const rulesFileSchema = z.strictObject({
  version: z.literal(1, { error: 'must be 1 (the rules file format version)' }),
  name: z.string().optional(),
  /**
   * The time zone whose calendar days the rules count in (windows, since-signup spans, day rollups), an IANA name such
   * as Europe/Berlin. Changing it re-evaluates everyone from the stored events. @default UTC
   */
  timezone: z
    .string()
    .refine((zone) => isTimeZone(zone), 'must be an IANA time zone such as Europe/Berlin or America/New_York')
    .optional(),
  /** Lists of values by name, e.g. free mail domains, for the in_list and not_in_list conditions. */
  lists: z.record(listName, listSchema).optional(),
  /** Where signup time comes from: a trait (e.g. createdAt) when set and present, else the first event. */
  signup: z.strictObject({ trait: z.string().min(1) }).optional(),
  signals: z.record(signalName, signalSchema).refine((signals) => Object.keys(signals).length > 0, 'must define at least one signal'),
  scoring: z.strictObject({ cap: z.number().positive().optional() }).default({}),
  /** Evaluated top-down: a lead gets the first tier whose minimum score and required signals it meets. */
  tiers: z.array(tierSchema).min(1, 'must define at least one tier'),
  identity: z
    .strictObject({
      /**
       * Evaluate anonymous visitors never claimed by a user (no identify, no alias) as leads of their own: no email, no
       * one to call, so off by default, and then they cost no evaluation. @default false
       */
      anonymous_leads: z.boolean().default(false),
    })
    .default({ anonymous_leads: false }),
  /** What converting means; without it the evaluator records no conversions. */
  conversion: conversionSchema.optional(),
  policy: z
    .strictObject({
      /** Which transitions are published. @default all four */
      notify: z.array(z.enum(['qualified', 'tier_changed', 'disqualified', 'converted'])).default(['qualified', 'tier_changed', 'disqualified', 'converted']),
      /** After a lead is disqualified, it cannot qualify again for this long. @default 0d */
      cooldown: durationSchema.optional(),
      /**
       * Sales feedback's reason codes and how long each holds a lead out of the tiers (core/lead-feedback.ts).
       * @default { not_a_fit: 30d, bad_timing: 14d, already_customer: 365d }; feedback without a reason holds for cooldown, else 30d
       */
      feedback_reasons: z.record(identifier('feedback reason'), durationSchema).optional(),
    })
    .default({ notify: ['qualified', 'tier_changed', 'disqualified', 'converted'] }),
});

export type RulesFile = z.output<typeof rulesFileSchema>;

function isTimeZone(zone: string): boolean {
  try {
    calendarOf(zone);
    return true;
  } catch {
    return false;
  }
}

