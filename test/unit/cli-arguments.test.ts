import { Command, InvalidArgumentError } from 'commander';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { describe, expect, it } from 'vitest';
import { integer, port } from '../../functions/cli/integer-option';
import { localDestinations, runtimeWebhookId } from '../../functions/cli/lead-output';
import { browserOrigin, days, duration } from '../../functions/cli/options';
import { generateWebhookSecret } from '../../functions/core/webhook-signature';
import { cli, cliWithEnvironment } from '../support/cli';

describe('whole number options', () => {
  it('take whole numbers from their least, and name the option and the rule otherwise', () => {
    expect(integer('--port')('0')).toBe(0);
    expect(integer('--users', 1)('40')).toBe(40);
    expect(() => integer('--port')('-1')).toThrow(new InvalidArgumentError('--port must be a whole number'));
    expect(() => integer('--users', 1)('0')).toThrow(new InvalidArgumentError('--users must be a whole number, at least 1'));
    expect(() => integer('--users', 1)('1.5')).toThrow(new InvalidArgumentError('--users must be a whole number, at least 1'));
    expect(port('--port')('65535')).toBe(65535);
    expect(() => port('--port')('65536')).toThrow(new InvalidArgumentError('--port must be a whole number, 0 to 65535'));
  });

  it.each([
    // A batch of none would be sent for ever.
    [['replay', '--write-key', 'pqr_unused', '--batch-size', '0'], '--batch-size'],
    [['sample', '--days', '0'], '--days'],
    [['backtest', '--rules', 'examples/activation.rules.yaml', '--events', 'examples/backtest/events.jsonl.gz', '--workers', '0'], '--workers'],
    [['evaluate', '--once', '--shards', '0'], '--shards'],
  ])('%j is refused before anything runs', async (args, option) => {
    const run = await cli(...args);
    expect(run.code).toBe(1);
    expect(run.stdout).toBe('');
    expect(run.stderr).toContain(`error: option '${option} <`);
    expect(run.stderr).toContain(`argument '0' is invalid. ${option} must be a whole number, at least 1`);
  });
});

describe('ports', () => {
  it.each([
    [['dev', '--port', '65536'], '--port'],
    [['dev', '--dynamodb-port', '65536'], '--dynamodb-port'],
    [['leads', 'serve', '--port', '65536'], '--port'],
    [['webhooks', 'listen', '--secret', generateWebhookSecret(), '--port', '65536'], '--port'],
  ])('%j is refused before anything runs, naming the option and its range', async (args, option) => {
    const run = await cli(...args);
    expect(run.code).toBe(1);
    expect(run.stdout).toBe('');
    expect(run.stderr).toContain(`error: option '${option} <port>' argument '65536' is invalid. ${option} must be a whole number, 0 to 65535`);
  });
});

describe('periods in days', () => {
  it('take days and weeks, as the backtest and the rules file do, from 1d, and name the option otherwise', () => {
    expect(days('--since')('30d')).toBe(30);
    expect(days('--since')('2w')).toBe(14);
    for (const refused of ['0d', '0w', '12h', '30m', '1.5d', 'd', '']) {
      expect(() => days('--since')(refused), refused).toThrow(new InvalidArgumentError('--since must be a number of days or weeks, at least 1, such as 30d or 2w'));
    }
  });

  it('health --since 0d is refused before anything is read', async () => {
    const run = await cli('health', '--since', '0d');
    expect(run.code).toBe(1);
    expect(run.stdout).toBe('');
    expect(run.stderr).toContain("error: option '--since <duration>' argument '0d' is invalid. --since must be a number of days or weeks, at least 1");
  });
});

describe('pauses between evaluator passes', () => {
  it('take milliseconds, seconds, minutes and hours, up to what a timer can wait, and name the option otherwise', () => {
    const every = duration('--evaluate-every');
    expect([every('500ms'), every('10s'), every('5m'), every('2h'), every('596h')]).toEqual([500, 10_000, 300_000, 7_200_000, 596 * 3_600_000]);
    for (const refused of ['1d', '1.5h', 'h', '10', '']) {
      expect(() => every(refused), refused).toThrow(new InvalidArgumentError('--evaluate-every must be a duration such as 10s, 1m, 1h or 500ms'));
    }
    // A Node timer longer than about 24.8 days fires at once: the passes would run back to back.
    expect(() => every('597h')).toThrow(new InvalidArgumentError('--evaluate-every 597h: at most 596h (about 24 days)'));
  });
});

