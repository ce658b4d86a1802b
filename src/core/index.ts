// The public entry of src/core: pure logic shared by peer and tracker.

export {
  type Backoff,
  type BackoffOptions,
  createBackoff,
  createStepBackoff,
  DEFAULT_BACKOFF,
  LISTEN_RECONNECT_STEPS_MS,
  type StepBackoffOptions,
  TRACKER_RECONNECT_STEPS_MS,
} from './backoff.js';
export { Bitfield } from './bitfield.js';
export {
  createGroupCommit,
  type GroupCommit,
  type GroupCommitOptions,
  type GroupCommitTimers,
  JobFailed,
  laneOfKey,
} from './group-commit.js';
export {
  type CreateManifestOptions,
  createManifest,
  MANIFEST_DEFAULTS,
  type ManifestResult,
  verifyPiece,
} from './manifest.js';
export {
  type ForgetArenasMessage,
  type HashPieceMessage,
  type HashRunJob,
  hashPiece,
  pieceDigest,
  startHashWorker,
} from './piece-hash.js';
export {
  type BlockedReplica,
  type DropOrder,
  type DropReason,
  type PlacedFile,
  type PlacementPlan,
  planPlacement,
  REPLICA_RETRY_BASE_MS,
  REPLICA_RETRY_MAX_MS,
  type ReplicaInfo,
  type ReplicaState,
  type ReplicateOrder,
  type ReplicationPolicy,
  rankPeers,
  rendezvousWeight,
  replicaRetryDelayMs,
  type StoragePeerInfo,
  type StoragePeerState,
} from './placement.js';
export {
  applyReport,
  currentQuality,
  decayed,
  isFlagged,
  NEUTRAL_SCORE,
  observation,
  type QualityPolicy,
  type ScoreState,
} from './quality.js';
export {
  type AttemptRef,
  type BlockOutcome,
  type BlockRequest,
  type Clock,
  createScheduler,
  DEFAULT_SCHEDULER_OPTIONS,
  type PeerReport,
  type PeerStateName,
  type PieceLayout,
  type Scheduler,
  type SchedulerActions,
  type SchedulerComponents,
  type SchedulerOptions,
} from './scheduler.js';
export {
  chooseTreePieceSize,
  createTreeManifest,
  scanTree,
  type TreeManifestOptions,
  type TreeSourceFile,
} from './tree-manifest.js';
