import { defineConfig } from 'vitest/config';

export default defineConfig({
  test: {
    include: ['test/**/*.test.ts'],
    globalSetup: ['test/support/global-setup.ts'],
    testTimeout: 30_000,
    hookTimeout: 60_000,
    // Test files run in separate processes but share the one DynamoDB Local; freshTable() keeps them apart.
    pool: 'forks',
    // The SDK warns on Node 20 that future SDK releases need Node 22; the pinned versions run fine.
    env: { AWS_SDK_JS_NODE_VERSION_SUPPORT_WARNING_DISABLED: 'true' },
  },
});
