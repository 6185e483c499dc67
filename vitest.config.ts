import { defineConfig } from 'vitest/config';

export default defineConfig({
  test: {
    include: ['test/**/*.test.ts'],
    // The cross-runtime suites start real processes; give them room but keep a ceiling.
    testTimeout: 30_000,
    hookTimeout: 60_000,
  },
});
