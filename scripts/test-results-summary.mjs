// Prints one line of counts for a vitest JSON report, then each failed test with the first
// lines of its error: .ci/run prints these again at its very end, because only the tail of a
// CI log is sure to be read, and a failure in the first of three runs scrolls far above it.
//
//   node scripts/test-results-summary.mjs LABEL test-results.json
import { existsSync, readFileSync } from 'node:fs';

const [label, file] = process.argv.slice(2);
if (label === undefined || file === undefined) {
  console.error('usage: node scripts/test-results-summary.mjs LABEL FILE');
  process.exit(2);
}
if (!existsSync(file)) {
  console.log(`tests (${label}): no report at ${file} (the run stopped before vitest wrote it)`);
  process.exit(0);
}
const report = JSON.parse(readFileSync(file, 'utf8'));
// numFailedTestSuites counts describe blocks too: count the files.
const failedFiles = (report.testResults ?? []).filter((suite) => suite.status === 'failed').length;
console.log(
  `tests (${label}): ${report.numPassedTests} passed, ${report.numFailedTests} failed, ` +
    `${report.numPendingTests} skipped` +
    (failedFiles > 0 ? `, ${failedFiles} files failed` : ''),
);
for (const suite of report.testResults ?? []) {
  const failed = (suite.assertionResults ?? []).filter((t) => t.status === 'failed');
  // A file that fails outside any test (an import error, a hook) has a message and no failed test.
  if (failed.length === 0 && suite.status === 'failed') {
    console.log(`  FAIL ${suite.name}: ${firstLines(suite.message)}`);
  }
  for (const t of failed) {
    console.log(`  FAIL ${suite.name} > ${t.fullName}: ${firstLines((t.failureMessages ?? []).join('\n'))}`);
  }
}

function firstLines(text = '') {
  return text.split('\n').slice(0, 4).join(' | ').slice(0, 600);
}
