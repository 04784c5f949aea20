/** The job page's curves from its progress history (src/ui/progress-series.ts). */
import { describe, expect, it } from 'vitest';
import { seriesOf } from '../../src/ui/progress-series.js';

describe('seriesOf()', () => {
  it("draws the progress, and each metadata number by its key; a metadata key 'progress' is a curve of its own", () => {
    const series = seriesOf([
      { t: 1, p: 0.1, d: { loss: 2, progress: 40 } },
      { t: 2, p: 0.2, d: { loss: 1.5, progress: 80, 'val.acc': 0.5 } },
    ]);
    expect(series).toEqual([
      { name: 'progress', points: [{ t: 1, v: 0.1 }, { t: 2, v: 0.2 }] },
      { name: 'loss', points: [{ t: 1, v: 2 }, { t: 2, v: 1.5 }] },
      { name: 'progress (reported)', points: [{ t: 1, v: 40 }, { t: 2, v: 80 }] },
      { name: 'val.acc', points: [{ t: 2, v: 0.5 }] },
    ]);
  });

  it('draws the progress alone when nothing else is reported, and nothing breaks without points', () => {
    expect(seriesOf([{ t: 5, p: 1, d: {} }])).toEqual([{ name: 'progress', points: [{ t: 5, v: 1 }] }]);
    expect(seriesOf([])).toEqual([{ name: 'progress', points: [] }]);
  });
});
