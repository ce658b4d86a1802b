import { describe } from 'vitest';
import { manifestPagesSuite } from '../helpers/manifest-pages-suite.js';
import { trackerPerFile } from '../helpers/tracker.js';

// Folder manifests in pages on a tracker over SQLite (test/cluster/manifest-pages.test.ts: PostgreSQL).
const fileTracker = trackerPerFile();

describe('manifest pages (SQLite)', { timeout: 60_000 }, () => {
  manifestPagesSuite(() => fileTracker.api, 's');
});
