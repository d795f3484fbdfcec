import type { Command } from 'commander';
import { writeFile } from 'node:fs/promises';
import { loadRules } from '../core/rules/load';
import { consumeEvents, eventSourceOptions, type EventSourceOptions } from './event-source';
import { integer } from './options';

type DiscoverOptions = EventSourceOptions & { conversions: string; out?: string; signupTrait: string; minUsers: number; maxSignals: number; top: number };

/** `pql-radar discover`. The analysis modules load only when it runs, so other commands start without them. */
export function addDiscoverCommand(program: Command) {
  eventSourceOptions(program.command('discover').description('find the usage signals that predicted conversion in past events, and suggest a rules file'))
    .requiredOption('--conversions <file>', 'conversions: CSV (entity_type, entity_id, converted_at[, value]) or JSONL')
    .option('--out <file>', 'write the suggested rules (YAML, commented) to this file')
    .option('--skip-bad', 'skip malformed or invalid lines (counted) instead of stopping at the first')
    .option('--signup-trait <name>', 'trait holding the signup time, as the rules\' signup.trait; "none": the first event', 'createdAt')
    .option('--min-users <n>', 'an event is a candidate when at least this many users did it', integer('--min-users'), 30)
    .option('--max-signals <n>', 'at most this many signals in the suggestion', integer('--max-signals'), 8)
    .option('--top <n>', 'rows of the ranked table', integer('--top'), 30)
    .action(async (options: DiscoverOptions) => {
      const { DiscoveryCollector } = await import('../analysis/discover/collect');
      const { discover } = await import('../analysis/discover/select');
      const { formatDiscoveryTable, suggestedRulesYaml } = await import('../analysis/discover/present');
      const { readConversions } = await import('./backtest-input');
      // Conversions first: the collector drops every event at or after its user's conversion as it reads.
      const conversions = await readConversions(options.conversions);
      const collector = new DiscoveryCollector(conversions, { signupTrait: options.signupTrait === 'none' ? null : options.signupTrait });
      const { stats, source } = await consumeEvents(program, options, (message) => collector.add(message));
      const result = discover(collector.snapshot(), { minUsers: options.minUsers, maxSignals: options.maxSignals });
      const { eventsRead, linesSkipped, skipped } = stats;
      console.log(`read ${eventsRead.toLocaleString('en-US')} messages and ${conversions.length.toLocaleString('en-US')} conversions` +
        (linesSkipped > 0 ? `; skipped ${linesSkipped.toLocaleString('en-US')} bad lines (first: ${skipped[0]?.message ?? ''})` : '') +
        (result.input.duplicates > 0 ? `; ${result.input.duplicates.toLocaleString('en-US')} repeated messages counted once` : ''));
      console.log(formatDiscoveryTable(result, options.top));
      if (!options.out) {
        if (result.selected.length > 0) console.log('\n--out FILE writes these signals and tiers as a rules file.');
        return;
      }
      const yaml = suggestedRulesYaml(result, { generatedAt: new Date(), source });
      if (yaml === null) {
        console.error(`\nno rules file written to ${options.out}: no signal was confirmed on the holdout`);
        process.exitCode = 1;
        return;
      }
      // The file is checked as `rules check` checks it before it is written: a suggestion always loads.
      const ruleset = loadRules(yaml, options.out);
      await writeFile(options.out, yaml);
      console.log(`\nwrote ${options.out}: ${Object.keys(ruleset.file.signals).length} signals, ${ruleset.file.tiers.length} tiers; ` +
        `\`pql-radar rules check ${options.out}\` accepts it. Replay it with \`pql-radar backtest --rules ${options.out}\` before it goes live.`);
    });
}
