package ship

import (
	"bytes"
	"io"
	"testing"
)

func TestTarPipeSize_ScalesWithTheStream(t *testing.T) {
	files := func(n int, size int64) []Entry {
		es := make([]Entry, n)
		for i := range es {
			es[i] = Entry{Type: TypeFile, Size: size}
		}
		return es
	}
	for _, tc := range []struct {
		name  string
		files []Entry
		want  int
	}{
		{name: "nothing", files: nil, want: sftpPacket},
		{name: "200 small files", files: files(200, 2500), want: sftpPacket},
		{name: "4 MiB", files: files(4, 1<<20), want: 132 << 10}, // (4 MiB + 4 headers) / 32, rounded up to 4 KiB
		{name: "8 MiB", files: files(8, 1<<20), want: tarPipeChunkSize},
		{name: "one 1 GiB file", files: files(1, 1<<30), want: tarPipeChunkSize},
	} {
		t.Run(tc.name, func(t *testing.T) {
			if got := tarPipeSize(tc.files); got != tc.want {
				t.Fatalf("tarPipeSize = %d, want %d", got, tc.want)
			}
		})
	}
}

// readSizes is a reader over data that records how much each Read asked for.
type readSizes struct {
	r     io.Reader
	asked []int
}

func (r *readSizes) Read(p []byte) (int, error) {
	r.asked = append(r.asked, len(p))
	return r.r.Read(p)
}

func TestGrowingReader_StartsSmallAndGrowsWhileReadsComeBackFull(t *testing.T) {
	for _, tc := range []struct {
		name      string
		size, max int
		wantAsked []int
	}{
		{name: "small file", size: 5000, max: 1 << 20, wantAsked: []int{32 << 10, 32 << 10}},
		{name: "exactly one packet", size: 32 << 10, max: 1 << 20, wantAsked: []int{32 << 10, 128 << 10}},
		{name: "large file", size: 500 << 10, max: 256 << 10,
			wantAsked: []int{32 << 10, 128 << 10, 256 << 10, 256 << 10, 256 << 10}}, // the last one finds the end
	} {
		t.Run(tc.name, func(t *testing.T) {
			data := bytes.Repeat([]byte("0123456789abcdef"), tc.size/16+1)[:tc.size]
			src := &readSizes{r: bytes.NewReader(data)}
			got, err := io.ReadAll(newGrowingReader(src, tc.max))
			if err != nil || !bytes.Equal(got, data) {
				t.Fatalf("read %d bytes, %v; want the %d written", len(got), err, len(data))
			}
			if len(src.asked) != len(tc.wantAsked) {
				t.Fatalf("reads asked for %v, want %v", src.asked, tc.wantAsked)
			}
			for i := range src.asked {
				if src.asked[i] != tc.wantAsked[i] {
					t.Fatalf("reads asked for %v, want %v", src.asked, tc.wantAsked)
				}
			}
		})
	}
}
