// `coterie peer` processes for the benchmarks: started with the caller's flags, ready once they
// print their serving line.
import { type ChildProcess, spawn } from 'node:child_process';
import { BIN } from './bin.js';

/**
 * Spawns `node [nodeArgs…] bin/coterie.js peer ARGS…` (stdout piped, stderr inherited) and
 * resolves once it prints `peer <id> serving on`; rejects with its output if it exits first.
 */
export async function spawnPeer(
  name: string,
  args: string[],
  nodeArgs: string[] = [],
): Promise<ChildProcess> {
  const child = spawn(process.execPath, [...nodeArgs, BIN, 'peer', ...args], {
    stdio: ['ignore', 'pipe', 'inherit'],
  });
  let out = '';
  await new Promise<void>((resolve, reject) => {
    child.stdout!.on('data', (d: Buffer) => {
      out += d.toString();
      if (/^peer [0-9a-f]{64} serving on/m.test(out)) resolve();
    });
    child.once('exit', (code) => reject(new Error(`peer ${name} exited (${code}): ${out}`)));
  });
  return child;
}
