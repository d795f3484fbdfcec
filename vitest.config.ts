import { availableParallelism } from 'node:os';
import { defineConfig } from 'vitest/config';

export default defineConfig({
  test: {
    include: ['test/**/*.test.ts'],
    globalSetup: ['test/support/global-setup.ts'],
    testTimeout: 30_000,
    hookTimeout: 60_000,
    // Test files run in separate processes but share the one DynamoDB Local; freshTable() keeps them apart.
    pool: 'forks',
    // A test file per core at once, where vitest's default is one fewer: much of a file's time is spent waiting on
    // DynamoDB Local, the commands it starts and their timers, not on its own CPU. On 2 cores, the same day, the whole
    // run took 527 s with vitest's 1 file at a time, 416 s with 2 and 464 s with 3.
    maxWorkers: availableParallelism(),
    // The SDK warns on Node 20 that future SDK releases need Node 22; the pinned versions run fine.
    env: { AWS_SDK_JS_NODE_VERSION_SUPPORT_WARNING_DISABLED: 'true' },
  },
});
