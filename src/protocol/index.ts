export * from './errors.js';
export * from './manifest.js';
export * from './names.js';
export * from './tickets.js';
