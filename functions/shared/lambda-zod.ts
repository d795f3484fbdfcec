/**
 * What `zod` means inside a Lambda bundle (lib/lambda-bundling.ts aliases the package to this module; the CLI, the
 * local runtime, the tests and synth use the real package). Why: the code imports `{ z } from 'zod'`, a namespace
 * object, and esbuild keeps every member of a namespace object it cannot see through: all of zod classic, with its
 * 40-odd locales (about 260 KB minified), JSON Schema import, the schema compiler and the rest, 340 KB in all. This
 * `z` is the namespace of ./lambda-zod-members.ts, which names only the builders the functions use, so esbuild drops
 * everything else. Messages stay zod's English ones: zod registers its `en` locale itself when it builds the first
 * schema (test/infra/bundling.test.ts compares the issues of bundled schemas with the package's).
 */
import * as z from './lambda-zod-members';

export * from './lambda-zod-members';
export { z, z as default };
