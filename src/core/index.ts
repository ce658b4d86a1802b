// The public entry of src/core: pure logic shared by peer and tracker.
export { Bitfield } from './bitfield.js';
