import { join } from 'node:path';
import { gcSuite } from '../helpers/gc-suite.js';
import { tempDir } from '../helpers/temp-dir.js';

// The file GC on SQLite (test/cluster/gc.test.ts: PostgreSQL).
gcSuite('SQLite', async () => join(tempDir('coterie-gc-').path, 'tracker.db'));
