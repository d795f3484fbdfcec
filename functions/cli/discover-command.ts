import { InvalidArgumentError, type Command } from 'commander';
import type { Conversion } from '../analysis/metrics';
import { convertsBy, describeConversion } from '../core/conversion';
import { loadRules } from '../core/rules/load';
import { conversionSchema, type ConversionRule } from '../core/rules/schema';
import { consumeEvents, eventSourceOptions, type EventSourceOptions } from './event-source';
import { integer } from './integer-option';
import { checkOutputFile, writeOutputFile } from './output-file';
import { ClaimSet, claimsOf, identityKey, type Identity } from '../core/identity';

type DiscoverOptions = EventSourceOptions & { conversions?: string; conversionEvent?: string; conversionTrait?: string; out?: string; signupTrait: string; minUsers: number; maxSignals: number; top: number };

/** `pql-radar discover`. The analysis modules load only when it runs, so other commands start without them. */
export function addDiscoverCommand(program: Command) {
  eventSourceOptions(program.command('discover').description('find the usage signals that predicted conversion in past events, and suggest a rules file'))
    .option('--conversion-event <name>', 'conversions from the events: a user converts at their first track event of this name (e.g. "Order Completed")')
    .option('--conversion-trait <name=values>', 'conversions from the events: a user converts when an identify call sets this trait to one of these comma-separated values (e.g. plan=pro,business)')
    .option('--conversions <file>', 'conversions from a file instead: CSV (entity_type, entity_id, converted_at[, value]) or JSONL')
    .option('--out <file>', 'write the suggested rules (YAML, commented) to this file')
    .option('--skip-bad', 'skip malformed or invalid lines (counted) instead of stopping at the first')
    .option('--signup-trait <name>', 'trait holding the signup time, as the rules\' signup.trait; "none": the first event', 'createdAt')
    .option('--min-users <n>', 'an event is a candidate when at least this many users did it', integer('--min-users', 1), 30)
    .option('--max-signals <n>', 'at most this many signals in the suggestion', integer('--max-signals', 1), 8)
    .option('--top <n>', 'rows of the ranked table', integer('--top', 1), 30)
    .action(async (options: DiscoverOptions) => {
      const { DiscoveryCollector } = await import('../analysis/discover/collect');
      const { discover } = await import('../analysis/discover/select');
      const { formatDiscoveryTable, suggestedRulesYaml } = await import('../analysis/discover/present');
      const { readConversions } = await import('./backtest-input');
      // Conversions first: the collector drops every event at or after its user's conversion as it reads. From the
      // stream, that takes a first pass over the events.
      const rule = conversionRuleOf(options);
      if (options.out !== undefined) await checkOutputFile('--out', options.out);
      const conversions = rule !== undefined ? await streamConversions(program, options, rule) : await readConversions(options.conversions!);
      const conversionsFrom = rule !== undefined ? `the events (${describeConversion(rule)})` : `the file ${options.conversions}`;
      // Discover learns what users did: an account's conversion is no user's. A visitor's is its user's once claimed
      // (the collector counts those nobody claimed).
      const userConversions = conversions.filter((conversion) => conversion.type !== 'account');
      const accountConversions = conversions.length - userConversions.length;
      const leftOut = accountConversions > 0 ? `${accountConversions.toLocaleString('en-US')} account` : '';
      const collector = new DiscoveryCollector(userConversions, { signupTrait: options.signupTrait === 'none' ? null : options.signupTrait });
      const { stats, source } = await consumeEvents(program, options, (message) => collector.add(message));
      if (stats.eventsRead === 0) throw new Error(`no events to learn from in ${source}${stats.linesSkipped > 0 ? ` (${stats.linesSkipped.toLocaleString('en-US')} bad lines skipped)` : ''}`);
      if (userConversions.length === 0) throw new Error(`no user conversions in ${conversionsFrom}${leftOut !== '' ? ` (only ${leftOut} conversions)` : ''}: nothing to learn from`);
      const result = discover(collector.snapshot(), { minUsers: options.minUsers, maxSignals: options.maxSignals });
      const { eventsRead, linesSkipped, skipped } = stats;
      console.log(`read ${eventsRead.toLocaleString('en-US')} messages and ${userConversions.length.toLocaleString('en-US')} user conversions from ${conversionsFrom}` +
        (leftOut !== '' ? ` (${leftOut} conversions left out: discover learns from users)` : '') +
        (linesSkipped > 0 ? `; skipped ${linesSkipped.toLocaleString('en-US')} bad lines (first: ${skipped[0]?.message ?? ''})` : '') +
        (result.input.duplicates > 0 ? `; ${result.input.duplicates.toLocaleString('en-US')} repeated messages counted once` : ''));
      console.log(formatDiscoveryTable(result, options.top));
      if (!options.out) {
        if (result.selected.length > 0) console.log('\n--out FILE writes these signals and tiers as a rules file.');
        return;
      }
      const yaml = suggestedRulesYaml(result, { generatedAt: new Date(), source, ...(rule ? { conversion: rule } : {}) });
      if (yaml === null) {
        console.error(`\nno rules file written to ${options.out}: no signal was confirmed on the holdout`);
        process.exitCode = 1;
        return;
      }
      // The file is checked as `rules check` checks it before it is written: a suggestion always loads.
      const ruleset = loadRules(yaml, options.out);
      await writeOutputFile('--out', options.out, yaml);
      console.log(`\nwrote ${options.out}: ${Object.keys(ruleset.file.signals).length} signals, ${ruleset.file.tiers.length} tiers; ` +
        `\`pql-radar rules check ${options.out}\` accepts it. Replay it with \`pql-radar backtest --rules ${options.out}${rule ? '' : ` --conversions ${options.conversions}`}\` (and your events) before it goes live.`);
    });
}

