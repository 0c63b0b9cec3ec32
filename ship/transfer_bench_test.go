package ship

import (
	"context"
	"fmt"
	"os"
	"path/filepath"
	"testing"
	"time"

	"github.com/skiffdeploy/skiff/internal/testenv"
	"github.com/skiffdeploy/skiff/release"
)

// benchTree describes a generated source tree: small files of 4 KiB and large ones of 100-400 KB.
type benchTree struct {
	small, large int
}

// benchSize is the tree BenchmarkShip works on: small by default so that `go test -bench` stays quick, the
// acceptance benchmark's 10,000 + 300 files with SKIFF_BENCH_FULL=1.
func benchSize() (benchTree, int64) {
	if os.Getenv("SKIFF_BENCH_FULL") == "1" {
		return benchTree{small: 10000, large: 300}, 1 << 30
	}
	return benchTree{small: 500, large: 20}, 32 << 20
}

// BenchmarkShip measures whole deploys (Scan, then Ship) to a real sshd on loopback: a first deploy of a
// generated tree, a deploy of the same tree with one file changed, and one big file.
func BenchmarkShip(b *testing.B) {
	tree, big := benchSize()
	ctx := context.Background()
	src := b.TempDir()
	testenv.WriteBenchTree(b, src, tree.small, tree.large)
	bigSrc := b.TempDir()
	testenv.WriteBigFile(b, filepath.Join(bigSrc, "big.bin"), big)

	first := func(name, root string, opts ShipOptions) {
		b.Run(name, func(b *testing.B) {
			b.ReportAllocs()
			c, layout, _ := connect(b)
			var sent int64
			b.ResetTimer()
			for i := 0; i < b.N; i++ {
				m, err := Scan(ctx, root, nil)
				if err != nil {
					b.Fatal(err)
				}
				st, err := Ship(ctx, c, root, m, layout, benchID(i), "", nil, opts)
				if err != nil {
					b.Fatal(err)
				}
				sent = st.Bytes
			}
			b.SetBytes(sent)
		})
	}
	first("first", src, ShipOptions{})
	first("first-gnu-tar-known", src, ShipOptions{GNUTar: true})
	first("first-sftp", src, ShipOptions{SFTPOnly: true})
	first("big-file", bigSrc, ShipOptions{})

	b.Run("one-change", func(b *testing.B) {
		b.ReportAllocs()
		c, layout, _ := connect(b)
		m, err := Scan(ctx, src, nil)
		if err != nil {
			b.Fatal(err)
		}
		base := benchID(0)
		if _, err := Ship(ctx, c, src, m, layout, base, "", nil, ShipOptions{}); err != nil {
			b.Fatal(err)
		}
		changed := filepath.Join(src, "src", "d000", "f00000.txt")
		b.ResetTimer()
		for i := 1; i <= b.N; i++ {
			if err := os.WriteFile(changed, []byte(fmt.Sprintf("change %d\n", time.Now().UnixNano())), 0o644); err != nil {
				b.Fatal(err)
			}
			nm, err := Scan(ctx, src, nil)
			if err != nil {
				b.Fatal(err)
			}
			st, err := Ship(ctx, c, src, nm, layout, benchID(i), base, m, ShipOptions{})
			if err != nil {
				b.Fatal(err)
			}
			if st.Files != 1 {
				b.Fatalf("sent %d files, want 1", st.Files)
			}
			base, m = benchID(i), nm
		}
	})
}

// benchID gives iteration i of a benchmark its own release id.
func benchID(i int) string {
	return release.NewReleaseID(time.Date(2026, 1, 1, 0, 0, 0, 0, time.UTC).Add(time.Duration(i)*time.Second), "")
}
