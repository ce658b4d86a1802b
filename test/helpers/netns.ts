// The network-namespace lab lives in bench/lib (the reach benchmark uses it too; bench/ does not import test/).
export * from '../../bench/lib/netns.js';
