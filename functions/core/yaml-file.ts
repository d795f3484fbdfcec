import { isMap, isScalar, isSeq, LineCounter, parseDocument, type Document, type Node, type Scalar } from 'yaml';
import type { z } from 'zod';
import { formatPath } from './field-path';
import { type FileProblem, type ProblemAt, validateFile } from './file-problems';

export { type FileProblem, FileProblemsError, formatProblem } from './file-problems';

/**
 * A file valid against the schema; or its problems, with (`refused`) the file's data and the lines of its paths when it
 * is YAML the schema refused, for a caller that checks what it can of the rest.
 */
type Parsed<T> = { ok: true; data: T; problemAt: ProblemAt } | { ok: false; problems: FileProblem[]; refused?: { data: unknown; problemAt: ProblemAt } };

const parseOptions = { uniqueKeys: true, prettyErrors: false } as const;

/**
 * A YAML or JSON file as plain data, as parseYamlFile validates it: what the evaluator's bundle gets as JSON
 * (lib/config.ts). Throws on a syntax error; parseYamlFile reports those as problems.
 */
export function yamlFileData(text: string): unknown {
  const document = parseDocument(text, parseOptions);
  if (document.errors.length > 0) throw document.errors[0]!;
  return document.toJS();
}

/**
 * Parses a YAML or JSON config file and validates it with a zod schema, turning every syntax error and every
 * schema issue into a problem with its path and line, so the person editing the file can go straight to it.
 * `issuePath` lets a caller move an issue to a better place (e.g. from an implied key to its object).
 */
export function parseYamlFile<S extends z.ZodType>(
  text: string,
  schema: S,
  issuePath: (path: PropertyKey[], document: Document) => PropertyKey[] = (path) => path,
): Parsed<z.output<S>> {
  const lineCounter = new LineCounter();
  const document = parseDocument(text, { lineCounter, ...parseOptions });
  if (document.errors.length > 0) {
    return {
      ok: false,
      problems: document.errors.map((error) => {
        const line = lineCounter.linePos(error.pos[0]).line;
        const twice = error.code === 'DUPLICATE_KEY' ? duplicateKey(document.contents, error.pos[0]) : undefined;
        if (twice) return { path: formatPath(twice.path), line, message: `the key ${JSON.stringify(twice.key)} is written twice (first on line ${lineCounter.linePos(twice.firstAt).line})` };
        return { path: '', line, message: error.message.split('\n')[0]! };
      }),
    };
  }
  const lineOf = (path: readonly PropertyKey[]) => {
    // The deepest node of the path that exists: a missing key is reported on the line of its parent object.
    for (let depth = path.length; depth >= 0; depth--) {
      // A key's own line: the value of a nested map or list starts on the line after its key.
      const parent = depth > 0 ? (document.getIn(path.slice(0, depth - 1) as unknown[], true) as Node | undefined) : undefined;
      const pair = isMap(parent) ? parent.items.find((item) => isScalar(item.key) && String(item.key.value) === String(path[depth - 1])) : undefined;
      const keyStart = pair && isScalar(pair.key) ? pair.key.range?.[0] : undefined;
      if (keyStart !== undefined) return lineCounter.linePos(keyStart).line;
      const node = document.getIn(path.slice(0, depth) as unknown[], true) as Node | undefined;
      const start = node && (isMap(node) || isSeq(node) || 'range' in node) ? node.range?.[0] : undefined;
      if (start !== undefined) return lineCounter.linePos(start).line;
    }
    return undefined;
  };
  const problemAt = (path: readonly PropertyKey[], message: string): FileProblem => {
    const line = lineOf(path);
    return { path: formatPath(path), ...(line !== undefined ? { line } : {}), message };
  };

  const data: unknown = document.toJS();
  const validated = validateFile(data, schema, problemAt, (path) => issuePath(path, document));
  return validated.ok ? { ok: true, data: validated.data, problemAt } : { ...validated, refused: { data, problemAt } };
}

/**
 * The key written again that starts at `offset` (where the yaml library reports DUPLICATE_KEY, with only "Map keys
 * must be unique"): its path, and where its first writing starts. The document keeps both pairs, so the path is found
 * in it; undefined for a key that is no plain value (a map used as a key), told in the library's words.
 */
function duplicateKey(node: unknown, offset: number, path: PropertyKey[] = []): { key: string; path: PropertyKey[]; firstAt: number } | undefined {
  if (isMap(node)) {
    for (const pair of node.items) {
      const key = isScalar(pair.key) ? String(pair.key.value) : undefined;
      if (key !== undefined && isScalar(pair.key) && pair.key.range?.[0] === offset) {
        const first = node.items.find((other) => isScalar(other.key) && String(other.key.value) === key)!;
        return { key, path: [...path, key], firstAt: (first.key as Scalar).range![0] };
      }
      const found = key === undefined ? undefined : duplicateKey(pair.value, offset, [...path, key]);
      if (found) return found;
    }
  }
  if (isSeq(node)) {
    for (const [index, item] of node.items.entries()) {
      const found = duplicateKey(item, offset, [...path, index]);
      if (found) return found;
    }
  }
  return undefined;
}
