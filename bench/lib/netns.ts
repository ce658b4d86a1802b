/**
 * A small internet in network namespaces (issue 19), for tests and the reach
 * benchmark run as root: a "public" namespace on 198.18.0.0/15 (the
 * benchmarking range: the tracker and its relay at 198.18.0.1, a public peer
 * next door at 198.19.0.2) and homes on 10.N.0.0/24, each behind its own router
 * namespace (198.18.N.2 on the public side) doing one kind of NAT with
 * nftables, its uplink shaped by a `tc` token bucket. No route leads out of
 * the namespaces. Everything the lab makes carries the prefix `<prefix><id>` (`nat` unless
 * a suite names its own, e.g. its branch's: two suites' labs never meet), and
 * cleanUp() (idempotent, also run at process exit) removes every process in
 * its namespaces and the namespaces themselves, which takes their veths along.
 */
import { type ChildProcess, execFileSync, spawn, spawnSync } from 'node:child_process';
import { randomBytes, randomUUID } from 'node:crypto';
import { mkdirSync, writeFileSync } from 'node:fs';
import { join } from 'node:path';
import { BIN } from './bin.js';
import { until } from './wait.js';

/**
 * The router's behaviour toward the internet:
 * - `fullcone`: endpoint-independent mapping and filtering. Outbound is masqueraded with ports kept;
 *   inbound to the router's address reaches the home's host at the same port, from anyone (a
 *   one-host home: every mapping leads to that host).
 * - `restricted` (port-restricted cone): masquerade with ports kept; only replies come in.
 * - `symmetric`: masquerade with a random port per connection; only replies come in.
 * - `upnp`: like `restricted`, plus what a port-mapping daemon (miniupnpd) adds.
 */
export type NatType = 'fullcone' | 'restricted' | 'symmetric' | 'upnp';

export const PUBLIC_HOST = '198.18.0.1';
export const PUBLIC_PEER = '198.19.0.2';

/** Why namespaces cannot be made here ('' when they can). */
export function netnsMissing(tools: string[] = ['ip', 'nft', 'tc']): string {
  if (process.getuid?.() !== 0) return 'not root';
  const absent = tools.filter((t) => spawnSync('sh', ['-c', `command -v ${t}`]).status !== 0);
  return absent.length === 0 ? '' : `no ${absent.join(', ')}`;
}

/** Prints the SKIPPED line a run without namespaces must show, and says whether to skip. */
export function skipWithoutNetns(file: string, tools?: string[]): boolean {
  const missing = netnsMissing(tools);
  if (missing !== '') {
    console.warn(`SKIPPED ${file}: network namespaces need root, ip, nft and tc (${missing})`);
  }
  return missing !== '';
}

export interface Home {
  index: number;
  type: NatType;
  router: string;
  home: string;
  /** The home host's address (10.N.0.2). */
  lan: string;
  /** The router's address on the public side (198.18.N.2; 11.N.0.2 for a `upnp` router). */
  wan: string;
  /** The router's interfaces: toward the public side, toward the home. */
  up: string;
  down: string;
}

export class NetnsLab {
  readonly id = randomBytes(2).toString('hex');
  /** Names start with this (each branch's tests use their own, so labs never meet). */
  readonly pub: string;
  /** The public peer's own namespace, one hop from the tracker's (so its traffic has its own address). */
  readonly pubPeer: string;
  readonly homes: Home[] = [];
  readonly #namespaces: string[] = [];
  readonly #children: ChildProcess[] = [];
  #cleaned = false;
  readonly #onExit = () => this.cleanUp();

