// The public entry of src/core: pure logic shared by peer and tracker.
export { Bitfield } from './bitfield.js';
export {
  type CreateManifestOptions,
  createManifest,
  hashPiece,
  MANIFEST_DEFAULTS,
  type ManifestResult,
  verifyPiece,
} from './manifest.js';
