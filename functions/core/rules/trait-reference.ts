/**
 * The prefix of a trait reference that reads the traits of the user's accounts (`account.region`; without it, the
 * entity's own trait): ./schema.ts checks references, ./routing.ts reads them. A module of its own, so that routing
 * (in the evaluator's bundle) need not import the schema (zod), nor the schema routing.
 */
export const accountTraitPrefix = 'account.';
