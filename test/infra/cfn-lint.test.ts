import { execFileSync, spawnSync } from 'node:child_process';
import { mkdtempSync, writeFileSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import type { Stack } from 'aws-cdk-lib';
import { Template } from 'aws-cdk-lib/assertions';
import { beforeAll, expect, it } from 'vitest';
import { loadConfig } from '../../lib/config';
import { PqlRadarStack } from '../../lib/pql-radar-stack';
import { buildStack, testApp } from './synth';

/**
 * cfn-lint (1.x, a Python tool: `pip install cfn-lint`) on every template the infra tests synthesize. It is on the
 * machines and CI that run these tests: a missing cfn-lint fails here, so a lint that did not run never passes.
 * Rules are ignored only on the resource concerned, with the reason, in its `cfn-lint` metadata (lib/).
 */
beforeAll(() => {
  const version = spawnSync('cfn-lint', ['--version'], { encoding: 'utf8' });
  if (version.error || version.status !== 0) {
    throw new Error(`cfn-lint is not on PATH (${version.error?.message ?? version.stderr}): install it with \`pip install cfn-lint\``);
  }
});

const stacks: Record<string, () => Stack> = {
  'every destination type and the default (Firehose) ingest buffer (test/infra/synth.ts)': () => buildStack().stack,
  'every destination type without an ingest buffer': () => buildStack({ config: { ingestBuffer: false } }).stack,
  'every destination type and the Kinesis ingest buffer': () => buildStack({ config: { ingestBuffer: { service: 'kinesis' } } }).stack,
  'every destination type and an ingest function URL': () => buildStack({ config: { ingest: { functionUrl: { reservedConcurrency: 50 } } } }).stack,
  'every destination type and a Standard-IA table': () => buildStack({ config: { tableClass: 'standard-infrequent-access' } }).stack,
  'the default config (pql-radar.config.yaml)': () => {
    const { config, rulesFile } = loadConfig(join(import.meta.dirname, '../../pql-radar.config.yaml'));
    return new PqlRadarStack(testApp(), 'PqlRadar', { config, rulesFile });
  },
};

it.each(Object.keys(stacks))('finds nothing in the template of %s', (name) => {
  const path = join(mkdtempSync(join(tmpdir(), 'pql-radar-cfn-lint-')), 'template.json');
  writeFileSync(path, JSON.stringify(Template.fromStack(stacks[name]!()).toJSON(), null, 1));
  let findings = '';
  try {
    execFileSync('cfn-lint', ['--format', 'parseable', '--', path], { encoding: 'utf8' });
  } catch (error) {
    // Exit codes 2 (error), 4 (warning) and 8 (informational) all count: the findings are the output.
    const { stdout, stderr } = error as { stdout?: string; stderr?: string };
    findings = `${stdout ?? ''}${stderr ?? ''}`.trim() || String(error);
  }
  expect(findings).toBe('');
}, 60_000);
