package deploy

import (
	"context"
	"fmt"
	"math/rand"
	"os"
	"path/filepath"
	"testing"
	"time"
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

// writeBenchTree fills dir with t's files, 100 per directory, from a fixed seed.
func writeBenchTree(tb testing.TB, dir string, t benchTree) {
	tb.Helper()
	rng := rand.New(rand.NewSource(1))
	write := func(name string, size int) {
		p := filepath.Join(dir, name)
		if err := os.MkdirAll(filepath.Dir(p), 0o755); err != nil {
			tb.Fatal(err)
		}
		b := make([]byte, size)
		rng.Read(b)
		if err := os.WriteFile(p, b, 0o644); err != nil {
			tb.Fatal(err)
		}
	}
	for i := 0; i < t.small; i++ {
		write(fmt.Sprintf("src/d%03d/f%05d.txt", i/100, i), 4<<10)
	}
	for i := 0; i < t.large; i++ {
		write(fmt.Sprintf("assets/a%02d/blob%04d.bin", i/50, i), 100_000+rng.Intn(300_000))
	}
}

// writeBigFile writes size bytes of incompressible data to p without holding them in memory.
func writeBigFile(tb testing.TB, p string, size int64) {
	tb.Helper()
	f, err := os.Create(p)
	if err != nil {
		tb.Fatal(err)
	}
	defer f.Close()
	rng := rand.New(rand.NewSource(2))
	buf := make([]byte, 1<<20)
	for size > 0 {
		n := int64(len(buf))
		if n > size {
			n = size
		}
		rng.Read(buf[:n])
		if _, err := f.Write(buf[:n]); err != nil {
			tb.Fatal(err)
		}
		size -= n
	}
}

// BenchmarkShip measures whole deploys (Scan, then Ship) to a real sshd on loopback: a first deploy of a
// generated tree, a deploy of the same tree with one file changed, and one big file.
func BenchmarkShip(b *testing.B) {
	tree, big := benchSize()
	ctx := context.Background()
	src := b.TempDir()
	writeBenchTree(b, src, tree)
	bigSrc := b.TempDir()
	writeBigFile(b, filepath.Join(bigSrc, "big.bin"), big)

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
	return NewReleaseID(time.Date(2026, 1, 1, 0, 0, 0, 0, time.UTC).Add(time.Duration(i)*time.Second), "")
}
