#!/usr/bin/env node
// Thin launcher: the CLI is compiled to dist/ by `npm ci` (the prepare script) or `npm run build`.
// A clone that was never built gets that sentence, not a module-resolution stack trace.
const entry = new URL('../dist/cli/main.js', import.meta.url);

// The web UI, which every peer daemon starts by default, loads ES modules with require()
// (@fastify/static's content-disposition): Node does so from 20.19 and 22.12 (package.json's
// engines). Before them the daemon would die on ERR_REQUIRE_ESM; say why at once instead.
if (process.features.require_module !== true) {
  process.stderr.write(
    `coterie: needs Node.js 20.19 or later 20.x, 22.12 or later 22.x, or 24 (this is ${process.version}) [UNSUPPORTED_NODE]\n`,
  );
  process.exit(1);
}

import(entry.href).then(
  ({ main }) =>
    main(process.argv.slice(2)).then(
      (code) => {
        if (typeof code === 'number') process.exitCode = code;
      },
      (err) => {
        process.stderr.write(`coterie: ${err instanceof Error ? err.message : String(err)}\n`);
        process.exitCode = 1;
      },
    ),
  (err) => {
    const missing = err?.code === 'ERR_MODULE_NOT_FOUND' && String(err.message).includes('dist/cli/main.js');
    process.stderr.write(
      missing
        ? 'coterie: dist/ is missing: run npm ci (or npm run build) in the package first\n'
        : `coterie: ${err instanceof Error ? err.message : String(err)}\n`,
    );
    process.exitCode = 1;
  },
);
