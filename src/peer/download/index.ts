// The public entry of the download machinery: the engine the peer daemon drives.
export {
  createTlsDial,
  type Dial,
  DOWNLOAD_DEFAULTS,
  type DownloadHandle,
  type DownloadOptions,
  download,
  type RetryPolicy,
} from './engine.js';
export type {
  DownloadEvent,
  DownloadProgress,
  DownloadResult,
  PeerConnectionState,
  PeerProgress,
  PieceDistribution,
  SeederInfo,
} from './events.js';
export {
  openPartialFile,
  type PartialFile,
  type PartialFileOptions,
  type ResumeState,
} from './partial-file.js';
