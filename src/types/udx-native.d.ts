// udx-native ships no types; the little of it Coterie uses (wire/udp-endpoint.ts): a UDP socket that
// also carries reliable, congestion-controlled streams. Its streams are streamx Duplexes.
declare module 'udx-native' {
  import type { EventEmitter } from 'node:events';

  interface UdxAddress {
    host: string;
    family: number;
    port: number;
  }

  class UdxSocket extends EventEmitter {
    readonly streams: Set<UdxStream>;
    bind(port?: number, host?: string): void;
    address(): UdxAddress;
    close(): Promise<void>;
    send(buffer: Buffer, port: number, host?: string, ttl?: number): Promise<boolean>;
    trySend(buffer: Buffer, port: number, host?: string): void;
    setRecvBufferSize(bytes: number): void;
    setSendBufferSize(bytes: number): void;
    on(event: 'message', listener: (msg: Buffer, from: UdxAddress) => void): this;
    on(event: 'close', listener: () => void): this;
  }

  class UdxStream extends EventEmitter {
    readonly id: number;
    readonly connected: boolean;
    readonly destroyed: boolean;
    readonly remoteHost: string | null;
    readonly remotePort: number;
    readonly rtt: number;
    connect(socket: UdxSocket, remoteId: number, port: number, host?: string): void;
    write(data: Buffer): boolean;
    end(): void;
    pause(): this;
    resume(): this;
    destroy(err?: Error): void;
    setInteractive(on: boolean): void;
  }

  class UDX {
    createSocket(options?: { ipv6Only?: boolean }): UdxSocket;
    createStream(
      id: number,
      options?: { firewall?: (socket: UdxSocket, port: number, host: string) => boolean },
    ): UdxStream;
  }

  export default UDX;
  export type { UdxAddress, UdxSocket, UdxStream };
}
