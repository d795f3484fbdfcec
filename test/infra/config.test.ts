import { mkdtempSync, writeFileSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { Annotations, Match } from 'aws-cdk-lib/assertions';
import { describe, expect, it } from 'vitest';
import { loadConfig } from '../../lib/config';
import { buildStack, testRulesFile } from './synth';

/** Writes a config file naming the example rules (tiers routing to sales and nurture) and loads it as bin/app.ts does. */
function load(rest: string) {
  const path = join(mkdtempSync(join(tmpdir(), 'pql-radar-config-')), 'pql-radar.config.yaml');
  writeFileSync(path, `rules: ${testRulesFile}\n${rest}`);
  return () => loadConfig(path);
}

describe('routes', () => {
  it('fail the synth, naming the route, when a tier routes to one without destinations', () => {
    expect(load('routes:\n  sales:\n    - type: sqs\n')).toThrow(/line 2: routes: route "nurture" \(of tier .+\) has no destination: add one under routes\.nurture/s);
  });

  it('fail the synth when a route has an empty list of destinations', () => {
    expect(load('routes:\n  sales: []\n  nurture:\n    - type: sqs\n')).toThrow(/routes\.sales.*a route needs at least one destination/s);
  });

  it('pass when every route of a tier has a destination', () => {
    expect(load('routes:\n  sales:\n    - type: sqs\n  nurture:\n    - type: sqs\n')().config.routes).toEqual({ sales: [{ type: 'sqs' }], nurture: [{ type: 'sqs' }] });
  });
});

describe('alarmEmails', () => {
  const noEmails = 'No alarmEmails in the config: alarms go only to the SNS topic of the AlarmTopicArn output';

  it('missing: a synth warning on the alarm topic, not an error (the topic may be subscribed elsewhere)', () => {
    const { stack } = buildStack({ config: { alarmEmails: [] } });
    Annotations.fromStack(stack).hasWarning('/PqlRadar/Monitoring/AlarmTopic', Match.stringLikeRegexp(noEmails));
  });

  it('given: no warning', () => {
    const { stack } = buildStack();
    Annotations.fromStack(stack).hasNoWarning('*', Match.stringLikeRegexp(noEmails));
  });
});

it('reserves evaluator concurrency only when evaluation.reservedConcurrency is true', () => {
  const reserved = (config: Record<string, unknown>) => {
    const { stack } = buildStack({ config });
    return (stack.evaluator.handler.node.defaultChild as { reservedConcurrentExecutions?: number }).reservedConcurrentExecutions;
  };
  expect(reserved({})).toBeUndefined();
  expect(reserved({ evaluation: { shards: 6, reservedConcurrency: true } })).toBe(6);
});
