import { spawn } from 'node:child_process';
import { join } from 'node:path';
import { describe, expect, it } from 'vitest';

const stopSignals = join(import.meta.dirname, '../../functions/local/stop-signals.ts');

/**
 * A process that registers onStopSignal's cleanup (it prints "cleaned up"), optionally a handler of its own that prints
 * and exits 3, says it is ready and waits; it is sent `signal`. Gives how it ended and what it printed.
 */
function stopped(signal: NodeJS.Signals, ownHandler: boolean): Promise<{ code: number | null; signal: NodeJS.Signals | null; output: string }> {
  const script = `
    import { onStopSignal } from ${JSON.stringify(stopSignals)};
    onStopSignal(() => console.log('cleaned up'));
    ${ownHandler ? `process.on(${JSON.stringify(signal)}, () => { console.log('own handler'); process.exit(3); });` : ''}
    console.log('ready');
    setInterval(() => {}, 1000);
  `;
  const child = spawn(process.execPath, ['--import', 'tsx', '--input-type=module', '-e', script], { stdio: ['ignore', 'pipe', 'inherit'] });
  let output = '';
  return new Promise((done) => {
    child.stdout.on('data', (chunk: Buffer) => {
      output += chunk.toString();
      if (output === 'ready\n') child.kill(signal);
    });
    child.once('close', (code, endedBy) => done({ code, signal: endedBy, output }));
  });
}

describe('onStopSignal', () => {
  it.each(['SIGINT', 'SIGTERM', 'SIGHUP'] as const)('cleans up on %s, then the process ends by the signal', async (signal) => {
    expect(await stopped(signal, false)).toEqual({ code: null, signal, output: 'ready\ncleaned up\n' });
  }, 30_000);

  it("cleans up and leaves the ending to the program's own handler", async () => {
    expect(await stopped('SIGINT', true)).toEqual({ code: 3, signal: null, output: 'ready\ncleaned up\nown handler\n' });
  }, 30_000);
});
