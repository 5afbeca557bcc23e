/**
 * What the kernel says about a Unix socket, by inode, through NETLINK_SOCK_DIAG
 * (include/uapi/linux/unix_diag.h): its type, state, bound name, peer and queue lengths.
 * /proc shows none of that; CRIU asks the same way. Also recvmsg(MSG_PEEK), to copy what
 * is queued without taking it.
 */
import { libc, koffi, check, lastErrno } from './libc.js';
import { errnoError } from './errno.js';
import { closeFd } from './fd.js';

const socketRaw = libc.func('int socket(int domain, int type, int protocol)');
const sendRaw = libc.func('long send(int fd, const void *buf, size_t len, int flags)');
const recvRaw = libc.func('long recv(int fd, _Out_ void *buf, size_t len, int flags)');
koffi.struct('stasis_iovec', { base: 'void *', len: 'size_t' });
koffi.struct('stasis_msghdr', { name: 'void *', namelen: 'uint32_t', iov: 'stasis_iovec *', iovlen: 'size_t', control: 'void *', controllen: 'size_t', flags: 'int' });
const recvmsgRaw = libc.func('long recvmsg(int fd, _Inout_ stasis_msghdr *msg, int flags)');

const AF_NETLINK = 16;
const AF_UNIX = 1;
const SOCK_RAW = 3;
const SOCK_CLOEXEC = 0o2000000;
const NETLINK_SOCK_DIAG = 4;
const SOCK_DIAG_BY_FAMILY = 20;
const NLM_F_REQUEST = 1;
const NLMSG_ERROR = 2;
const NLMSG_DONE = 3;
const NLMSG_HDRLEN = 16;
const UDIAG = { SHOW_NAME: 0x01, SHOW_PEER: 0x04, SHOW_RQLEN: 0x10 } as const;
const UNIX_DIAG = { NAME: 0, PEER: 2, RQLEN: 4, SHUTDOWN: 6 } as const;
export const MSG = { PEEK: 0x2, CTRUNC: 0x8, DONTWAIT: 0x40 } as const;

export const SOCK_TYPE = { STREAM: 1, DGRAM: 2, SEQPACKET: 5 } as const;

export interface UnixSocketInfo {
  /** SOCK_STREAM, SOCK_DGRAM or SOCK_SEQPACKET. */
  type: number;
  /** TCP_* state numbers: 1 established, 7 close (unconnected), 10 listen. */
  state: number;
  /** The bound address (a path, or '@name' for the abstract namespace), null if none. */
  name: string | null;
  /** Inode of the connected peer, 0 if none. */
  peer: bigint;
  /** Bytes waiting to be read, and (stream) bytes sent not yet read by the peer. */
  rqueue: number;
  wqueue: number;
  /** SHUT_RD (1) / SHUT_WR (2) bits as shutdown(2) left them. */
  shutdown: number;
}

/** The Unix socket with inode `inode`, or null when it is not a Unix socket (or gone). */
export function unixSocketInfo(inode: bigint): UnixSocketInfo | null {
  const fd = check(socketRaw(AF_NETLINK, SOCK_RAW | SOCK_CLOEXEC, NETLINK_SOCK_DIAG), 'socket(AF_NETLINK, NETLINK_SOCK_DIAG)');
  try {
    const request = Buffer.alloc(NLMSG_HDRLEN + 24);
    request.writeUInt32LE(request.length, 0);
    request.writeUInt16LE(SOCK_DIAG_BY_FAMILY, 4);
    request.writeUInt16LE(NLM_F_REQUEST, 6);
    request.writeUInt32LE(1, 8); // sequence number
    // struct unix_diag_req: family, protocol, pad, states, ino, show, cookie[2]
    request.writeUInt8(AF_UNIX, 16);
    request.writeUInt32LE(0xffffffff, 20);
    request.writeUInt32LE(Number(inode), 24);
    request.writeUInt32LE(UDIAG.SHOW_NAME | UDIAG.SHOW_PEER | UDIAG.SHOW_RQLEN, 28);
    request.writeUInt32LE(0xffffffff, 32); // no cookie to check
    request.writeUInt32LE(0xffffffff, 36);
    if (Number(sendRaw(fd, request, request.length, 0)) !== request.length) throw errnoError(lastErrno(), 'send(sock_diag request)');
    const reply = Buffer.alloc(8192);
    const got = Number(recvRaw(fd, reply, reply.length, 0));
    if (got < 0) throw errnoError(lastErrno(), 'recv(sock_diag reply)');
    return parseReply(reply.subarray(0, got), inode);
  } finally {
    closeFd(fd);
  }
}

function parseReply(reply: Buffer, inode: bigint): UnixSocketInfo | null {
  if (reply.length < NLMSG_HDRLEN) return null;
  const type = reply.readUInt16LE(4);
  // NLMSG_ERROR: ENOENT for an inode that is no Unix socket
  if (type === NLMSG_ERROR || type === NLMSG_DONE || type !== SOCK_DIAG_BY_FAMILY) return null;
  const length = Math.min(reply.readUInt32LE(0), reply.length);
  // struct unix_diag_msg: family, type, state, pad, ino, cookie[2]
  const msg = NLMSG_HDRLEN;
  if (BigInt(reply.readUInt32LE(msg + 4)) !== inode) return null;
  const info: UnixSocketInfo = { type: reply.readUInt8(msg + 1), state: reply.readUInt8(msg + 2), name: null, peer: 0n, rqueue: 0, wqueue: 0, shutdown: 0 };
  for (let at = msg + 16; at + 4 <= length; ) {
    const attrLength = reply.readUInt16LE(at);
    const attrType = reply.readUInt16LE(at + 2);
    if (attrLength < 4) break;
    const data = reply.subarray(at + 4, at + attrLength);
    if (attrType === UNIX_DIAG.NAME) info.name = data[0] === 0 ? `@${data.subarray(1).toString('latin1')}` : data.toString('latin1').replace(/\0.*$/s, '');
    else if (attrType === UNIX_DIAG.PEER) info.peer = BigInt(data.readUInt32LE(0));
    else if (attrType === UNIX_DIAG.RQLEN) {
      info.rqueue = data.readUInt32LE(0);
      info.wqueue = data.readUInt32LE(4);
    } else if (attrType === UNIX_DIAG.SHUTDOWN) info.shutdown = data.readUInt8(0);
    at += (attrLength + 3) & ~3;
  }
  return info;
}

/**
 * recvmsg(2) with MSG_PEEK|MSG_DONTWAIT and no room for control messages: up to `length`
 * queued bytes, left in the queue, and whether file descriptors or credentials travel
 * with them (the kernel then sets MSG_CTRUNC, and installs no fd for lack of room).
 */
export function peekQueued(fd: number, length: number): { data: Buffer; ancillary: boolean } {
  const data = Buffer.alloc(length);
  const msg = { name: null, namelen: 0, iov: [{ base: data, len: length }], iovlen: 1, control: null, controllen: 0, flags: 0 };
  const got = Number(recvmsgRaw(fd, msg, MSG.PEEK | MSG.DONTWAIT));
  if (got < 0) throw errnoError(lastErrno(), 'recvmsg(MSG_PEEK)');
  return { data: data.subarray(0, got), ancillary: (msg.flags & MSG.CTRUNC) !== 0 };
}
