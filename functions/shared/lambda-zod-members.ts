/**
 * The members of `z` inside a Lambda bundle (see ./lambda-zod.ts): the value builders the deployed functions call, and
 * `NEVER`, which a transform returns with its issue, re-exported from zod classic by file path, because the bundle's
 * `zod` alias also catches every `zod/...` specifier.
 * Types (`z.output`, `z.ZodType`, `z.core.$ZodIssue`...) come from the real package at compile time and need no entry.
 * A builder missing here would be `undefined` in the bundle: test/infra/bundling.test.ts fails the build when a
 * bundled file calls a `z.` member that is not listed.
 */
export {
  array,
  boolean,
  coerce,
  discriminatedUnion,
  enum,
  iso,
  literal,
  looseObject,
  NEVER,
  null,
  number,
  object,
  preprocess,
  record,
  strictObject,
  string,
  union,
  unknown,
} from '../../node_modules/zod/v4/classic/external.js';