describe('webhook secrets', () => {
  const refusal = 'a webhook secret must be "whsec_" followed by the base64 of at least 16 random bytes (`pql-radar webhooks secret` makes one)';

  it.each([
    ['dev', ['dev', '--port', '0']],
    ['evaluate', ['--endpoint', 'http://127.0.0.1:9', 'evaluate', '--once']],
  ])('a malformed --webhook-secret is refused when %s starts, naming the option and why, never repeating the secret', async (_command, args) => {
    const run = await cli(...args, '--webhook', 'http://127.0.0.1:9/hook', '--webhook-secret', 'notasecret');
    expect(run.code).toBe(1);
    expect(run.stdout).toBe('');
    expect(run.stderr).toBe(`pql-radar: --webhook-secret: ${refusal}\n`);
  });

  it('a webhook given twice to evaluate is refused: its queue is named by its URL', async () => {
    const run = await cli('--endpoint', 'http://127.0.0.1:9', 'evaluate', '--once', '--webhook', 'http://127.0.0.1:9/hook', '--webhook', 'http://127.0.0.1:9/hook', '--webhook-secret', generateWebhookSecret());
    expect(run.code).toBe(1);
    expect(run.stderr).toBe('pql-radar: --webhook http://127.0.0.1:9/hook: given twice\n');
  });

  it('a malformed PQL_RADAR_WEBHOOK_SECRET is refused, naming the variable, and so is a receiver\'s --secret', async () => {
    const fromEnvironment = await cliWithEnvironment({ ...process.env, PQL_RADAR_WEBHOOK_SECRET: 'whsec_c2hvcnQ=' }, 'dev', '--port', '0', '--webhook', 'http://127.0.0.1:9/hook');
    expect(fromEnvironment.code).toBe(1);
    expect(fromEnvironment.stderr).toBe(`pql-radar: PQL_RADAR_WEBHOOK_SECRET (the default of --webhook-secret): ${refusal}\n`);

    const listen = await cli('webhooks', 'listen', '--port', '0', '--secret', 'notasecret');
    expect(listen.code).toBe(1);
    expect(listen.stdout).toBe('');
    expect(listen.stderr).toBe(`pql-radar: --secret: ${refusal}\n`);
  });
});

describe('--webhook of the local runtime', () => {
  it('takes receivers on this machine and its network, which the deploy config refuses (lib/config.ts)', () => {
    const webhook = ['http://localhost:8080/hook', 'http://127.0.0.1:9000/', 'http://[::1]:9000/', 'https://192.168.1.20/hook'];
    expect(localDestinations(new Command('dev'), { webhook, webhookSecret: generateWebhookSecret() }, runtimeWebhookId).map((destination) => destination.id)).toEqual(['local-webhook-1', 'local-webhook-2', 'local-webhook-3', 'local-webhook-4']);
  });
});

describe('workspace names', () => {
  it.each([
    ['keys create', ['keys', 'create', '--workspace', 'Acme Inc']],
    ['origins set', ['origins', 'set', '--workspace', 'Acme Inc', 'https://app.example.com']],
    // Before the table is asked for, hence before DynamoDB Local would start without --endpoint.
    ['dev', ['dev', '--port', '0', '--workspace', 'Acme Inc']],
  ])('one no key can have is refused by %s before anything is started or written, naming it and the rule', async (_command, args) => {
    // Nothing answers at this endpoint: the refusal comes before any request.
    const run = await cli('--endpoint', 'http://127.0.0.1:9', ...args);
    expect(run.code).toBe(1);
    expect(run.stdout).toBe('');
    expect(run.stderr).toBe('pql-radar: workspace "Acme Inc" is not valid: use 1-63 lowercase letters, digits, "-" or "_", starting with a letter or digit\n');
  });
});

describe('browser origins on the command line', () => {
  it("take a hybrid or extension app's origin, canonical, and name the reason otherwise", () => {
    expect(browserOrigin('Capacitor://LocalHost', ['https://app.example.com'])).toEqual(['https://app.example.com', 'capacitor://localhost']);
    expect(() => browserOrigin('capacitor://localhost/index.html', [])).toThrow(
      new InvalidArgumentError('capacitor://localhost/index.html is not an origin: it has a path; give scheme, host and port only, e.g. https://app.example.com or capacitor://localhost, or *'),
    );
  });
});

describe('write keys on the command line', () => {
  it.each([
    ['keys create', ['keys', 'create', '--workspace', 'acme', '--key'], '--key'],
    // Before the table is asked for, hence before DynamoDB Local would start without --endpoint.
    ['dev', ['dev', '--port', '0', '--write-key'], '--write-key'],
  ])('a malformed key is refused by %s before anything is started or written, naming the option and the rule, never repeating the key', async (_command, args, option) => {
    // Nothing answers at this endpoint: the refusal comes before any request.
    const run = await cli('--endpoint', 'http://127.0.0.1:9', ...args, 'short key');
    expect(run.code).toBe(1);
    expect(run.stdout).toBe('');
    expect(run.stderr).toBe(`pql-radar: ${option} must be 12 to 256 printable ASCII characters without spaces\n`);
  });
});

