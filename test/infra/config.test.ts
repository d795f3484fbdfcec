import { execFile } from 'node:child_process';
import { mkdtempSync, writeFileSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { Annotations, Match } from 'aws-cdk-lib/assertions';
import { describe, expect, it } from 'vitest';
import { loadConfig } from '../../lib/config';
import { buildStack, loadRoutedConfig, synth, testRulesFile } from './synth';

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

  it('fail the synth on a second sqs entry under one route, which would be the same queue, naming it', () => {
    expect(load('routes:\n  sales:\n    - type: sqs\n    - type: email\n      addresses: [a@example.com]\n    - type: sqs\n  nurture:\n    - type: sqs\n')).toThrow(
      /line 7: routes\.sales\[2\]: a route has one queue, which its first sqs entry makes: remove this one/,
    );
  });

  it('pass when every route of a tier has a destination', () => {
    expect(load('routes:\n  sales:\n    - type: sqs\n  nurture:\n    - type: sqs\n')().config.routes).toEqual({ sales: [{ type: 'sqs' }], nurture: [{ type: 'sqs' }] });
  });
});

describe('retention', () => {
  const routes = 'routes:\n  sales:\n    - type: sqs\n  nurture:\n    - type: sqs\n';

  it("fails the synth, naming the signal, when a window reads more days than events are kept", () => {
    const load30 = load(`${routes}retentionDays: 30\n`);
    expect(load30).toThrow(/line 7: retentionDays: signal "barely_used" of .*activation\.rules\.yaml reads window 60d of events, but they are kept 30 days: give retentionDays: 60 or more, or a shorter window/);
    expect(load(`${routes}retentionDays: 60\n`)().config.retentionDays).toBe(60);
  });
});

describe('routes of a tier routing by a trait', () => {
  it('pass when every route of the map and the default has destinations', () => {
    expect(Object.keys(loadRoutedConfig(['sales-emea', 'sales-us', 'sales', 'nurture'])().config.routes)).toEqual(['sales-emea', 'sales-us', 'sales', 'nurture']);
  });

  it.each([
    ['a route of the map', ['sales-emea', 'sales', 'nurture'], 'sales-us'],
    ['the default', ['sales-emea', 'sales-us', 'nurture'], 'sales'],
  ])('fail the synth, naming the route, when %s has no destination', (_name, routes, missing) => {
    expect(loadRoutedConfig(routes)).toThrow(`routes: route "${missing}" (of tier PQL-A in routed.rules.yaml) has no destination: add one under routes.${missing}, e.g. - type: sqs`);
  });

  it('fail the synth on a misspelt route, naming the route meant on both sides', () => {
    const load = loadRoutedConfig(['sales-emae', 'sales-us', 'sales', 'nurture']);
    expect(load).toThrow('line 3: routes.sales-emae: no tier of routed.rules.yaml routes to "sales-emae"; did you mean "sales-emea"? (its tiers route to: sales-emea, sales-us, sales, nurture)');
    expect(load).toThrow('routes: route "sales-emea" (of tier PQL-A in routed.rules.yaml) has no destination: add one under routes.sales-emea, e.g. - type: sqs; did you mean "sales-emae"?');
  });
});

