// The public entry of the download machinery: the engine the peer daemon drives.
export { createTlsDial } from '../../../wire/index.js';
export { download } from './engine.js';
export type {
  DownloadEvent,
  DownloadProgress,
  DownloadResult,
  DownloadSnapshot,
  PeerConnectionState,
  PeerProgress,
  PieceDistribution,
  SeederInfo,
  SeederWhere,
} from './events.js';
export {
  type Dial,
  DOWNLOAD_DEFAULTS,
  type DownloadHandle,
  type DownloadOptions,
  type RetryPolicy,
} from './options.js';
export {
  type DirIdentity,
  openPartialFile,
  type PartialFile,
  type PartialFileOptions,
  type ResumeState,
} from './partial-file.js';
export { partNames } from './resume-file.js';
export { downloadTree, type TreeDownloadHandle, type TreeDownloadOptions } from './tree.js';
