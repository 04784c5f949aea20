/**
 * The node's primary IPv4 address, half of its identity `(ip, index)`, found as the reference worker
 * finds it: the local address the kernel picks for a UDP "connect" to a non-routable address.
 * A UDP connect only selects a route; no packet is sent. Behind NAT or with several interfaces the
 * guess may be wrong, hence the override (`agent.node_ip`).
 */
import { createSocket } from 'node:dgram';

/** The address and where it came from. */
export interface PrimaryAddress {
  address: string;
  source: 'override' | 'route' | 'fallback';
  /** Why the fallback was used. */
  detail?: string;
}

/** The reference's probe target: in 10/8, never routed on the Internet. */
const PROBE_ADDRESS = '10.255.255.255';

/** The primary IPv4, the `override` when given, or `127.0.0.1` when there is no route at all. */
export async function primaryIpv4(override?: string): Promise<PrimaryAddress> {
  if (override !== undefined && override !== '') return { address: override, source: 'override' };
  const socket = createSocket('udp4');
  try {
    const address = await new Promise<string>((resolve, reject) => {
      socket.once('error', reject);
      socket.connect(1, PROBE_ADDRESS, () => resolve(socket.address().address));
    });
    return { address, source: 'route' };
  } catch (err) {
    return { address: '127.0.0.1', source: 'fallback', detail: (err as Error).message };
  } finally {
    socket.close();
  }
}