describe('times on the command line', () => {
  it.each([
    // Date's own parser reads these as May 2001, December 2001 and March 2.
    ['5'],
    ['Dec 25'],
    ['2026-02-30'],
    // These Date does not parse at all.
    ['2026-13-01'],
    ['2026-02-00'],
  ])('%j is refused by evaluate --at and destinations replay --from, naming the option, before the table is read', async (value) => {
    // Nothing answers at this endpoint: the refusal comes before any request.
    const evaluated = await cli('--endpoint', 'http://127.0.0.1:9', 'evaluate', '--once', '--at', value);
    expect(evaluated.code).toBe(1);
    expect(evaluated.stdout).toBe('');
    expect(evaluated.stderr).toBe(`pql-radar: --at ${value}: expected an ISO 8601 date or time (2026-11-30, 2026-11-30T09:00:00Z) or +Nd (days from now)\n`);

    const replayed = await cli('--endpoint', 'http://127.0.0.1:9', 'destinations', 'replay', 'slack-sales', '--from', value);
    expect(replayed.code).toBe(1);
    expect(replayed.stderr).toContain(`argument '${value}' is invalid. --from must be an ISO 8601 date or time, e.g. 2026-11-30 or 2026-11-30T09:00:00Z`);
  });

  it.each([['2026-02-30'], ['2026-13-01']])('%j is refused by backtest --from, naming the option, before the events are read', async (value) => {
    const run = await cli('backtest', '--rules', 'examples/activation.rules.yaml', '--events', 'no-such-file.jsonl', '--from', value);
    expect(run.code).toBe(1);
    expect(run.stderr).toBe(`pql-radar: --from ${value}: must be a day, YYYY-MM-DD\n`);
  });
});

describe('--help', () => {
  it.each([
    [['dev'], '--evaluate-every', '10s'],
    [['evaluate'], '--evaluate-every', '10s'],
    [['deliveries', 'list'], '--since', '14d'],
    [['health'], '--since', '90d'],
  ])('of %j shows the default of %s as the option takes it: %s, not milliseconds', async (command, option, written) => {
    const help = await cli(...command, '--help');
    // commander wraps the descriptions: one line per option, then what follows its name.
    const line = help.stdout.replace(/\n {3,}/g, ' ').split('\n').find((candidate) => candidate.trim().startsWith(option));
    expect(line).toMatch(new RegExp(`\\(default: ${written}\\)$`));
  });
});

describe('files named on the command line', () => {
  it('that cannot be read are named, with why, whichever command reads them', async () => {
    const missing = join(tmpdir(), 'nowhere.rules.yaml');
    const checked = await cli('rules', 'check', missing, tmpdir());
    expect(checked.code).toBe(1);
    expect(checked.stderr).toBe(`${missing}: no such file\n${tmpdir()}: is a directory, not a file\n`);

    const backtest = await cli('backtest', '--rules', missing, '--events', 'examples/backtest/events.jsonl.gz');
    expect(backtest.stderr).toBe(`pql-radar: ${missing}: no such file\n`);

    const replayed = await cli('replay', join(tmpdir(), 'nowhere.jsonl'), '--write-key', 'pqr_unused');
    expect(replayed.code).toBe(1);
    expect(replayed.stderr).toBe(`pql-radar: ${join(tmpdir(), 'nowhere.jsonl')}: no such file\n`);
  });
});

describe('a table that cannot be reached', () => {
  it('says what to do: start the local runtime, or give AWS credentials', async () => {
    // Port 9 (discard) is below the ephemeral range, so no server another test file starts on port 0 can take it.
    const endpoint = 'http://127.0.0.1:9';
    const refused = await cli('--endpoint', endpoint, 'leads', 'list');
    expect(refused.code).toBe(1);
    expect(refused.stderr).toContain(`(nothing answers at --endpoint ${endpoint}: is \`pql-radar dev\` running?)`);

    // No credentials anywhere, and no instance metadata to ask: as on a laptop that never ran `aws configure`.
    const { AWS_PROFILE, AWS_ACCESS_KEY_ID, AWS_SECRET_ACCESS_KEY, AWS_SESSION_TOKEN, AWS_ENDPOINT_URL_DYNAMODB, ...rest } = process.env;
    const home = join(tmpdir(), 'no-aws-home');
    const anonymous = await cliWithEnvironment({ ...rest, HOME: home, AWS_EC2_METADATA_DISABLED: 'true', AWS_REGION: 'eu-west-1' }, 'leads', 'list');
    expect(anonymous.code).toBe(1);
    expect(anonymous.stderr).toContain('(a deployed table is reached with your AWS credentials (e.g. AWS_PROFILE); the local one needs --endpoint, as `pql-radar dev` prints it)');
  });
});
