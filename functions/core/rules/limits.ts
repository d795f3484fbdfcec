/**
 * How many distinct values a `distinct` signal counts, at most: enough to tell "3+ distinct invitees", bounded so a
 * rollup stays small whatever the traffic. A count past it reads as this many. In a module of its own because both the
 * engine and the rules file's checks (ruleset.ts) read it: ruleset.ts cannot import the engine, which imports it, and
 * schema.ts would bring zod into the evaluator's bundle.
 */
export const maxDistinctValues = 200;
