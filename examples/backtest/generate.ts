/**
 * Writes this folder's sample: events.jsonl.gz (Segment messages, the ingest format) and conversions.csv, from the
 * planted-signal generator with fixed options (functions/cli/planted-stream.ts, exampleStreamOptions), so the
 * files are the same on every run. test/unit/backtest-cli.test.ts checks that they still are.
 *
 *   npx tsx examples/backtest/generate.ts
 *   npx pql-radar backtest --rules examples/activation.rules.yaml --events examples/backtest/events.jsonl.gz \
 *     --conversions examples/backtest/conversions.csv --report backtest.html
 */
import { writeFileSync } from 'node:fs';
import { join } from 'node:path';
import { gzipSync } from 'node:zlib';
import { exampleStreamOptions, generatePlantedStream, type PlantedStream } from '../../functions/cli/planted-stream';
import { toJsonl } from '../../functions/cli/sample-stream';

/** The two files' contents (the events uncompressed). */
export function exampleFiles(stream: PlantedStream = generatePlantedStream(exampleStreamOptions)): { events: string; conversions: string } {
  const rows = stream.conversions.map((conversion) => [conversion.type, conversion.id, conversion.convertedAt, conversion.value ?? ''].join(','));
  return { events: toJsonl(stream.messages), conversions: `entity_type,entity_id,converted_at,value\n${rows.join('\n')}\n` };
}

if (process.argv[1] !== undefined && import.meta.filename === process.argv[1]) {
  const files = exampleFiles();
  writeFileSync(join(import.meta.dirname, 'events.jsonl.gz'), gzipSync(files.events, { level: 9 }));
  writeFileSync(join(import.meta.dirname, 'conversions.csv'), files.conversions);
  console.log(`wrote ${files.events.split('\n').length - 1} events and ${files.conversions.split('\n').length - 2} conversions to ${import.meta.dirname}`);
}
