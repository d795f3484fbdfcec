import { InvalidArgumentError, Option, type Command } from 'commander';
import { availableParallelism } from 'node:os';
import { eventLines, eventSourceOptions, type EventSourceOptions } from './event-source';
import { integer } from './integer-option';
import { checkOutputFile, writeOutputFile } from './output-file';
import { days, parsedOption } from './options';


type BacktestOptions = EventSourceOptions & { workers: number; partitionSize: number; rules: string; conversions?: string; from?: string; to?: string; step: number; horizon: number; report?: string; json?: boolean; anonymous?: boolean; asReceived?: boolean; record?: boolean };

/** `pql-radar backtest`. The analysis modules load only when it runs, so other commands start without them. */
export function addBacktestCommand(program: Command) {
  eventSourceOptions(
    program
      .command('backtest')
      .description('replay past events through a rules file, step by step as the evaluator would have, and measure how well it predicted conversion')
      .requiredOption('--rules <file>', 'PQL rules file (YAML or JSON)'),
  )
    .option('--conversions <file>', "conversions from a file instead of the event stream: CSV (entity_type, entity_id, converted_at[, value]) or JSONL (default: the rules file's conversion, detected in the events)")
    .option('--from <day>', 'first day replayed, YYYY-MM-DD (default: the first event\'s day)')
    .option('--to <day>', 'last day replayed, YYYY-MM-DD (default: the last event\'s day)')
    .addOption(parsedOption('--step <duration>', 'time between evaluations, in days or weeks (e.g. 1d, 7d, 1w)', days('--step'), '1d'))
    .addOption(parsedOption('--horizon <duration>', 'a qualified lead counts as converted when it converts within this long (days or weeks)', days('--horizon'), '30d'))
    .option('--report <file>', 'also write the report as one self-contained HTML file')
    .option('--json', 'print the report as JSON instead of the summary tables')
    .option('--record', "keep the figures in the table (--table, --endpoint) for its rules version: `pql-radar health` and the daily rule-health job put them beside the live ones (promised vs delivered)")
    .option('--anonymous', "judge anonymous visitors nobody claimed as people of their own (default: the rules file's identity.anonymous_leads)")
    .option('--as-received', 'count an event received on a later day than it happened (its receivedAt, else sentAt) from when it was received, as the live evaluator could, not from its timestamp: for events exported as they arrived, not for a history loaded at once')
    .option('--skip-bad', 'skip malformed or invalid lines (counted) instead of stopping at the first')
    .addOption(new Option('--workers <n>', 'worker threads that read and replay the events').argParser(integer('--workers', 1)).default(availableParallelism(), 'the cores available'))
    .option('--partition-size <MiB>', 'events are replayed in partitions of about this many MiB of spilled lines, one at a time per worker: what bounds memory', integer('--partition-size', 1), 8)
    .action(async (options: BacktestOptions) => {
      const { loadRulesFile } = await import('../local/rules-file');
      const { isDay } = await import('../core/days');
      const { buildReport, formatSummary, replayedConversions } = await import('../analysis/metrics');
      const { describeConversion } = await import('../core/conversion');
      const { readConversions, terminalProgress, withSkipBadHint } = await import('./backtest-input');
      const { PartitionedHistory } = await import('./backtest-partitions');
      const day = (flag: string, value: string | undefined) => {
        if (value === undefined) return undefined;
        if (!isDay(value)) throw new InvalidArgumentError(`${flag} ${value}: must be a day, YYYY-MM-DD`);
        return value;
      };
      const { step: stepDays, horizon: horizonDays } = options;
      const from = day('--from', options.from);
      const to = day('--to', options.to);
      if (from !== undefined && to !== undefined && from > to) throw new InvalidArgumentError(`--from ${from} is after --to ${to}`);
      const partitionBytes = options.partitionSize * 1024 ** 2;
      if (options.report !== undefined) await checkOutputFile('--report', options.report);

      const { ruleset, json: rulesJson } = loadRulesFile(options.rules);
      // Without a file, conversions come from the stream, as the evaluator detects them: the rules must define them.
      if (options.conversions === undefined && !ruleset.file.conversion) {
        throw new InvalidArgumentError(`${options.rules} defines no conversion: add one (e.g. conversion: { event: Order Completed }) or give --conversions FILE`);
      }
      const fileConversions = options.conversions !== undefined ? await readConversions(options.conversions) : undefined;
      const { blocks, source: eventsSource } = await eventLines(program, options);
      const history = await PartitionedHistory.read(blocks(), {
        // The rules as the evaluator reads them, list files inlined: the workers read no other file.
        rulesText: rulesJson,
        rulesSource: options.rules,
        workers: options.workers,
        partitionBytes,
        ...(options.skipBad ? { skipBad: true } : {}),
        ...(to !== undefined ? { until: ruleset.calendar.endOf(to) } : {}),
        ...(options.anonymous ? { anonymous: true } : {}),
        ...(options.asReceived ? { asReceived: true } : {}),
        // A file's conversion under a claimed visitor's anonymousId is its user's: the replay names those users.
        ...(fileConversions !== undefined ? { namedVisitors: [...new Set(fileConversions.filter((conversion) => conversion.type === 'visitor').map((conversion) => conversion.id))] } : {}),
      }).catch((error: unknown) => {
        throw withSkipBadHint(error);
      });
      let replayed;
      try {
        const { eventsRead, linesSkipped, skipped, firstTimestamp, lastTimestamp } = history.stats;
        if (linesSkipped > 0) console.error(`skipped ${linesSkipped.toLocaleString('en-US')} bad lines; the first: ${skipped[0]?.message ?? ''}`);
        if (firstTimestamp === null || lastTimestamp === null) throw new Error(`no events to replay in ${eventsSource}${to !== undefined ? ` up to ${to}` : ''}`);
        const period = { from: from ?? ruleset.calendar.dayOf(firstTimestamp), to: to ?? ruleset.calendar.dayOf(lastTimestamp) };
        if (period.from > period.to) throw new InvalidArgumentError(`--from ${period.from} is after the last event's day (${period.to})`);
        const progress = terminalProgress();
        replayed = { eventsRead, linesSkipped, ...(await history.replay({ ...period, stepDays, onPartition: (done, partitions) => progress.update(`replaying: ${done} of ${partitions} partitions done`) })) };
        progress.done();
      } finally {
        await history.close();
      }
      const { result, eventsRead, linesSkipped, duplicates, lateEvents, mergedIdentifiers, anonymousLeftOut } = replayed;
      const report = buildReport({
        replay: result,
        conversions: fileConversions ?? replayedConversions(result),
        conversionsFrom: options.conversions !== undefined ? `the file ${options.conversions}` : `the event stream, by the rules file's conversion (${describeConversion(ruleset.file.conversion!)})`,
        ruleset,
        rulesSource: options.rules,
        horizonDays,
        input: { eventsRead, linesSkipped, duplicates, lateEvents, asReceived: options.asReceived === true, mergedIdentifiers, anonymousLeftOut },
      });
      if (options.json) console.log(JSON.stringify(report, null, 2));
      else process.stdout.write(formatSummary(report));
      if (options.record) {
        const { recordOf } = await import('../analysis/live-health');
        const { recordBacktest } = await import('../adapters/dynamodb/backtest-records');
        const { storage } = await import('./options');
        const { client, tableName } = storage(program);
        await recordBacktest(client, tableName, recordOf(report));
        client.destroy();
        (options.json ? console.error : console.log)(`\nrecorded the figures of rules version ${report.rules.version} in table ${tableName} for rule health`);
      }
      if (options.report) {
        const { renderReportHtml } = await import('../analysis/html');
        await writeOutputFile('--report', options.report, renderReportHtml(report));
        (options.json ? console.error : console.log)(`\nwrote ${options.report}`);
      }
    });
}
