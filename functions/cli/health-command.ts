import type { Command } from 'commander';
import { formatHealth } from '../analysis/live-health';
import { inspectHealth } from '../local/lead-inspector';
import { defaultHealthPeriodDays } from '../shared/settings';
import { leadReader } from './leads-commands';
import { days, parsedOption } from './options';

/**
 * `pql-radar health`: how the deployed rules' leads of a recent period converted against the entities they left
 * alone (analysis/live-health.ts), from the lead states of the configured table. Reads only, as `leads list` does.
 */
export function addHealthCommand(program: Command) {
  program
    .command('health')
    .description("rule health after go-live: each tier's leads of the period, their conversion rate against the non-leads', lift, alerts per week, days to convert, sales feedback")
    .addOption(parsedOption('--since <duration>', 'the period, back from now, in days or weeks (e.g. 30d, 2w)', days('--since'), `${defaultHealthPeriodDays}d`))
    .option('--workspace <name>', 'only this workspace (default: every workspace)')
    .option('--json', 'the report as JSON')
    .action(async (options: { since: number; workspace?: string; json?: boolean }) => {
      const report = await inspectHealth(await leadReader(program), { workspace: options.workspace, periodDays: options.since, now: new Date() });
      process.stdout.write(options.json ? `${JSON.stringify(report, null, 2)}\n` : formatHealth(report));
    });
}
