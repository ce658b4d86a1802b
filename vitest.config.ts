import { defineConfig } from 'vitest/config';

// Integration tests start real processes on ephemeral ports; two cores, so keep
// parallelism modest and bound every test's time.
export default defineConfig({
  test: {
    include: ['test/**/*.test.ts'],
    // Fails the run before any test when dist/ is older than src/ (see test/global-setup.ts).
    globalSetup: ['test/global-setup.ts'],
    testTimeout: 30_000,
    hookTimeout: 30_000,
    pool: 'forks',
    poolOptions: { forks: { maxForks: 2, minForks: 1 } },
    // CI also writes a JSON report so .ci/run can print a plain 'N passed, N failed' line.
    reporters: process.env.CI ? ['default', ['json', { outputFile: 'test-results.json' }]] : ['default'],
  },
});
