// Next-fit allocation over in-memory sets of the addresses in use, like host-local's last-reserved cursor:
// an ADD looks at the address after the previous one, so it does not scan the range while it is sparse.
import { bigIntToIpv6, type Cidr4, type Cidr6, intToIpv4, ipv4ToInt, ipv6ToBigInt, parseCidr4, parseCidr6 } from '../ip/ip';

export class Pool4 {
  readonly cidr: Cidr4;
  readonly gateway: number;
  private readonly used = new Set<number>();
  private cursor: number;

  constructor(subnet: string, gateway?: string) {
    this.cidr = parseCidr4(subnet);
    this.gateway = gateway ? ipv4ToInt(gateway) : this.cidr.network + 1;
    if (this.gateway <= this.cidr.network || this.gateway >= this.cidr.broadcast) {
      throw new Error(`gateway ${gateway} is not a host address of ${subnet}`);
    }
    this.cursor = this.cidr.network;
  }

  get size(): number {
    // every host address but the gateway; the network and broadcast addresses are never handed out
    return this.cidr.broadcast - this.cidr.network - 2;
  }

  get inUse(): number {
    return this.used.size;
  }

  contains(ip: number): boolean {
    return ip > this.cidr.network && ip < this.cidr.broadcast;
  }

  /** A host address of the pool other than the gateway: one a pod can be given (a static request). */
  accepts(ip: string): boolean {
    const n = ipv4ToInt(ip);
    return this.contains(n) && n !== this.gateway;
  }

  /** The pool's CIDR as text. */
  get text(): string {
    return `${intToIpv4(this.cidr.network)}/${this.cidr.prefix}`;
  }

  isUsed(ip: number): boolean {
    return this.used.has(ip);
  }

  markUsed(ip: number): void {
    this.used.add(ip);
  }

  markFree(ip: number): void {
    this.used.delete(ip);
  }

  resumeAfter(ip: number): void {
    if (this.contains(ip)) this.cursor = ip;
  }

  /** The next free host address after the cursor, wrapping once; undefined when the pool is full. */
  next(): number | undefined {
    if (this.used.size >= this.size) return undefined;
    const first = this.cidr.network + 1;
    const span = this.cidr.broadcast - first;
    for (let i = 1; i <= span; i++) {
      const ip = first + ((this.cursor - first + i) % span);
      if (ip !== this.gateway && !this.used.has(ip)) {
        this.cursor = ip;
        return ip;
      }
    }
    return undefined;
  }
}

export class Pool6 {
  readonly cidr: Cidr6;
  readonly gateway: bigint;
  private readonly used = new Set<string>();
  private cursor: bigint;

  constructor(subnet: string) {
    this.cidr = parseCidr6(subnet);
    this.gateway = this.cidr.network + 1n;
    this.cursor = this.gateway;
  }

  /** A host address of the pool other than the gateway: one a pod can be given. */
  accepts(ip: string): boolean {
    const n = ipv6ToBigInt(ip);
    return n > this.gateway && n < this.cidr.last;
  }

  /** The pool's CIDR as text. */
  get text(): string {
    return `${bigIntToIpv6(this.cidr.network)}/${this.cidr.prefix}`;
  }

  isUsed(ip: string): boolean {
    return this.used.has(bigIntToIpv6(ipv6ToBigInt(ip)));
  }

  markUsed(ip: string): void {
    this.used.add(bigIntToIpv6(ipv6ToBigInt(ip)));
  }

  markFree(ip: string): void {
    this.used.delete(bigIntToIpv6(ipv6ToBigInt(ip)));
  }

  resumeAfter(ip: string): void {
    const n = ipv6ToBigInt(ip);
    if (n > this.cidr.network && n < this.cidr.last) this.cursor = n;
  }

  next(): string | undefined {
    const first = this.gateway + 1n;
    const span = this.cidr.last - first;
    // bounded: a pool this code accepts (/64../126) is never scanned further than it has used entries
    for (let i = 1n; i <= span && i <= BigInt(this.used.size) + 1n; i++) {
      const candidate = bigIntToIpv6(first + ((this.cursor - first + i) % span));
      if (!this.used.has(candidate)) {
        this.cursor = ipv6ToBigInt(candidate);
        return candidate;
      }
    }
    return undefined;
  }
}