  /** Names start with `prefix` (default `nat`, or COTERIE_NETNS_PREFIX: a branch's own runs keep apart); at most 7 characters, so that an interface's name stays within 15. */
  constructor(readonly prefix: string = process.env.COTERIE_NETNS_PREFIX ?? 'nat') {
    if (!/^[a-z]{1,7}$/.test(prefix))
      throw new Error(`a lab prefix is 1 to 7 lowercase letters, not '${prefix}'`);
    process.once('exit', this.#onExit);
    this.pub = this.#addNs('pub');
    this.inNs(this.pub, 'ip', 'addr', 'add', `${PUBLIC_HOST}/32`, 'dev', 'lo');
    // The public side routes between the routers: one home reaches another's router through it.
    this.inNs(this.pub, 'sysctl', '-qw', 'net.ipv4.ip_forward=1');
    this.pubPeer = this.#addNs('pp');
    this.#link(
      { ns: this.pub, dev: this.name('wp'), addr: '198.19.0.1/24' },
      { ns: this.pubPeer, dev: this.name('pp'), addr: `${PUBLIC_PEER}/24` },
    );
    this.inNs(this.pubPeer, 'ip', 'route', 'add', 'default', 'via', '198.19.0.1');
  }

  /** A name that is ours: `<prefix><id><suffix>` (≤ 15 characters for an interface). */
  name(suffix: string): string {
    return `${this.prefix}${this.id}${suffix}`;
  }

  sh(...args: string[]): Buffer {
    return execFileSync(args[0]!, args.slice(1), { stdio: 'pipe', timeout: 10_000 });
  }

  inNs(ns: string, ...args: string[]): Buffer {
    return this.sh('ip', 'netns', 'exec', ns, ...args);
  }

  nft(ns: string, script: string): void {
    this.inNs(ns, 'nft', script);
  }

  /**
   * `router` drops UDP to and from `wan` (another home's router) until `table` is deleted
   * (`nft(router, 'delete table ip TABLE')`). Incoming datagrams are dropped before conntrack
   * sees them (raw prerouting), so no stale entry outlives the rule and makes the router pick
   * another port for its home's datagrams later.
   */
  dropUdp(router: string, wan: string, table: string): void {
    this.nft(
      router,
      [
        `add table ip ${table}`,
        `add chain ip ${table} raw { type filter hook prerouting priority -300; }`,
        `add rule ip ${table} raw ip saddr ${wan} meta l4proto udp drop`,
        `add chain ip ${table} out { type filter hook forward priority -5; }`,
        `add rule ip ${table} out ip daddr ${wan} meta l4proto udp drop`,
      ].join('; '),
    );
  }

