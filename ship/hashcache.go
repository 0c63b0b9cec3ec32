package ship

import (
	"crypto/sha256"
	"encoding/hex"
	"encoding/json"
	"io/fs"
	"os"
	"path/filepath"
	"sync"
	"syscall"
	"time"
)

// HashCache remembers the sha256 of local files by what stat says of them (size, modification time, inode
// and mode), the quick check rsync and git's index use, so that a redeploy of a large tree reads only the
// files that changed. It lives on the operator's or CI's machine, never on a target. A file modified within
// racyWindow of the scan is not remembered, because another write in the same timestamp tick would go
// unnoticed. A missing or unreadable cache is an empty one: it only ever saves work.
type HashCache struct {
	file    string
	started time.Time
	mu      sync.Mutex
	old     map[string]cachedHash
	fresh   map[string]cachedHash
	saved   bool // fresh has been written and nothing was stored since
}

// cachedHash is what the cache knows of one file.
type cachedHash struct {
	Size    int64  `json:"size"`
	MtimeNS int64  `json:"mtime_ns"`
	Ino     uint64 `json:"ino"`
	Mode    uint32 `json:"mode"`
	SHA256  string `json:"sha256"`
}

const racyWindow = 2 * time.Second

// OpenHashCache opens the cache of the tree at root, kept under dir (one file per tree). dir "" disables it.
func OpenHashCache(dir, root string) *HashCache {
	if dir == "" {
		return nil
	}
	abs, err := filepath.Abs(root)
	if err != nil {
		return nil
	}
	key := sha256.Sum256([]byte(abs))
	c := &HashCache{
		file:    filepath.Join(dir, hex.EncodeToString(key[:12])+".json"),
		started: time.Now(),
		old:     map[string]cachedHash{},
		fresh:   map[string]cachedHash{},
	}
	if data, err := os.ReadFile(c.file); err == nil {
		_ = json.Unmarshal(data, &c.old)
	}
	return c
}

func statKey(info fs.FileInfo) cachedHash {
	k := cachedHash{Size: info.Size(), MtimeNS: info.ModTime().UnixNano(), Mode: uint32(info.Mode())}
	if st, ok := info.Sys().(*syscall.Stat_t); ok {
		k.Ino = uint64(st.Ino)
	}
	return k
}

// lookup returns the remembered hash of rel when the file still looks the same.
func (c *HashCache) lookup(rel string, info fs.FileInfo) (string, bool) {
	if c == nil {
		return "", false
	}
	k := statKey(info)
	c.mu.Lock()
	defer c.mu.Unlock()
	h, ok := c.old[rel]
	if !ok || h.SHA256 == "" || h.Size != k.Size || h.MtimeNS != k.MtimeNS || h.Ino != k.Ino || h.Mode != k.Mode {
		return "", false
	}
	c.fresh[rel], c.saved = h, false
	return h.SHA256, true
}

// store remembers the hash of rel unless the file was modified too recently to be trusted.
func (c *HashCache) store(rel string, info fs.FileInfo, sum string) {
	if c == nil || info.ModTime().After(c.started.Add(-racyWindow)) {
		return
	}
	k := statKey(info)
	k.SHA256 = sum
	c.mu.Lock()
	c.fresh[rel], c.saved = k, false
	c.mu.Unlock()
}

// Save writes what this scan saw (and only that, so deleted files drop out) through a temporary file. It
// does nothing when nothing was stored since the last Save, so a deploy can save as soon as its scan is done
// and again after its transfer, which may hash files too.
func (c *HashCache) Save() error {
	if c == nil {
		return nil
	}
	c.mu.Lock()
	if c.saved {
		c.mu.Unlock()
		return nil
	}
	data, err := json.Marshal(c.fresh)
	c.saved = err == nil
	c.mu.Unlock()
	if err == nil {
		err = c.write(data)
	}
	if err != nil {
		c.mu.Lock()
		c.saved = false
		c.mu.Unlock()
	}
	return err
}

func (c *HashCache) write(data []byte) error {
	if err := os.MkdirAll(filepath.Dir(c.file), 0o700); err != nil {
		return err
	}
	tmp := c.file + ".tmp"
	if err := os.WriteFile(tmp, data, 0o600); err != nil {
		return err
	}
	return os.Rename(tmp, c.file)
}