describe('secrets', () => {
  it.each([
    ['a Slack webhook URL', 'routes:\n  sales:\n    - type: slack\n      webhookUrlSecret: https://hooks.slack.com/services/T000/B000/XXXX\n  nurture:\n    - type: sqs\n', 'line 5: routes.sales[0].webhookUrlSecret'],
    ['a signing secret', 'routes:\n  sales:\n    - type: webhook\n      url: https://hooks.example.com/x\n      signingSecret: whsec_MfKQ9r8GKYqrTwjUPD8ILPZIo2LaLaSw\n  nurture:\n    - type: sqs\n', 'line 6: routes.sales[0].signingSecret'],
    ['a HubSpot token', 'routes:\n  sales:\n    - type: sqs\n  nurture:\n    - type: sqs\ncrm:\n  - type: hubspot\n    tokenSecret: pat-na1-11111111-2222-3333-4444-555555555555\n', 'line 9: crm[0].tokenSecret'],
  ])("fail the synth on %s given for the secret's name, before it reaches the template", (_name, rest, where) => {
    expect(load(rest)).toThrow(`${where}: looks like the secret's value, not its name`);
  });

  it('take a name or an ARN, and refuse what Secrets Manager would not call a secret', () => {
    const hubspot = (secret: string) => load(`routes:\n  sales:\n    - type: sqs\n  nurture:\n    - type: sqs\ncrm:\n  - type: hubspot\n    tokenSecret: "${secret}"\n`);
    expect(hubspot('pql-radar/hubspot')().config.crm[0]?.tokenSecret).toBe('pql-radar/hubspot');
    const arn = 'arn:aws:secretsmanager:eu-west-1:123456789012:secret:pql-radar/hubspot-AbCdEf';
    expect(hubspot(arn)().config.crm[0]?.tokenSecret).toBe(arn);
    expect(hubspot('my hubspot token')).toThrow('crm[0].tokenSecret: must be the name of a Secrets Manager secret (letters, digits and /_+=.@-) or its ARN');
  });
});

describe('destination types', () => {
  it('fail the synth on a missing or misspelt type of a route\'s destination, naming the types a route takes and the one meant', () => {
    const destination = (entry: string) => load(`routes:\n  sales:\n    - ${entry}\n  nurture:\n    - type: sqs\n`);
    const takes = 'a route takes slack, webhook, email, sqs, lambda (a CRM, hubspot, goes under crm:)';
    expect(destination('type: slak\n      webhookUrlSecret: pql-radar/slack')).toThrow(`line 4: routes.sales[0].type: unknown type "slak": ${takes}; did you mean "slack"?`);
    expect(destination('webhookUrlSecret: pql-radar/slack')).toThrow(`line 4: routes.sales[0].type: is required: ${takes}`);
  });

  it('fail the synth on a crm entry that is not hubspot, saying where notifications go', () => {
    expect(load('routes:\n  sales:\n    - type: sqs\n  nurture:\n    - type: sqs\ncrm:\n  - type: slack\n    webhookUrlSecret: pql-radar/slack\n')).toThrow(
      'line 8: crm[0].type: unknown type "slack": crm takes hubspot (notifications, such as slack, go under a route)',
    );
  });
});

describe('crm', () => {
  it('refuses hubspot under a route, saying where it goes', () => {
    expect(load('routes:\n  sales:\n    - type: sqs\n    - type: hubspot\n      tokenSecret: pql-radar/hubspot\n  nurture:\n    - type: sqs\n')).toThrow(
      /line 5: routes\.sales\[1\]: hubspot syncs every transition of every lead, whatever the route: move it to crm:/s,
    );
  });

  it('takes hubspot under crm, with the defaults of its company property and pace', () => {
    const { config } = load('routes:\n  sales:\n    - type: sqs\n  nurture:\n    - type: sqs\ncrm:\n  - type: hubspot\n    tokenSecret: pql-radar/hubspot\n')();
    expect(config.crm).toEqual([{ type: 'hubspot', tokenSecret: 'pql-radar/hubspot', companyIdProperty: 'pql_radar_account_id', requestsPerSecond: 5 }]);
  });

  it('is empty by default', () => {
    expect(load('routes:\n  sales:\n    - type: sqs\n  nurture:\n    - type: sqs\n')().config.crm).toEqual([]);
  });
});

