export * from './addresses.js';
export * from './api.js';
export * from './errors.js';
export * from './manifest.js';
export * from './names.js';
export * from './session.js';
export * from './sizes.js';
export * from './tickets.js';
