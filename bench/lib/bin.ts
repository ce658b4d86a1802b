import { fileURLToPath } from 'node:url';

/** The real `coterie` binary: it runs dist/, which `npm test` and `npm run bench` build first. */
export const BIN = fileURLToPath(new URL('../../bin/coterie.js', import.meta.url));
