import { defineConfig } from 'vitest/config';

// Integration tests start real processes on ephemeral ports; two cores, so keep
// parallelism modest and bound every test's time.
export default defineConfig({
  test: {
    include: ['test/**/*.test.ts'],
    testTimeout: 30_000,
    hookTimeout: 30_000,
    pool: 'forks',
    poolOptions: { forks: { maxForks: 2, minForks: 1 } },
    // CI also writes a JSON report so .ci/run can print a plain 'N passed, N failed' line.
    reporters: process.env.CI ? ['default', ['json', { outputFile: 'test-results.json' }]] : ['default'],
  },
});
