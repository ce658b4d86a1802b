import { describe, expect, it } from 'vitest';
import { NEUTRAL_SCORE } from '../../src/core/quality.js';
import { appearedSeeder, listedSeeders, withSeederNames } from '../../src/peer/files/download-seeders.js';
import type { FileDetail } from '../../src/protocol/api.js';
import { CoterieError } from '../../src/protocol/errors.js';

const id = (c: string) => c.repeat(64);

describe("a download's seeders", () => {
  it('dials the listed seeders but itself, by their first readable address; flagged ones last', () => {
    const detail = {
      seeders: [
        {
          peerId: id('a'),
          userId: 'alice',
          addresses: ['nonsense', '[::1]:7001'],
          score: 0.8,
          flagged: false,
        },
        { peerId: id('b'), userId: 'me', addresses: ['127.0.0.1:7002'], score: 0.9, flagged: false },
        { peerId: id('c'), userId: 'carol', addresses: ['127.0.0.1:7003'], score: 0.9, flagged: true },
        { peerId: id('d'), userId: 'dave', addresses: ['h:0'], score: 0.5, flagged: false },
      ],
    } as unknown as FileDetail;
    const users = new Map<string, string>();
    expect(listedSeeders(detail, id('b'), users)).toEqual([
      { peerId: id('a'), address: { host: '::1', port: 7001 }, score: 0.8 },
      { peerId: id('c'), address: { host: '127.0.0.1', port: 7003 }, score: 0.05 },
    ]);
    expect([...users]).toEqual([
      [id('a'), 'alice'],
      [id('c'), 'carol'],
    ]);
  });

  it('takes a seeder announced during the download at the neutral score', () => {
    const e = {
      type: 'seeder_appeared',
      fileId: id('f'),
      peerId: id('a'),
      userId: 'alice',
      addresses: ['127.0.0.1:9'],
    };
    expect(appearedSeeder(e as never)).toEqual({
      peerId: id('a'),
      address: { host: '127.0.0.1', port: 9 },
      score: NEUTRAL_SCORE,
    });
    expect(appearedSeeder({ ...e, addresses: ['x'] } as never)).toBeUndefined();
  });

  it('names each seeder in an error by its user, keeping the code', () => {
    const e = new CoterieError('DOWNLOAD_FAILED', `no piece from ${id('a').slice(0, 12)}`);
    const named = withSeederNames(e, new Map([[id('a'), 'alice']]));
    expect(named.code).toBe('DOWNLOAD_FAILED');
    expect(named.message).toBe(`no piece from ${'a'.repeat(12)} ('alice')`);
    expect(withSeederNames(e, new Map([[id('b'), 'bob']]))).toBe(e);
  });
});
