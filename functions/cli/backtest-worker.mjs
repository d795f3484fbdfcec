// A worker thread of `pql-radar backtest` (backtest-partitions.ts). The CLI is TypeScript run through tsx, and a
// worker does not inherit the main thread's loader: it registers tsx itself before loading the worker's code.
import { register } from 'tsx/esm/api';

register();
await import('./backtest-worker.ts');
