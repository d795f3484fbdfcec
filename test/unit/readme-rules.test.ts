import { readFileSync } from 'node:fs';
import { join } from 'node:path';
import { describe, expect, it } from 'vitest';
import { loadRules } from '../../functions/core/rules/load';
import { rulesFileSchema } from '../../functions/core/rules/schema';
import { tierWarnings } from '../../functions/core/rules/tier-warnings';
import { yamlFileData } from '../../functions/core/yaml-file';
import { readmeBlocks } from '../support/readme';

/** The README's sections about rules: every YAML or JSON block in them is rules, a whole file or a part of one. */
const rulesSections = ['PQL rules', 'The evaluator', 'Sales feedback', 'Backtest: does a rule predict conversion?'];
const snippets = readmeBlocks().filter((block) => rulesSections.includes(block.section) && ['yaml', 'json'].includes(block.language));

/** A whole rules file says its format version; a part of one does not. */
const isWholeFile = (code: string) => Object.hasOwn(yamlFileData(code) as object, 'version');
const wholeFiles = snippets.filter((block) => isWholeFile(block.code));
const parts = snippets.filter((block) => !isWholeFile(block.code));

/** As `rules check` reads them, with list files relative to examples/, where the README's list file is. */
const check = (text: string, source: string) => {
  const ruleset = loadRules(text, source, (path) => readFileSync(join(import.meta.dirname, '../../examples', path), 'utf8'));
  return tierWarnings(ruleset.file);
};

const ruleFileKeys = Object.keys(rulesFileSchema.shape);

/**
 * A part placed into the README's first whole file, whose signals the parts build on: its signals and lists are added
 * to the file's, any other key replaces the file's. A part with none of a rules file's keys is signals, which the
 * README shows indented as under `signals:`.
 */
function placed(part: string, file: string): string {
  const partData = yamlFileData(part) as Record<string, unknown>;
  const fileData = yamlFileData(file) as Record<string, Record<string, unknown>>;
  const added = Object.keys(partData).some((key) => ruleFileKeys.includes(key)) ? partData : { signals: partData };
  const merged: Record<string, unknown> = { ...fileData, ...added };
  for (const key of ['signals', 'lists']) {
    if (fileData[key] !== undefined && added[key] !== undefined) merged[key] = { ...fileData[key], ...(added[key] as object) };
  }
  return JSON.stringify(merged, null, 2);
}

describe("the README's rules snippets", () => {
  it('are found: whole files and parts', () => {
    expect(wholeFiles.length).toBeGreaterThan(0);
    expect(parts.length).toBeGreaterThan(0);
  });

  it.each(wholeFiles.map((block) => [block.line, block.code]))('README.md line %i passes rules check without warnings', (line, code) => {
    // Blank lines up to the fence, so that a problem names its line of the README.
    expect(check(`${'\n'.repeat(line)}${code}`, 'README.md')).toEqual([]);
  });

  it.each(parts.map((block) => [block.line, block.code]))("README.md line %i passes rules check placed into the README's first whole file", (line, code) => {
    expect(check(placed(code, wholeFiles[0]!.code), `README.md line ${line}, placed into line ${wholeFiles[0]!.line}`)).toEqual([]);
  });
});
