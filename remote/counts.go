package remote

import (
	"encoding/binary"
	"io"
	"net"
	"sync/atomic"
)

// Counts are what a connection has asked of its target since it was dialed: each command is one session,
// one remote shell and at least one round trip; each SFTP start is one session and one sftp-server process;
// each SFTP request is one packet to that server, answered by one (requests run concurrently, so they are at
// most as many round trips); each tunnel is one channel opened to an address on the target (supervisord's
// socket, a port check). Bytes are what crossed the connection's TCP stream, handshake and encryption included.
type Counts struct {
	Commands      int64 `json:"commands"`
	SFTPStarts    int64 `json:"sftp_starts"`
	SFTPRequests  int64 `json:"sftp_requests"`
	Tunnels       int64 `json:"tunnels"`
	BytesSent     int64 `json:"bytes_sent"`
	BytesReceived int64 `json:"bytes_received"`
}

// counters are a connection's Counts as they grow; the byte counters are shared with the countingConn the
// connection runs over.
type counters struct {
	commands, sftpStarts, sftpRequests, tunnels atomic.Int64
	sent, received                              atomic.Int64
}

// Counts returns the connection's counts so far, for benchmarks and reports of what a run cost the target.
func (c *Conn) Counts() Counts {
	n := c.counts
	return Counts{Commands: n.commands.Load(), SFTPStarts: n.sftpStarts.Load(), SFTPRequests: n.sftpRequests.Load(),
		Tunnels: n.tunnels.Load(), BytesSent: n.sent.Load(), BytesReceived: n.received.Load()}
}

// countingConn counts the bytes read from and written to a connection.
type countingConn struct {
	net.Conn
	n *counters
}

func (c countingConn) Read(b []byte) (int, error) {
	k, err := c.Conn.Read(b)
	c.n.received.Add(int64(k))
	return k, err
}

func (c countingConn) Write(b []byte) (int, error) {
	k, err := c.Conn.Write(b)
	c.n.sent.Add(int64(k))
	return k, err
}

// packetCounter counts the SFTP packets written through it: each starts with its length as 4 bytes, big-endian.
// The SFTP client writes one packet at a time (under its own lock), though not always in one Write.
type packetCounter struct {
	io.WriteCloser
	n     *atomic.Int64
	head  [4]byte // the length field being read
	nhead int
	left  uint32 // bytes of the current packet still to come
}

func (p *packetCounter) Write(b []byte) (int, error) {
	k, err := p.WriteCloser.Write(b)
	for rest := b[:k]; len(rest) > 0; {
		if p.left > 0 {
			skip := uint32(min(len(rest), int(min(p.left, 1<<30))))
			p.left -= skip
			rest = rest[skip:]
			continue
		}
		p.head[p.nhead] = rest[0]
		p.nhead++
		rest = rest[1:]
		if p.nhead == len(p.head) {
			p.left, p.nhead = binary.BigEndian.Uint32(p.head[:]), 0
			p.n.Add(1)
		}
	}
	return k, err
}
