// `status`'s reach part (issue 19), apart from control.ts to keep that file to the command table's types.

/** `status`'s reachability: the tracker's dial-back verdict, the relay reserved, the relays known. */
export interface ReachView {
  /** `unknown` until a tracker that checks said. */
  reachable: 'direct' | 'nat' | 'unknown';
  /** The address the tracker's dial-back reached. */
  address?: string;
  /** host:port of the relay holding this peer's reservation (behind NAT). */
  relay?: string;
  relays: string[];
  /** The port mapping the home router holds for the piece server (PCP, NAT-PMP or UPnP IGD). */
  mapping?: PortMappingView;
  /** Our public UDP endpoint as a relay's reflector saw it (hole punching); absent with --no-punch. */
  udp?: string;
}

/** `status`'s port mapping: where the router forwards, by which protocol, until when. */
export interface PortMappingView {
  protocol: 'upnp' | 'natpmp' | 'pcp';
  /** host:port others dial. */
  external: string;
  /** host:port it forwards to (this peer's piece server). */
  internal: string;
  leaseSec: number;
  /** ms since the epoch; renewed at half the lease. */
  expiresAt: number;
  renewals: number;
}
