import { manifestPagesSuite } from '../helpers/manifest-pages-suite.js';
import { client } from '../helpers/tracker.js';
import { describeWithPg } from './pg.js';

// Folder manifests in pages on a tracker over PostgreSQL: the same suite as on SQLite.
describeWithPg(
  'manifest pages (PostgreSQL)',
  { prefix: 'pages-pg-', trackers: 1, timeout: 60_000 },
  (cluster) => {
    manifestPagesSuite(() => client(cluster.trackers[0]!.url), 'p');
  },
);
