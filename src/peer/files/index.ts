// The entry of the peer's files: what it shares and seeds, its downloads, and the engine's types others name.
export { type DirIdentity, type DownloadHandle, download, downloadTree } from './download/index.js';
export type { RuleWeights } from './download-detail.js';
export { listedSeeders } from './download-seeders.js';
export { type FilesService, type FilesServiceOptions, startFilesService } from './files.js';
export { type FullFileDetail, getFileDetail } from './manifest-transfer.js';
export type { Seeding } from './seeding.js';
export { fileTreeOf } from './selection.js';
export type { ChangedShare } from './shares.js';
export { createTransferCounters, type TransferCounters, type TransferTotals } from './transfer-counters.js';
