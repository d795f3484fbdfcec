import type { Condition, TierRoute } from './schema';

/**
 * The value of a part of a rules file the schema refused, as the checks beyond the schema read a refused file
 * (./ruleset.ts checkedRules): given, but not known. The checks that read it are left out, as their verdict would be
 * a guess; it still counts as given, so that no check says it is missing; and a name it defines (a signal refused as
 * a whole) counts as defined. A module of its own, so that the lenient schema (./lenient-schema.ts, zod) and the
 * checks, in the evaluator's bundle (no zod), both know it.
 */
export const refused: unique symbol = Symbol('refused by the schema');
export type Refused = typeof refused;

/**
 * Rules file data as read leniently (./lenient-schema.ts): each field, list item and map entry may be `refused`, a
 * signal's kind excepted (a signal without a known kind is refused whole). A condition, a route and a list file are
 * one value each, refused whole.
 */
export type Checked<T> = T extends Condition | TierRoute | { file: string }
  ? T
  : T extends readonly (infer Item)[]
    ? (Checked<Item> | Refused)[]
    : T extends object
      ? { [K in keyof T]: K extends 'kind' ? T[K] : Checked<T[K]> | Refused }
      : T;

/** Whether a value read leniently is known: given and not refused. */
export const known = <T>(value: T | Refused | undefined): value is T => value !== undefined && value !== refused;
