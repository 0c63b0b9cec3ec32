package remote

import (
	"bytes"
	"encoding/binary"
	"sync/atomic"
	"testing"
)

// nopCloser is a bytes.Buffer that can be closed, as the SFTP client's writer must be.
type nopCloser struct{ bytes.Buffer }

func (*nopCloser) Close() error { return nil }

func TestPacketCounter_CountsPacketsHoweverWritten(t *testing.T) {
	packet := func(n int) []byte {
		b := make([]byte, 4+n)
		binary.BigEndian.PutUint32(b, uint32(n))
		return b
	}
	var stream []byte
	for _, n := range []int{5, 0, 1, 40000, 13, 4} {
		stream = append(stream, packet(n)...)
	}
	for _, tc := range []struct {
		name  string
		split int // bytes per Write; 0 for the whole stream at once
	}{
		{name: "one write", split: 0},
		{name: "byte by byte", split: 1},
		{name: "three bytes", split: 3},
		{name: "packet-sized", split: 32 << 10},
	} {
		t.Run(tc.name, func(t *testing.T) {
			var n atomic.Int64
			w := &packetCounter{WriteCloser: &nopCloser{}, n: &n}
			for rest := stream; len(rest) > 0; {
				k := len(rest)
				if tc.split > 0 {
					k = min(k, tc.split)
				}
				if _, err := w.Write(rest[:k]); err != nil {
					t.Fatal(err)
				}
				rest = rest[k:]
			}
			if got := n.Load(); got != 6 {
				t.Fatalf("counted %d packets, want 6", got)
			}
		})
	}
}