/** The conversion --conversion-event or --conversion-trait defines, as a rules file would; undefined with --conversions. */
function conversionRuleOf(options: DiscoverOptions): ConversionRule | undefined {
  const given = [options.conversionEvent, options.conversionTrait, options.conversions].filter((value) => value !== undefined);
  if (given.length !== 1) throw new InvalidArgumentError('say what converting means with one of --conversion-event NAME, --conversion-trait NAME=VALUES or --conversions FILE');
  if (options.conversionEvent !== undefined) return conversionSchema.parse({ event: options.conversionEvent });
  if (options.conversionTrait === undefined) return undefined;
  const [trait = '', values = ''] = options.conversionTrait.split(/=(.*)/s);
  const accepted = values.split(',').filter((value) => value !== '');
  if (trait === '' || accepted.length === 0) throw new InvalidArgumentError(`--conversion-trait ${options.conversionTrait}: must be NAME=VALUE[,VALUE...], e.g. plan=pro,business`);
  return conversionSchema.parse({ trait, is: { in: accepted } });
}

/**
 * Each person's first conversion in the events, detected as the evaluator detects it (core/conversion), under the user
 * their identifiers resolve to (core/identity): a visitor's conversion is its user's; an unclaimed visitor has none.
 */
async function streamConversions(program: Command, options: DiscoverOptions, rule: ConversionRule): Promise<Conversion[]> {
  const claims = new ClaimSet();
  const first = new Map<string, { identity: Identity; at: string }>();
  await consumeEvents(program, options, (message) => {
    for (const claim of claimsOf(message.message)) claims.add(claim);
    const key = identityKey(message.identity);
    const known = first.get(key);
    if ((known === undefined || message.timestamp < known.at) && convertsBy(rule, message.message, 'user')) {
      first.set(key, { identity: message.identity, at: message.timestamp });
    }
  });
  const byUser = new Map<string, string>();
  for (const { identity, at } of first.values()) {
    const root = claims.rootOf(identity);
    if (root.kind !== 'user') continue;
    const known = byUser.get(root.id);
    if (known === undefined || at < known) byUser.set(root.id, at);
  }
  return [...byUser].map(([id, convertedAt]) => ({ type: 'user', id, convertedAt }));
}
