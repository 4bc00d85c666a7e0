import { lookup as dnsLookup } from 'node:dns';
import type { LookupAddress, LookupOptions } from 'node:dns';
import { BlockList, isIP } from 'node:net';

/**
 * Where a subscriber's rest-hook may point. A Subscription names its own endpoint, so without a
 * check the registry would POST wherever a subscriber asked: to itself, to the database's host, to
 * a cloud metadata service or anything else on the network it runs in (server-side request
 * forgery). Endpoints must be public addresses: the special-purpose ranges of RFC 6890 (IANA's
 * registries for IPv4 and IPv6) are refused, both when the Subscription is written (an address
 * literal, or `localhost`) and again at every connection, on the address the name resolved to (so
 * a name that later resolves to a private address is refused too). Deployments whose shared care
 * records sit on a private network set `LOCUS_NOTIFY_ALLOW_PRIVATE=true`.
 */
const special = new BlockList();
for (const [prefix, bits] of [
  ['0.0.0.0', 8], // "this network"
  ['10.0.0.0', 8], // private
  ['100.64.0.0', 10], // shared address space (carrier-grade NAT)
  ['127.0.0.0', 8], // loopback
  ['169.254.0.0', 16], // link-local (cloud metadata services live here)
  ['172.16.0.0', 12], // private
  ['192.0.0.0', 24], // IETF protocol assignments
  ['192.0.2.0', 24], // documentation
  ['192.168.0.0', 16], // private
  ['198.18.0.0', 15], // benchmarking
  ['198.51.100.0', 24], // documentation
  ['203.0.113.0', 24], // documentation
  ['224.0.0.0', 4], // multicast
  ['240.0.0.0', 4], // reserved, and broadcast
] as const) {
  special.addSubnet(prefix, bits, 'ipv4');
}
for (const [prefix, bits] of [
  ['::', 128], // unspecified
  ['::1', 128], // loopback
  ['64:ff9b::', 96], // NAT64
  ['100::', 64], // discard
  ['2001:db8::', 32], // documentation
  ['fc00::', 7], // unique local
  ['fe80::', 10], // link-local
  ['ff00::', 8], // multicast
] as const) {
  special.addSubnet(prefix, bits, 'ipv6');
}

/**
 * IPv4-mapped IPv6 (::ffff:0:0/96) is refused whatever IPv4 address it carries. It has a list of
 * its own, consulted for IPv6 input only: BlockList matches IPv4 addresses against IPv6 rules in
 * their mapped form, so in the main list this rule would refuse every IPv4 address.
 */
const mapped = new BlockList();
mapped.addSubnet('::ffff:0:0', 96, 'ipv6');

/** Whether an IP address (v4 or v6, as text) is an ordinary public unicast address. */
export function isPublicAddress(address: string): boolean {
  const version = isIP(address);
  if (version === 0) return false;
  if (version === 6 && mapped.check(address, 'ipv6')) return false;
  return !special.check(address, version === 4 ? 'ipv4' : 'ipv6');
}

/** Why a rest-hook endpoint's host is refused before any lookup, or undefined when it may be tried. */
export function refusedHost(hostname: string): string | undefined {
  const host = hostname.replace(/^\[|\]$/g, '').toLowerCase();
  if (isIP(host)) return isPublicAddress(host) ? undefined : `${host} is not a public address`;
  if (host === 'localhost' || host.endsWith('.localhost')) return `${host} is this machine`;
  return undefined;
}

export class NotPublicError extends Error {
  readonly code = 'ENOTPUBLIC';
}

type LookupCallback = (err: NodeJS.ErrnoException | null, address: string | LookupAddress[], family?: number) => void;
type Resolver = (hostname: string, options: LookupOptions & { all: true }, callback: (err: NodeJS.ErrnoException | null, addresses: LookupAddress[]) => void) => void;

/**
 * A `lookup` for sockets that may reach public addresses only (net.connect's `lookup` option):
 * every address the name resolves to must be public, or the connection is not made.
 */
export function publicOnly(resolve: Resolver): (hostname: string, options: LookupOptions, callback: LookupCallback) => void {
  return (hostname, options, callback) => {
    resolve(hostname, { ...options, all: true }, (err, list) => {
      if (err) {
        callback(err, []);
        return;
      }
      if (list.length === 0 || list.some((a) => !isPublicAddress(a.address))) {
        callback(new NotPublicError(`${hostname} resolves to an address that is not public`), []);
        return;
      }
      if (options.all) callback(null, list);
      else callback(null, (list[0] as LookupAddress).address, (list[0] as LookupAddress).family);
    });
  };
}

export const publicOnlyLookup = publicOnly((hostname, options, callback) => dnsLookup(hostname, options, callback));
