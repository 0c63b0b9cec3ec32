package testenv

import (
	"errors"
	"fmt"
	"io/fs"
	"math/rand"
	"os"
	"path/filepath"
	"testing"
)

// WriteBenchTree fills dir with the benchmarks' source tree: small files of 4 KiB and large ones of 100–400 KB,
// 100 per directory, from a fixed seed so that every run ships the same bytes. It returns the bytes written.
func WriteBenchTree(tb testing.TB, dir string, small, large int) int64 {
	tb.Helper()
	rng := rand.New(rand.NewSource(1))
	var total int64
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
		total += int64(size)
	}
	for i := 0; i < small; i++ {
		write(fmt.Sprintf("src/d%03d/f%05d.txt", i/100, i), 4<<10)
	}
	for i := 0; i < large; i++ {
		write(fmt.Sprintf("assets/a%02d/blob%04d.bin", i/50, i), 100_000+rng.Intn(300_000))
	}
	return total
}

// WriteBigFile writes size bytes of incompressible data to p (creating its directory) without holding them
// in memory.
func WriteBigFile(tb testing.TB, p string, size int64) {
	tb.Helper()
	if err := os.MkdirAll(filepath.Dir(p), 0o755); err != nil {
		tb.Fatal(err)
	}
	f, err := os.Create(p)
	if err != nil {
		tb.Fatal(err)
	}
	defer f.Close()
	rng := rand.New(rand.NewSource(2))
	buf := make([]byte, 1<<20)
	for size > 0 {
		n := min(int64(len(buf)), size)
		rng.Read(buf[:n])
		if _, err := f.Write(buf[:n]); err != nil {
			tb.Fatal(err)
		}
		size -= n
	}
}

// MkdirOwned creates dir and its missing parents owned by the login user (when running as root), so that the
// user's sshd sessions and supervisord can write there.
func (e *Env) MkdirOwned(tb testing.TB, dir string) {
	tb.Helper()
	var missing []string
	for d := dir; ; d = filepath.Dir(d) {
		if _, err := os.Stat(d); err == nil {
			break
		}
		missing = append(missing, d)
	}
	for i := len(missing) - 1; i >= 0; i-- {
		if err := os.Mkdir(missing[i], 0o755); err != nil && !errors.Is(err, fs.ErrExist) {
			tb.Fatal(err)
		}
		if os.Geteuid() == 0 {
			if err := os.Chown(missing[i], e.UID, e.GID); err != nil {
				tb.Fatal(err)
			}
		}
	}
}

// Node is one entry of a test tree: a file (Content), a directory (Dir) or a symlink (Link), with Mode
// (0644 for files and 0755 for directories when zero).
type Node struct {
	Content string
	Dir     bool
	Link    string
	Mode    fs.FileMode
}

// WriteTree creates the entries under root; parents of files are created as needed with mode 0755.
func WriteTree(tb testing.TB, root string, tree map[string]Node) {
	tb.Helper()
	for name, n := range tree {
		p := filepath.Join(root, filepath.FromSlash(name))
		if err := os.MkdirAll(filepath.Dir(p), 0o755); err != nil {
			tb.Fatal(err)
		}
		mode := n.Mode
		var err error
		switch {
		case n.Dir:
			if mode == 0 {
				mode = 0o755
			}
			if err = os.MkdirAll(p, 0o755); err == nil {
				err = os.Chmod(p, mode)
			}
		case n.Link != "":
			err = os.Symlink(n.Link, p)
		default:
			if mode == 0 {
				mode = 0o644
			}
			if err = os.WriteFile(p, []byte(n.Content), mode); err == nil {
				err = os.Chmod(p, mode)
			}
		}
		if err != nil {
			tb.Fatal(err)
		}
	}
}
