/**
 * A compute capability's hardware generation, from the server's table (`POST /v1/hardware/list`):
 * each row covers [min, max) — min inclusive, max exclusive, as the reference reads them.
 */
import type { HardwareJson } from '../../protocol/wire.js';

/** Capabilities are decimals like 8.6 that binary floats cannot hold exactly; compare with slack. */
const EPSILON = 1e-6;

/** The generation whose range holds `computeCapability`, or `undefined`. */
export function hardwareGenerationFor(
  computeCapability: number | null,
  generations: readonly HardwareJson[],
): HardwareJson | undefined {
  if (computeCapability === null || !Number.isFinite(computeCapability)) return undefined;
  return generations.find(
    (g) =>
      computeCapability >= g.min_compute_capability - EPSILON && computeCapability < g.max_compute_capability - EPSILON,
  );
}
