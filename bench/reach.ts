// `npm run bench -- reach`: every part under bench/reach/ (see bench/lib/parts.ts).
import { fileURLToPath } from 'node:url';
import { runParts } from './lib/parts.js';

runParts(fileURLToPath(new URL('./reach/', import.meta.url)));
