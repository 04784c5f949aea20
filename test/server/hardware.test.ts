import { describe, expect, it } from 'vitest';
import { startWithFixtures } from '../helpers/fixtures.js';
import { REFERENCE_HARDWARE } from '../helpers/reference-backend.js';

describe('POST /v1/hardware/list', () => {
  it("lists the reference's rows and pks, then newer generations as an extension", async () => {
    const fx = await startWithFixtures();
    const res = await fx.call('POST', '/v1/hardware/list', { json: {} });
    expect(res.status).toBe(200);
    expect(res.body.slice(0, 8)).toEqual(REFERENCE_HARDWARE);
    expect(res.body.slice(8)).toEqual([{ pk: 9, generation: 'Blackwell and newer', min_compute_capability: 10, max_compute_capability: 100 }]);
  });

  it("serves exactly the reference's rows in --no-extensions mode", async () => {
    const fx = await startWithFixtures({ extensions: false });
    expect((await fx.call('POST', '/v1/hardware/list', { json: {} })).body).toEqual(REFERENCE_HARDWARE);
    expect((await fx.call('GET', '/v1/hardware/9')).status).toBe(404);
    for (const [compute, pk] of [['8.9', 7], ['9.0', 8], ['9.9', 8]] as const) {
      expect((await fx.call('GET', `/v1/hardware/get-hardware-generation/${compute}`)).body.pk, compute).toBe(pk);
    }
    const newer = await fx.call('GET', '/v1/hardware/get-hardware-generation/12.0');
    expect(newer.status).toBe(400);
    expect(newer.body).toEqual({ detail: "Bad value for get_hardware_generation parameter 'compute': 12.0, options: [2.0, 10.0)" });
  });

  it('filters like every list, and refuses unknown fields', async () => {
    const fx = await startWithFixtures();
    const res = await fx.call('POST', '/v1/hardware/list', {
      json: { expressions: [{ type: 'compare', field: 'min_compute_capability', operator: '>=', value: 9 }] },
    });
    expect(res.body.map((h: { generation: string }) => h.generation)).toEqual(['Hopper', 'Blackwell and newer']);
    expect((await fx.call('POST', '/v1/hardware/list', { json: { order_by: [{ field: 'speed' }] } })).status).toBe(400);
    expect((await fx.call('POST', '/v1/hardware/list', { as: null, json: {} })).status).toBe(401);
  });
});

describe('GET /v1/hardware/get-hardware-generation/{compute}', () => {
  it('returns the generation whose range holds the compute capability (min inclusive, max exclusive)', async () => {
    const fx = await startWithFixtures();
    for (const [compute, generation] of [
      ['2.0', 'Fermi'],
      ['7.5', 'Turing'],
      ['8', 'Ampere'],
      ['8.9', 'Ampere'],
      ['9.0', 'Hopper'],
      ['12.0', 'Blackwell and newer'],
    ]) {
      const res = await fx.call('GET', `/v1/hardware/get-hardware-generation/${compute}`);
      expect(res.status, compute).toBe(200);
      expect(res.body.generation, compute).toBe(generation);
    }
  });

  it("answers 400 in the reference's words for a capability outside every range", async () => {
    const fx = await startWithFixtures();
    const res = await fx.call('GET', '/v1/hardware/get-hardware-generation/1.5');
    expect(res.status).toBe(400);
    expect(res.body).toEqual({ detail: "Bad value for get_hardware_generation parameter 'compute': 1.5, options: [2.0, 100.0)" });
  });

  it('answers 400 for a value that is not a decimal number', async () => {
    const fx = await startWithFixtures();
    for (const compute of ['abc', 'NaN', '1e3', '-7']) {
      const res = await fx.call('GET', `/v1/hardware/get-hardware-generation/${compute}`);
      expect(res.status, compute).toBe(400);
      expect(res.body.detail).toContain(`parameter 'compute': ${compute}`);
    }
  });
});

describe('GET /v1/hardware/{pk}', () => {
  it('returns one generation or 404', async () => {
    const fx = await startWithFixtures();
    expect((await fx.call('GET', '/v1/hardware/2')).body.generation).toBe('Kepler');
    expect((await fx.call('GET', '/v1/hardware/99')).status).toBe(404);
  });
});
