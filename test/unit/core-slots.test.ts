import { describe, expect, it } from 'vitest';
import { Slots } from '../../src/core/slots.js';

describe('Slots', () => {
  it('lends at most n permits and hands freed ones out in arrival order', async () => {
    const slots = new Slots(2);
    const order: number[] = [];
    let running = 0;
    let most = 0;
    const task = async (i: number) => {
      await slots.acquire();
      running++;
      most = Math.max(most, running);
      order.push(i);
      await new Promise((r) => setTimeout(r, 5));
      running--;
      slots.release();
    };
    await Promise.all([0, 1, 2, 3, 4, 5].map(task));
    expect(most).toBe(2);
    expect(order).toEqual([0, 1, 2, 3, 4, 5]);
  });
});