  #addNs(suffix: string): string {
    const ns = this.name(suffix);
    this.sh('ip', 'netns', 'add', ns);
    this.#namespaces.push(ns);
    this.inNs(ns, 'ip', 'link', 'set', 'lo', 'up');
    return ns;
  }

  /** A veth pair between two namespaces, addressed and up. */
  #link(a: { ns: string; dev: string; addr: string }, b: { ns: string; dev: string; addr: string }): void {
    this.sh('ip', 'link', 'add', a.dev, 'netns', a.ns, 'type', 'veth', 'peer', 'name', b.dev, 'netns', b.ns);
    for (const end of [a, b]) {
      this.inNs(end.ns, 'ip', 'addr', 'add', end.addr, 'dev', end.dev);
      this.inNs(end.ns, 'ip', 'link', 'set', end.dev, 'up');
    }
  }

  /** A home behind a router doing `type` NAT, its uplink shaped to `uplinkMbit` (0: not shaped). */
  addHome(type: NatType, uplinkMbit = 100): Home {
    const index = this.homes.length + 1;
    const router = this.#addNs(`r${index}`);
    const home = this.#addNs(`h${index}`);
    const up = this.name(`u${index}`);
    const down = this.name(`d${index}`);
    // miniupnpd maps nothing on a reserved WAN address (198.18/15 is one), so a UPnP router's uplink
    // takes an address from a block it does not reserve; it exists only inside these namespaces.
    const net = type === 'upnp' ? `11.${index}.0` : `198.18.${index}`;
    this.#link(
      { ns: this.pub, dev: this.name(`w${index}`), addr: `${net}.1/24` },
      { ns: router, dev: up, addr: `${net}.2/24` },
    );
    this.inNs(router, 'ip', 'route', 'add', 'default', 'via', `${net}.1`);
    this.#link(
      { ns: router, dev: down, addr: `10.${index}.0.1/24` },
      { ns: home, dev: this.name(`e${index}`), addr: `10.${index}.0.2/24` },
    );
    this.inNs(home, 'ip', 'route', 'add', 'default', 'via', `10.${index}.0.1`);
    this.inNs(router, 'sysctl', '-qw', 'net.ipv4.ip_forward=1');
    const h: Home = { index, type, router, home, lan: `10.${index}.0.2`, wan: `${net}.2`, up, down };
    this.nft(router, natRules(h));
    if (uplinkMbit > 0) this.shape(router, up, uplinkMbit);
    this.homes.push(h);
    return h;
  }

  /** A token bucket on `dev`'s egress (no netem on this kernel): `mbit` Mbit/s, a 64 KiB burst. */
  shape(ns: string, dev: string, mbit: number): void {
    this.inNs(
      ns,
      'tc',
      'qdisc',
      'replace',
      'dev',
      dev,
      'root',
      'tbf',
      'rate',
      `${mbit}mbit`,
      'burst',
      '64kb',
      'latency',
      '50ms',
    );
  }

  /** Starts `coterie …args` in `ns` and waits for `ready` in its output; killed at cleanUp. */
  async daemon(ns: string, args: string[], ready: RegExp, label: string, ms = 60_000): Promise<Started> {
    return this.spawnIn(ns, [process.execPath, BIN, ...args], ready, label, ms);
  }

  /** Starts any program in `ns` and waits for `ready` in its output; killed at cleanUp. */
  async spawnIn(ns: string, argv: string[], ready: RegExp, label: string, ms = 60_000): Promise<Started> {
    const child = spawn('ip', ['netns', 'exec', ns, ...argv], { stdio: ['ignore', 'pipe', 'pipe'] });
    this.#children.push(child);
    const started: Started = { child, out: '' };
    const add = (d: Buffer) => {
      started.out += d.toString();
    };
    child.stdout!.on('data', add);
    child.stderr!.on('data', add);
    await until(
      `${label} started`,
      () => {
        if (child.exitCode !== null) throw new Error(`${label} exited: ${started.out}`);
        return ready.test(started.out);
      },
      ms,
    );
    return started;
  }

  /** Runs `coterie …` in `ns` (a daemon's control API is on that namespace's loopback). */
  coterie(ns: string, args: string[], input = ''): string {
    const r = spawnSync('ip', ['netns', 'exec', ns, process.execPath, BIN, ...args], {
      input,
      encoding: 'utf8',
      timeout: 30_000,
    });
    if (r.status !== 0) throw new Error(`coterie ${args.join(' ')} in ${ns}: ${r.stderr}${r.error ?? ''}`);
    return r.stdout;
  }

  /** The tracker and its relay at 198.18.0.1 (ports 7070, 7072); returns its URL with the certificate pinned. */
  async startTracker(dataDir: string, extra: string[] = []): Promise<string> {
    const url = `https://${PUBLIC_HOST}:7070`;
    const { out } = await this.daemon(
      this.pub,
      [
        'tracker',
        ...['--host', '0.0.0.0', '--port', '7070', '--public-url', url, '--data-dir', dataDir],
        ...[
          '--relay-port',
          '7072',
          '--relay-public-host',
          PUBLIC_HOST,
          '--scrypt-log-n',
          '10',
          '--log-level',
          'warn',
        ],
        ...extra,
      ],
      /listening on/,
      'tracker',
    );
    return `${url}#sha256=${/#sha256=([0-9a-f]{64})/.exec(out)![1]}`;
  }

  /** A member's peer in `ns` advertising `address`, its user created and logged in. */
  async startMember(
    ns: string,
    o: { name: string; address: string; dataDir: string; tracker: string; extra?: string[] },
  ): Promise<Started> {
    const started = await this.daemon(
      ns,
      [
        'peer',
        ...['--data-dir', o.dataDir, '--tracker', o.tracker, '--no-shell', '--no-ui'],
        ...['--host', '0.0.0.0', '--advertise', o.address, ...(o.extra ?? [])],
      ],
      /serving on/,
      o.name,
    );
    this.coterie(ns, ['--data-dir', o.dataDir, 'create_user', o.name, '-'], `${o.name}-password\n`);
    this.coterie(ns, ['--data-dir', o.dataDir, 'login', o.name, `${o.name}-password`]);
    return started;
  }

  /**
   * miniupnpd (Debian's, nftables backend) on a `upnp` home's router: UPnP IGD on the home side,
   * and NAT-PMP/PCP unless `natpmp` is false; its lease file is `dir`/leases (one line per mapping,
   * `TCP:ext:client:int:expiry:description`).
   */
  async startMiniupnpd(h: Home, dir: string, o: { natpmp: boolean }): Promise<Started & { leases: string }> {
    if (h.type !== 'upnp') throw new Error(`home ${h.index} is ${h.type}, not upnp`);
    mkdirSync(dir, { recursive: true });
    const leases = join(dir, 'leases');
    const conf = join(dir, 'miniupnpd.conf');
    writeFileSync(
      conf,
      [
        `ext_ifname=${h.up}`,
        `listening_ip=${h.down}`,
        'port=0',
        'enable_upnp=yes',
        `enable_natpmp=${o.natpmp ? 'yes' : 'no'}`,
        `lease_file=${leases}`,
        // PCP grants 120 s at least by default; the tests' short leases show renewals.
        'min_lifetime=1',
        'secure_mode=yes',
        `uuid=${randomUUID()}`,
        'allow 1024-65535 10.0.0.0/8 1024-65535',
        'deny 0-65535 0.0.0.0/0 0-65535',
        '',
      ].join('\n'),
    );
    const ready = o.natpmp ? /Listening for NAT-PMP/ : /HTTP listening on port/;
    const started = await this.spawnIn(
      h.router,
      ['/usr/sbin/miniupnpd', '-f', conf, '-d', '-P', join(dir, 'miniupnpd.pid')],
      ready,
      `miniupnpd of home ${h.index}`,
      10_000,
    );
    return Object.assign(started, { leases });
  }

  /** The DNAT rules miniupnpd holds on `h`'s router (`tcp dport 4321 dnat to 10.1.0.2:4321` and so on). */
  upnpRules(h: Home): string[] {
    const listed = this.inNs(h.router, 'nft', 'list', 'chain', 'inet', 'filter', 'prerouting_miniupnpd');
    return listed
      .toString()
      .split('\n')
      .map((l) => l.trim())
      .filter((l) => l.includes('dnat'));
  }

  /** Byte counters on what `ns` receives, one per named match (`ip saddr 198.18.1.2`), read by readCounters. */
  addCounters(ns: string, matches: Record<string, string>): void {
    const rules = Object.entries(matches)
      .map(([name, match]) => `add rule ip natprobe in ${match} counter comment "${name}"`)
      .join('; ');
    this.nft(
      ns,
      `add table ip natprobe; add chain ip natprobe in { type filter hook input priority -10; }; ${rules}`,
    );
  }

  readCounters(ns: string): Record<string, number> {
    const listed = JSON.parse(this.inNs(ns, 'nft', '-j', 'list', 'table', 'ip', 'natprobe').toString()) as {
      nftables: Array<{ rule?: { comment?: string; expr: Array<{ counter?: { bytes: number } }> } }>;
    };
    const out: Record<string, number> = {};
    for (const { rule } of listed.nftables) {
      if (rule?.comment === undefined) continue;
      out[rule.comment] = rule.expr.find((e) => e.counter !== undefined)?.counter?.bytes ?? 0;
    }
    return out;
  }

  /** Kills every process in our namespaces and removes them (their veths go with them). Idempotent. */
  cleanUp(): void {
    if (this.#cleaned) return;
    this.#cleaned = true;
    process.off('exit', this.#onExit);
    for (const c of this.#children) if (c.exitCode === null) c.kill('SIGKILL');
    for (const ns of this.#namespaces) {
      const pids = spawnSync('ip', ['netns', 'pids', ns], { encoding: 'utf8' }).stdout ?? '';
      for (const pid of pids.split('\n').filter((p) => /^\d+$/.test(p))) {
        try {
          process.kill(Number(pid), 'SIGKILL');
        } catch {
          // gone already
        }
      }
    }
    for (const ns of this.#namespaces) spawnSync('ip', ['netns', 'del', ns]);
  }

  /** Our namespaces that still exist (a test checks cleanUp left none). */
  leftOver(): string[] {
    const listed = spawnSync('ip', ['netns', 'list'], { encoding: 'utf8' }).stdout ?? '';
    return listed
      .split('\n')
      .map((l) => l.split(' ')[0]!)
      .filter((n) => n.startsWith(this.name('')));
  }
}

export interface Started {
  child: ChildProcess;
  out: string;
}

/** The router's nftables rules for its NAT type: a nat table and a forward filter that drops what nobody asked for. */
function natRules(h: Home): string {
  const masquerade =
    h.type === 'symmetric'
      ? 'masquerade random'
      : h.type === 'fullcone'
        ? 'masquerade persistent'
        : 'masquerade';
  const rules = [
    'add table ip nat',
    'add chain ip nat postrouting { type nat hook postrouting priority 100; }',
    `add rule ip nat postrouting oifname "${h.up}" ${masquerade}`,
    'add chain ip nat prerouting { type nat hook prerouting priority -100; }',
    'add table ip filter',
    'add chain ip filter forward { type filter hook forward priority 0; policy drop; }',
    'add rule ip filter forward ct state established,related accept',
    `add rule ip filter forward iifname "${h.down}" accept`,
    // The router drops datagrams its uplink brings unasked, as real home routers' firewalls do.
    // Without it, a hole-punching probe that reached this router before its home's first probe
    // left was answered with an ICMP error, and that confirmed a conntrack entry for the very flow
    // the punch opens next: the router then masqueraded its home's probes from another port, and
    // restricted-to-restricted punches were lost now and then (netns-nat.test.ts). TCP is still
    // answered with a reset (netns-relay's forgotten mappings rely on it to end stale
    // connections fast; with a silent drop the download there took 98 s instead of 31 s).
    'add chain ip filter input { type filter hook input priority 0; policy accept; }',
    `add rule ip filter input iifname "${h.up}" ct state established,related accept`,
    `add rule ip filter input iifname "${h.up}" meta l4proto udp drop`,
  ];
  if (h.type === 'upnp') {
    // What miniupnpd fills (its nftables backend's default table and chains), and the forward
    // filter letting in what its DNAT rules let in (the only DNAT this router does).
    rules.push(
      'add table inet filter',
      'add chain inet filter miniupnpd',
      'add chain inet filter forward { type filter hook forward priority -1; policy accept; }',
      'add rule inet filter forward jump miniupnpd',
      'add chain inet filter prerouting_miniupnpd',
      'add chain inet filter postrouting_miniupnpd',
      'add chain inet filter prerouting { type nat hook prerouting priority -101; policy accept; }',
      'add rule inet filter prerouting jump prerouting_miniupnpd',
      'add chain inet filter postrouting { type nat hook postrouting priority 99; policy accept; }',
      'add rule inet filter postrouting jump postrouting_miniupnpd',
      `add rule ip filter forward iifname "${h.up}" ct status dnat accept`,
    );
  }
  if (h.type === 'fullcone') {
    rules.push(
      `add rule ip nat prerouting iifname "${h.up}" ip daddr ${h.wan} dnat to ${h.lan}`,
      `add rule ip filter forward iifname "${h.up}" ct status dnat accept`,
    );
  }
  return rules.join('; ');
}