describe('webhook url', () => {
  const webhook = (url: string) => load(`routes:\n  sales:\n    - type: webhook\n      url: "${url}"\n      signingSecret: pql-radar/hook\n  nurture:\n    - type: sqs\n`);

  it.each(['https://user:pass@hooks.example.com/pql', 'https://token@hooks.example.com/pql', 'https://:pass@hooks.example.com/pql'])(
    'fails the synth on credentials in %s, before they reach the template',
    (url) => {
      expect(webhook(url)).toThrow('line 5: routes.sales[0].url: must not hold a user name or password: the URL is written into the CloudFormation template in plain text; receivers verify requests by their Standard Webhooks signature (signingSecret, kept in Secrets Manager) instead');
    },
  );

  it.each([
    ['https://localhost:8080/hook', 'localhost is a loopback address'],
    ['https://LOCALHOST./hook', 'localhost. is a loopback address'],
    ['https://receiver.localhost/hook', 'receiver.localhost is a loopback address'],
    ['https://127.0.0.1/hook', '127.0.0.1 is a loopback address'],
    ['https://127.8.9.10/hook', '127.8.9.10 is a loopback address'],
    // The URL parser's forms of 127.0.0.1.
    ['https://2130706433/hook', '127.0.0.1 is a loopback address'],
    ['https://0x7f.1/hook', '127.0.0.1 is a loopback address'],
    ['https://[::1]/hook', '[::1] is a loopback address'],
    ['https://[::ffff:127.0.0.1]/hook', '[::ffff:7f00:1] is a loopback address'],
    ['https://169.254.169.254/latest/meta-data/', '169.254.169.254 is a link-local address (169.254.169.254 is the instance metadata service)'],
    ['https://[fe80::1]/hook', '[fe80::1] is a link-local address'],
    ['https://10.1.2.3/hook', '10.1.2.3 is a private address'],
    ['https://172.16.0.1/hook', '172.16.0.1 is a private address'],
    ['https://172.31.255.254/hook', '172.31.255.254 is a private address'],
    ['https://192.168.1.10/hook', '192.168.1.10 is a private address'],
    ['https://[fd00:ec2::254]/hook', '[fd00:ec2::254] is a private address'],
    ['https://0.0.0.0/hook', '0.0.0.0 is an unspecified address (this host)'],
  ])('fails the synth on %s, which a notifier in AWS cannot reach or must not', (url, why) => {
    expect(webhook(url)).toThrow(`line 5: routes.sales[0].url: must be reachable from AWS: ${why}`);
  });

  it.each(['https://hooks.example.com/pql', 'https://172.32.0.1/hook', 'https://11.0.0.1/hook', 'https://192.169.0.1/hook', 'https://[2001:db8::1]/hook', 'https://localhost.example.com/hook'])(
    'takes %s',
    (url) => {
      expect(webhook(url)().config.routes['sales']).toMatchObject([{ type: 'webhook', url }]);
    },
  );
});

describe('a destination listed twice', () => {
  const nurture = '  nurture:\n    - type: sqs\n';

  it.each([
    [
      'a webhook URL under one route, case and default port aside',
      'routes:\n  sales:\n    - type: webhook\n      url: https://hooks.example.com/pql\n      signingSecret: pql-radar/hook\n    - type: sqs\n    - type: webhook\n      url: https://HOOKS.example.com:443/pql\n      signingSecret: pql-radar/other-hook\n' + nurture,
      'line 9: routes.sales[2].url: the same webhook URL as routes.sales[0]: two notifiers would post every lead event of the route to it twice; remove one',
    ],
    [
      'a Slack webhook secret under one route',
      'routes:\n  sales:\n    - type: slack\n      webhookUrlSecret: pql-radar/slack\n    - type: slack\n      webhookUrlSecret: pql-radar/slack\n' + nurture,
      'line 7: routes.sales[1].webhookUrlSecret: the same Slack webhook secret as routes.sales[0]: two notifiers would post every lead event of the route to it twice; remove one',
    ],
    [
      'a HubSpot token secret under crm',
      'routes:\n  sales:\n    - type: sqs\n' + nurture + 'crm:\n  - type: hubspot\n    tokenSecret: pql-radar/hubspot\n  - type: hubspot\n    tokenSecret: pql-radar/hubspot\n    requestsPerSecond: 2\n',
      'line 11: crm[1].tokenSecret: the same token secret as crm[0]: two notifiers would sync every lead transition to that HubSpot account twice; remove one',
    ],
  ])('fails the synth, naming both entries: %s', (_name, config, message) => {
    expect(load(config)).toThrow(message);
  });

  it('fails on what is wrong with an entry that is no URL, not on comparing it', () => {
    const webhook = '    - type: webhook\n      url: hooks.example.com/pql\n      signingSecret: pql-radar/hook\n';
    expect(load(`routes:\n  sales:\n${webhook}${webhook}${nurture}`)).toThrow(/: 2 problems\n  line 5: routes\.sales\[0\]\.url: must be an https:\/\/ URL\n  line 8: routes\.sales\[1\]\.url: must be an https:\/\/ URL$/);
  });

  it('is taken under two routes, whose lead events differ, and other URLs and secrets under one', () => {
    const slack = '    - type: slack\n      webhookUrlSecret: pql-radar/slack\n';
    const webhook = (path: string) => `    - type: webhook\n      url: https://hooks.example.com/${path}\n      signingSecret: pql-radar/hook\n`;
    const { config } = load(`routes:\n  sales:\n${slack}${webhook('a')}${webhook('b')}  nurture:\n${slack}${webhook('a')}`)();
    expect(config.routes['sales']).toHaveLength(3);
    expect(config.routes['nurture']).toHaveLength(2);
  });
});

