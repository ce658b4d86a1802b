// `npm run bench -- sharing`: every part under bench/sharing/ (see bench/lib/parts.ts).
import { fileURLToPath } from 'node:url';
import { runParts } from './lib/parts.js';

runParts(fileURLToPath(new URL('./sharing/', import.meta.url)));
