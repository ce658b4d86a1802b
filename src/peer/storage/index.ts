// The entry of the peer's storage side (issue 16): replicas kept for groups, their scrub, the storage commands.
export { type StorageCommands, type StorageOptions, type StorageService, startStorage } from './storage.js';