describe('health', () => {
  const routes = 'routes:\n  sales:\n    - type: sqs\n  nurture:\n    - type: sqs\n';

  it('alarms below a lift of 1.0 and runs every 24 hours by default', () => {
    expect(load(routes)().config.health).toEqual({ liftAlarmBelow: 1, everyHours: 24 });
  });

  it('takes a positive threshold and 1 to 24 hours, and no other key', () => {
    expect(load(`${routes}health:\n  liftAlarmBelow: 1.5\n  everyHours: 6\n`)().config.health).toEqual({ liftAlarmBelow: 1.5, everyHours: 6 });
    expect(load(`${routes}health:\n  everyHours: 25\n`)).toThrow(/health\.everyHours/);
    expect(load(`${routes}health:\n  liftAlarmBelow: 0\n`)).toThrow(/health\.liftAlarmBelow/);
    expect(load(`${routes}health:\n  liftAlarmBellow: 1\n`)).toThrow(/liftAlarmBellow/);
  });
});

describe('delivery', () => {
  const routes = 'routes:\n  sales:\n    - type: sqs\n  nurture:\n    - type: sqs\n';

  it('retries 24 hours and logs 14 days by default', () => {
    expect(load(routes)().config.delivery).toEqual({ retryHours: 24, logDays: 14 });
  });

  it('takes a retry window of 1 to 336 hours and a log of 1 to 400 days', () => {
    expect(load(`${routes}delivery:\n  retryHours: 336\n  logDays: 400\n`)().config.delivery).toEqual({ retryHours: 336, logDays: 400 });
    expect(load(`${routes}delivery:\n  retryHours: 337\n`)).toThrow(/delivery\.retryHours/);
    expect(load(`${routes}delivery:\n  retryHours: 0\n`)).toThrow(/delivery\.retryHours/);
    expect(load(`${routes}delivery:\n  logDays: 401\n`)).toThrow(/delivery\.logDays/);
  });

  it('paces slack at one request per second and webhooks at ten by default', () => {
    const { config } = load(
      'routes:\n  sales:\n    - type: slack\n      webhookUrlSecret: s\n    - type: webhook\n      url: https://hooks.example.com/x\n      signingSecret: w\n      requestsPerSecond: 2\n  nurture:\n    - type: webhook\n      url: https://hooks.example.com/y\n      signingSecret: w\n',
    )();
    expect(config.routes['sales']).toEqual([
      { type: 'slack', webhookUrlSecret: 's', requestsPerSecond: 1 },
      { type: 'webhook', url: 'https://hooks.example.com/x', signingSecret: 'w', requestsPerSecond: 2 },
    ]);
    expect(config.routes['nurture']).toEqual([{ type: 'webhook', url: 'https://hooks.example.com/y', signingSecret: 'w', requestsPerSecond: 10 }]);
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

it('waits 10 minutes between evaluations of an account its members move unless evaluation.accountEveryMinutes says otherwise', () => {
  const routes = 'routes:\n  sales:\n    - type: sqs\n  nurture:\n    - type: sqs\n';
  expect(load(routes)().config.evaluation.accountEveryMinutes).toBe(10);
  expect(load(`${routes}evaluation:\n  accountEveryMinutes: 0\n`)().config.evaluation.accountEveryMinutes).toBe(0);
  expect(load(`${routes}evaluation:\n  accountEveryMinutes: -5\n`)).toThrow(/line 8: evaluation\.accountEveryMinutes: must be at least 0, not -5$/m);
  const evaluatorWaits = (config: Record<string, unknown>, seconds: string) =>
    synth(config).hasResourceProperties('AWS::Lambda::Function', { Environment: { Variables: Match.objectLike({ RUN_INTERVAL_SECONDS: '60', ACCOUNT_INTERVAL_SECONDS: seconds }) } });
  evaluatorWaits({}, '600');
  evaluatorWaits({ evaluation: { accountEveryMinutes: 30 } }, '1800');
});

it('waits 5 minutes between evaluations of a user with new events unless evaluation.userEveryMinutes says otherwise, 5 at most', () => {
  const routes = 'routes:\n  sales:\n    - type: sqs\n  nurture:\n    - type: sqs\n';
  expect(load(routes)().config.evaluation.userEveryMinutes).toBe(5);
  expect(load(`${routes}evaluation:\n  userEveryMinutes: 0\n`)().config.evaluation.userEveryMinutes).toBe(0);
  expect(load(`${routes}evaluation:\n  userEveryMinutes: 10\n`)).toThrow(/line 8: evaluation\.userEveryMinutes: must be at most 5, not 10$/m);
  const evaluatorWaits = (config: Record<string, unknown>, seconds: string) =>
    synth(config).hasResourceProperties('AWS::Lambda::Function', { Environment: { Variables: Match.objectLike({ USER_INTERVAL_SECONDS: seconds }) } });
  evaluatorWaits({}, '300');
  evaluatorWaits({ evaluation: { userEveryMinutes: 0 } }, '0');
});

it('gives the evaluator 1,024 MB unless evaluation.memoryMb says otherwise, within Lambda\'s range', () => {
  const routes = 'routes:\n  sales:\n    - type: sqs\n  nurture:\n    - type: sqs\n';
  expect(load(routes)().config.evaluation.memoryMb).toBe(1024);
  expect(load(`${routes}evaluation:\n  memoryMb: 64\n`)).toThrow(/line 8: evaluation\.memoryMb: must be at least 128, not 64$/m);
  const memory = (config: Record<string, unknown>) => (buildStack({ config }).stack.evaluator.handler.node.defaultChild as { memorySize?: number }).memorySize;
  expect(memory({})).toBe(1024);
  expect(memory({ evaluation: { memoryMb: 3008 } })).toBe(3008);
});

it('reserves evaluator concurrency only when evaluation.reservedConcurrency is true', () => {
  const reserved = (config: Record<string, unknown>) => {
    const { stack } = buildStack({ config });
    return (stack.evaluator.handler.node.defaultChild as { reservedConcurrentExecutions?: number }).reservedConcurrentExecutions;
  };
  expect(reserved({})).toBeUndefined();
  expect(reserved({ evaluation: { shards: 6, reservedConcurrency: true } })).toBe(6);
});

describe('tableClass', () => {
  const routes = 'routes:\n  sales:\n    - type: sqs\n  nurture:\n    - type: sqs\n';

  it('is standard by default, and takes standard-infrequent-access', () => {
    expect(load(routes)().config.tableClass).toBe('standard');
    expect(load(`${routes}tableClass: standard-infrequent-access\n`)().config.tableClass).toBe('standard-infrequent-access');
  });

  it('fails the synth naming the field and the classes it takes', () => {
    expect(load(`${routes}tableClass: infrequent\n`)).toThrow(/line 7: tableClass: must be one of standard, standard-infrequent-access, not "infrequent"$/m);
  });
});

describe('ingest.functionUrl', () => {
  const routes = 'routes:\n  sales:\n    - type: sqs\n  nurture:\n    - type: sqs\n';

  it('is off when absent, and takes a reserved concurrency of at least 1', () => {
    expect(load(routes)().config.ingest).toEqual({ rateLimit: 1000, burstLimit: 2000, requestLogs: false });
    expect(load(`${routes}ingest:\n  functionUrl: {}\n`)().config.ingest.functionUrl).toEqual({});
    expect(load(`${routes}ingest:\n  functionUrl:\n    reservedConcurrency: 50\n`)().config.ingest).toEqual({ rateLimit: 1000, burstLimit: 2000, requestLogs: false, functionUrl: { reservedConcurrency: 50 } });
    expect(load(`${routes}ingest:\n  functionUrl:\n    reservedConcurrency: 0\n`)).toThrow(/line 9: ingest\.functionUrl\.reservedConcurrency: must be at least 1, not 0$/m);
    expect(load(`${routes}ingest:\n  functionUrl:\n    cors: true\n`)).toThrow(/ingest\.functionUrl.*cors/s);
  });
});

describe('ingest.requestLogs', () => {
  const routes = 'routes:\n  sales:\n    - type: sqs\n  nurture:\n    - type: sqs\n';

  it('is off by default, and takes a boolean only', () => {
    expect(load(`${routes}ingest:\n  rateLimit: 50\n`)().config.ingest.requestLogs).toBe(false);
    expect(load(`${routes}ingest:\n  requestLogs: true\n`)().config.ingest.requestLogs).toBe(true);
    expect(load(`${routes}ingest:\n  requestLogs: yes please\n`)).toThrow(/line 8: ingest\.requestLogs: must be true or false, not the text "yes please"/);
  });
});

describe('ingestBuffer', () => {
  const routes = 'routes:\n  sales:\n    - type: sqs\n  nurture:\n    - type: sqs\n';

  it('is the Firehose buffer when absent (300 seconds, objects kept 14 days), and off with false', () => {
    expect(load(routes)().config.ingestBuffer).toEqual({ service: 'firehose', batchingWindowSeconds: 300, retentionDays: 14, draining: false });
    expect(load(`${routes}ingestBuffer: false\n`)().config.ingestBuffer).toBeNull();
  });

  it('needs its service named once written: a config from before firehose was the default meant kinesis, and is not taken for firehose', () => {
    const required = 'ingestBuffer.service: required: firehose (the default buffer) or kinesis (a stream; what ingestBuffer without a service meant before firehose became the default)';
    expect(load(`${routes}ingestBuffer: {}\n`)).toThrow(`line 7: ${required}`);
    expect(load(`${routes}ingestBuffer:\n  draining: true\n`)).toThrow(`line 7: ${required}`);
    expect(load(`${routes}ingestBuffer: true\n`)).toThrow("line 7: ingestBuffer: false (no buffer) or the buffer's settings, e.g. { service: firehose }");
  });

  it('with service kinesis: one shard, 300 seconds, records kept 24 hours, by default', () => {
    const kinesis = `${routes}ingestBuffer:\n  service: kinesis\n`;
    expect(load(`${kinesis}  shards: 2\n  batchingWindowSeconds: 300\n`)().config.ingestBuffer).toEqual({ service: 'kinesis', shards: 2, batchingWindowSeconds: 300, retentionHours: 24, draining: false });
    expect(load(kinesis)().config.ingestBuffer).toEqual({ service: 'kinesis', shards: 1, batchingWindowSeconds: 300, retentionHours: 24, draining: false });
    expect(load(`${kinesis}  draining: true\n`)().config.ingestBuffer).toEqual({ service: 'kinesis', shards: 1, batchingWindowSeconds: 300, retentionHours: 24, draining: true });
    expect(load(`${kinesis}  retentionHours: 72\n`)().config.ingestBuffer?.retentionHours).toBe(72);
    expect(load(`${kinesis}  retentionHours: 12\n`)).toThrow(/ingestBuffer\.retentionHours: must be at least 24, not 12$/m);
  });

  it('fails the synth naming the field: no shard, a window over Lambda\'s 300 seconds, a misspelt key', () => {
    const kinesis = `${routes}ingestBuffer:\n  service: kinesis\n`;
    expect(load(`${kinesis}  shards: 0\n`)).toThrow(/line 9: ingestBuffer\.shards: must be at least 1, not 0$/m);
    expect(load(`${kinesis}  batchingWindowSeconds: 301\n`)).toThrow(/line 9: ingestBuffer\.batchingWindowSeconds: must be at most 300 with service: kinesis/);
    expect(load(`${kinesis}  batchWindowSeconds: 30\n`)).toThrow(/ingestBuffer.*batchWindowSeconds/s);
  });

  it('with service firehose: a 300-second buffering interval, objects kept 14 days, by default', () => {
    expect(load(`${routes}ingestBuffer:\n  service: firehose\n`)().config.ingestBuffer).toEqual({ service: 'firehose', batchingWindowSeconds: 300, retentionDays: 14, draining: false });
    expect(load(`${routes}ingestBuffer:\n  service: firehose\n  batchingWindowSeconds: 900\n  retentionDays: 3\n  draining: true\n`)().config.ingestBuffer).toEqual({
      service: 'firehose',
      batchingWindowSeconds: 900,
      retentionDays: 3,
      draining: true,
    });
    expect(load(`${routes}ingestBuffer:\n  service: firehose\n  batchingWindowSeconds: 0\n`)().config.ingestBuffer?.batchingWindowSeconds).toBe(0);
  });

  it("fails the synth naming the field and the reason: the other service's fields, a window over the service's maximum", () => {
    const firehose = `${routes}ingestBuffer:\n  service: firehose\n`;
    expect(load(`${firehose}  shards: 2\n`)).toThrow("line 9: ingestBuffer.shards: only with service: kinesis (provisioned shards are a Kinesis stream's; Firehose scales by itself)");
    expect(load(`${firehose}  retentionHours: 48\n`)).toThrow('line 9: ingestBuffer.retentionHours: only with service: kinesis (how long a Kinesis stream keeps a record; a firehose buffer keeps its objects retentionDays)');
    expect(load(`${routes}ingestBuffer:\n  service: kinesis\n  retentionDays: 3\n`)).toThrow(
      'line 9: ingestBuffer.retentionDays: only with service: firehose (how long the bucket keeps an object the loader failed on; a Kinesis stream keeps records retentionHours)',
    );
    expect(load(`${routes}ingestBuffer:\n  service: kinesis\n  batchingWindowSeconds: 600\n`)).toThrow(
      "line 9: ingestBuffer.batchingWindowSeconds: must be at most 300 with service: kinesis (Lambda's longest batching window); service: firehose takes up to 900",
    );
    expect(load(`${firehose}  batchingWindowSeconds: 901\n`)).toThrow(/line 9: ingestBuffer\.batchingWindowSeconds: must be at most 900, not 901$/m);
    expect(load(`${firehose}  retentionDays: 15\n`)).toThrow(/line 9: ingestBuffer\.retentionDays: must be at most \d+, not 15$/m);
    expect(load(`${routes}ingestBuffer:\n  service: kafka\n`)).toThrow(/line 8: ingestBuffer\.service: must be one of kinesis, firehose, not "kafka"$/m);
  });
});

describe('write keys', () => {
  it('fail the synth on a workspace listed twice, naming both places', () => {
    expect(load('routes:\n  sales:\n    - type: sqs\n  nurture:\n    - type: sqs\nwriteKeys:\n  - workspace: default\n  - workspace: default\n')).toThrow(
      'line 9: writeKeys[1].workspace: "default" is listed already (writeKeys[0]): a workspace gets one write key; give its allowedOrigins there',
    );
  });
});

describe('allowed origins', () => {
  it("take a hybrid or extension app's origin, and fail the synth naming the field and the reason otherwise", () => {
    const keys = 'routes:\n  sales:\n    - type: sqs\n  nurture:\n    - type: sqs\nwriteKeys:\n  - workspace: acme\n    allowedOrigins:\n';
    expect(load(`${keys}      - chrome-extension://ABCDEFGHIJKLMNOPABCDEFGHIJKLMNOP\n      - https://app.acme.com:443\n`)().config.writeKeys?.[0]?.allowedOrigins).toEqual([
      'chrome-extension://abcdefghijklmnopabcdefghijklmnop',
      'https://app.acme.com',
    ]);
    expect(load(`${keys}      - tauri://localhost\n      - "null"\n`)).toThrow(
      "line 11: writeKeys[0].allowedOrigins[1]: is not an origin: it is the opaque origin, which any site's sandboxed frame sends: allowing it would allow every site; give scheme, host and port only, e.g. https://app.example.com or capacitor://localhost, or *",
    );
  });
});

describe('stack outputs', () => {
  it('fail the synth, naming both, for two workspaces whose write-key secrets would share an output', () => {
    expect(load('routes:\n  sales:\n    - type: sqs\n  nurture:\n    - type: sqs\nwriteKeys:\n  - workspace: acme-eu\n  - workspace: acme_eu\n')).toThrow(
      'line 9: writeKeys[1].workspace: "acme_eu" and "acme-eu" (writeKeys[0]) would both be the stack output WriteKeySecretAcmeEu (case aside): rename one of them',
    );
  });

  it('fail the synth, naming both, for two routes whose sqs queues would share an output, and not for routes without a queue', () => {
    const routes = (other: string) => `routes:\n  sales:\n    - type: sqs\n  nurture:\n    - type: sqs\n  high-touch:\n    - type: sqs\n  hightouch:\n    - ${other}\n`;
    expect(load(routes('type: sqs'))).toThrow(
      'line 9: routes.hightouch: the sqs queues of routes "hightouch" and "high-touch" would both be the stack output LeadQueueUrlHighTouch (case aside): rename one of the routes',
    );
    // No queue, no output: only the rules file's routes are wrong.
    expect(load(routes('{ type: email, addresses: [a@example.com] }'))).toThrow('no tier of');
  });
});

describe('cdk synth (bin/app.ts) on a wrong config', () => {
  /** bin/app.ts as the CDK CLI runs it: the context in CDK_CONTEXT_JSON. */
  const synthApp = (configPath: string) =>
    new Promise<{ code: number; stderr: string }>((done) => {
      const app = join(import.meta.dirname, '../../bin/app.ts');
      execFile(process.execPath, ['--import', 'tsx', app], { env: { ...process.env, CDK_CONTEXT_JSON: JSON.stringify({ config: configPath }) } }, (error, _stdout, stderr) =>
        done({ code: error ? Number(error.code) : 0, stderr }),
      );
    });

  it('prints the problems alone, in the order of the file, and exits 1', async () => {
    const path = join(mkdtempSync(join(tmpdir(), 'pql-radar-config-')), 'pql-radar.config.yaml');
    // delivery comes last in the schema, whose order zod reports its issues in.
    writeFileSync(path, `rules: ${testRulesFile}\ndelivery:\n  retryHours: 0\nevaluation:\n  shards: 0\n`);
    const run = await synthApp(path);
    expect(run.code).toBe(1);
    expect(run.stderr.trim().split('\n')).toEqual([`${path}: 2 problems`, expect.stringMatching(/^  line 3: delivery\.retryHours: /), expect.stringMatching(/^  line 5: evaluation\.shards: /)]);
  });

  it("prints the rules file's problems after the config's in the same run, when the config names one that is there", async () => {
    const directory = mkdtempSync(join(tmpdir(), 'pql-radar-config-'));
    const path = join(directory, 'pql-radar.config.yaml');
    writeFileSync(join(directory, 'rules.yaml'), 'version: 1\nsignals:\n  activated:\n    event: Signed Up\n    points: lots\ntiers:\n  - name: PQL-A\n    min_score: 10\n    route: sales\n');
    writeFileSync(path, 'rules: rules.yaml\nevaluation:\n  shards: 0\n');
    const run = await synthApp(path);
    expect(run.code).toBe(1);
    const lines = run.stderr.trim().split('\n');
    expect(lines.slice(0, 2)).toEqual([`${path}: 1 problem`, expect.stringMatching(/^  line 3: evaluation\.shards: /)]);
    expect(lines[2]).toBe(`${join(directory, 'rules.yaml')}: 1 problem`);
    expect(lines.slice(3)).toEqual([expect.stringMatching(/^  line 5: signals\.activated\.points: must be a number/)]);
  });

  it('names a config file that is not there', async () => {
    const path = join(tmpdir(), 'no-such.config.yaml');
    expect(await synthApp(path)).toEqual({ code: 1, stderr: `${path}: no such file\n` });
  });
});
