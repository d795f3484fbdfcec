import { mkdtempSync, readFileSync, writeFileSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { Template } from 'aws-cdk-lib/assertions';
import { parse } from 'yaml';
import { describe, expect, it } from 'vitest';
import { configSchema, loadConfig } from '../../lib/config';
import { buildStack, testRulesFile } from './synth';

/**
 * The README's "Deploying to your AWS account" shows the config as inline snippets (`ingestBuffer: { service: kinesis
 * }`, `evaluation.reservedConcurrency: true`): each must still be a config the synth takes, and each it gives as the
 * defaults must still be them, so the guide cannot drift from lib/config.ts.
 */
const readme = readFileSync(join(import.meta.dirname, '../../README.md'), 'utf8');
const section = readme.slice(readme.indexOf('## Deploying to your AWS account'), readme.indexOf('\n## Benchmarks'));

/**
 * Every inline code span of the section that sets a config key, as config-file input: `key: value` where key is a
 * top-level config key, or a dotted path from one (`ingest.requestLogs: true`). Fenced blocks are left out; a span may
 * wrap onto the next line, as Markdown lets it.
 */
function configSnippets(markdown: string): { text: string; input: Record<string, unknown> }[] {
  const topLevelKeys = Object.keys(configSchema.shape);
  const spans = [...markdown.replace(/^```[\s\S]*?^```/gm, '').matchAll(/`([^`]+)`/g)].map((match) => match[1]!.replace(/\s*\n\s*/g, ' '));
  return [...new Set(spans)].flatMap((text) => {
    const key = /^([A-Za-z.]+): /.exec(text)?.[1];
    if (key === undefined || !topLevelKeys.includes(key.split('.')[0]!)) return [];
    const [[path, value]] = Object.entries(parse(text) as Record<string, unknown>) as [[string, unknown]];
    const input = path.split('.').reduceRight<unknown>((nested, part) => ({ [part]: nested }), value) as Record<string, unknown>;
    return [{ text, input }];
  });
}

/** A config of the example rules (tiers routing to sales and nurture) with `input` set, loaded as bin/app.ts does. */
function load(input: Record<string, unknown>) {
  const path = join(mkdtempSync(join(tmpdir(), 'pql-radar-readme-')), 'pql-radar.config.yaml');
  writeFileSync(path, JSON.stringify({ rules: testRulesFile, routes: { sales: [{ type: 'sqs' }], nurture: [{ type: 'sqs' }] }, ...input }));
  return loadConfig(path).config;
}

const snippets = configSnippets(section);

/** The snippets the README gives as the defaults, each with the least config that means the same. */
const defaults: Record<string, Record<string, unknown>> = {
  'delivery: { retryHours: 24, logDays: 14 }': {},
  'health: { liftAlarmBelow: 1.0, everyHours: 24 }': {},
  'ingest: { requestLogs: false }': {},
  'ingestBuffer: { service: firehose, batchingWindowSeconds: 300, retentionDays: 14 }': {},
  'ingestBuffer: { service: kinesis, shards: 1, batchingWindowSeconds: 300, retentionHours: 24 }': { ingestBuffer: { service: 'kinesis' } },
  'crm: [{ type: hubspot, tokenSecret: pql-radar/hubspot, companyIdProperty: pql_radar_account_id, requestsPerSecond: 5 }]': {
    crm: [{ type: 'hubspot', tokenSecret: 'pql-radar/hubspot' }],
  },
};

describe("the README's deploy config snippets", () => {
  it('are found: the section still shows the config this way', () => {
    expect(snippets.map(({ text }) => text)).toEqual(expect.arrayContaining([...Object.keys(defaults), 'ingestBuffer: false', 'evaluation.reservedConcurrency: true']));
  });

  it.each(snippets.map(({ text, input }) => [text, input] as const))('%s is a config the synth takes', (_text, input) => {
    expect(() => load(input)).not.toThrow();
  });

  it.each(Object.entries(defaults))('%s is what the config means without it', (text, least) => {
    const snippet = snippets.find((each) => each.text === text);
    expect(snippet, `the README no longer shows ${text}`).toBeDefined();
    expect(load(snippet!.input)).toEqual(load(least));
  });

  it('synthesize, and the outputs the README names are there', () => {
    const outputs = snippets.map(({ input }) => Object.keys(Template.fromStack(buildStack({ config: input }).stack).toJSON().Outputs));
    const deploy = section.slice(section.indexOf('**Deploy**'), section.indexOf('**First event**'));
    // The per-route and per-workspace outputs are checked by their examples in stack.test.ts.
    const named = [...deploy.matchAll(/`([A-Z][A-Za-z]+)`/g)].map((match) => match[1]!).filter((name) => !/^(LeadQueueUrl|WriteKeySecret)/.test(name));
    expect(named.length).toBeGreaterThan(5);
    for (const each of outputs) expect(each).toEqual(expect.arrayContaining(named));
    // ingest.functionUrl adds its own.
    expect(outputs[snippets.findIndex(({ text }) => text.startsWith('ingest: { functionUrl'))]).toContain('IngestFunctionUrl');
  });
});
