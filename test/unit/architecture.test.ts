import { existsSync, readdirSync, readFileSync } from 'node:fs';
import { dirname, join, relative, resolve } from 'node:path';
import ts from 'typescript';
import { describe, expect, it } from 'vitest';

// The layout's rules, read from the import graph: what a deployed function bundles, and what the domain depends on.
const root = resolve(import.meta.dirname, '../..');
const functions = join(root, 'functions');
const name = (file: string) => relative(root, file);

/** Every module a file names: static imports, re-exports, `import type` and dynamic `import()`. */
function specifiersOf(file: string): string[] {
  return ts.preProcessFile(readFileSync(file, 'utf8'), true, true).importedFiles.map((imported) => imported.fileName);
}

/** The file a relative specifier names; undefined for a package. */
function resolveRelative(from: string, specifier: string): string | undefined {
  if (!specifier.startsWith('.')) return undefined;
  const base = resolve(dirname(from), specifier);
  const file = [base, `${base}.ts`, join(base, 'index.ts')].find((candidate) => candidate.endsWith('.ts') && existsSync(candidate));
  if (!file) throw new Error(`${name(from)} imports ${specifier}, which is not a .ts file`);
  return file;
}

const localImports = (file: string) => specifiersOf(file).flatMap((specifier) => resolveRelative(file, specifier) ?? []);

function tsFilesUnder(folder: string): string[] {
  return readdirSync(folder, { recursive: true, encoding: 'utf8' })
    .filter((path) => path.endsWith('.ts'))
    .map((path) => join(folder, path));
}

/** Each file reachable from `entries` by relative imports, with the chain of imports that reaches it first. */
function reachable(entries: readonly string[]): Map<string, string[]> {
  const chains = new Map(entries.map((entry) => [entry, [entry]]));
  const queue = [...entries];
  for (let file = queue.shift(); file; file = queue.shift()) {
    for (const imported of localImports(file)) {
      if (chains.has(imported)) continue;
      chains.set(imported, [...chains.get(file)!, imported]);
      queue.push(imported);
    }
  }
  return chains;
}

/** The import cycles among `files`, each as the chain of files that closes it. */
function cycles(files: readonly string[]): string[][] {
  const found: string[][] = [];
  const done = new Set<string>();
  const visit = (file: string, path: string[]) => {
    if (path.includes(file)) {
      found.push([...path.slice(path.indexOf(file)), file]);
      return;
    }
    if (done.has(file)) return;
    for (const imported of localImports(file)) visit(imported, [...path, file]);
    done.add(file);
  };
  for (const file of files) visit(file, []);
  return found;
}

describe('deployed functions', () => {
  const handlerFolders = ['ingest', 'ingest-buffer-loader', 'lead-status', 'evaluator', 'notifier', 'bootstrap'].map((folder) => join(functions, folder));
  const forbidden = ['local', 'cli'].map((folder) => join(functions, folder) + '/');

  it.each(handlerFolders.map((folder) => [name(folder), folder]))('%s imports neither the local runtime nor the CLI, however indirectly', (_name, folder) => {
    const entries = tsFilesUnder(folder);
    expect(entries.length).toBeGreaterThan(0);
    const offending = [...reachable(entries).entries()]
      .filter(([file]) => forbidden.some((prefix) => file.startsWith(prefix)))
      .map(([, chain]) => chain.map(name).join(' -> '));
    expect(offending).toEqual([]);
  });
});

describe('functions/core', () => {
  const core = join(functions, 'core');
  const files = tsFilesUnder(core);

  it('has no import cycle', () => {
    expect(cycles(files).map((cycle) => cycle.map(name).join(' -> '))).toEqual([]);
  });

  it('imports only itself and packages that are not AWS', () => {
    const outside = files.flatMap((file) =>
      specifiersOf(file)
        .filter((specifier) => {
          const imported = resolveRelative(file, specifier);
          return imported === undefined ? /^(@aws-sdk|@aws-lambda-powertools|@smithy|aws-cdk-lib|aws-lambda)(\/|$)/.test(specifier) : !imported.startsWith(core + '/');
        })
        .map((specifier) => `${name(file)} imports ${specifier}`),
    );
    expect(outside).toEqual([]);
  });
});
