package ship

import (
	"context"
	"fmt"
	"os"
	"path/filepath"
	"strings"
	"sync/atomic"
	"testing"
	"time"
)

// TestShip_SecretNeverReadableWhileWritten uploads a large 0600 file over SFTP and watches the release on
// the host while it is written: no byte of it may ever be in a file whose mode lets others read it.
func TestShip_SecretNeverReadableWhileWritten(t *testing.T) {
	if testing.Short() {
		t.Skip("integration test")
	}
	c, layout, _ := connect(t)
	src := t.TempDir()
	big := make([]byte, 7<<20) // below tarMinBytes: SFTP, one file at a time
	for i := range big {
		big[i] = byte(i * 7)
	}
	if err := os.WriteFile(filepath.Join(src, "secret.key"), big, 0o600); err != nil {
		t.Fatal(err)
	}
	m := scan(t, src)
	id := "20260101T000000Z"
	var seen, open atomic.Int64
	var bad atomic.Value
	stop := make(chan struct{})
	watched := make(chan struct{})
	go func() {
		defer close(watched)
		dir := layout.Release(id)
		for {
			select {
			case <-stop:
				return
			default:
			}
			entries, _ := os.ReadDir(dir)
			for _, e := range entries {
				if !strings.Contains(e.Name(), "secret") {
					continue
				}
				fi, err := e.Info()
				if err != nil {
					continue
				}
				seen.Add(1)
				if e.Name() != "secret.key" {
					open.Add(1)
				}
				// The SFTP server creates the file with its own default mode, which release.CreateFinal changes before a
				// byte is written: an empty file is all that may ever be seen with another mode.
				if fi.Mode().Perm()&0o077 != 0 && fi.Size() > 0 {
					bad.Store(fmt.Sprintf("%s had mode %v", e.Name(), fi.Mode().Perm()))
				}
			}
		}
	}()
	ctx, cancel := context.WithTimeout(context.Background(), time.Minute)
	defer cancel()
	_, err := Ship(ctx, c, src, m, layout, id, "", nil, ShipOptions{SFTPOnly: true})
	close(stop)
	<-watched
	if err != nil {
		t.Fatalf("Ship: %v", err)
	}
	t.Logf("looked at the secret %d times, %d of them under its temporary name", seen.Load(), open.Load())
	if msg, _ := bad.Load().(string); msg != "" {
		t.Fatalf("a 0600 file was readable by others while it was uploaded: %s", msg)
	}
	if open.Load() == 0 {
		t.Skip("the upload was too fast to be watched while it ran")
	}
}
