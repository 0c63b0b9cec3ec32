package ship

import (
	"bytes"
	"os"
	"path/filepath"
	"testing"
)

// FuzzDecodeManifest holds that no stored manifest a target returns makes DecodeManifest panic, and that one
// it accepts encodes back to a manifest it reads the same.
func FuzzDecodeManifest(f *testing.F) {
	files, _ := filepath.Glob(filepath.Join("testdata", "manifest", "*"))
	for _, name := range files {
		if data, err := os.ReadFile(name); err == nil {
			f.Add(data)
		}
	}
	f.Add([]byte(`{"path":"a","type":"file","mode":420,"size":1,"sha256":"` + string(bytes.Repeat([]byte("0f"), 32)) + `"}` + "\n"))
	f.Fuzz(func(t *testing.T, data []byte) {
		m, err := DecodeManifest(bytes.NewReader(data))
		if err != nil {
			return
		}
		var buf bytes.Buffer
		if err := m.Encode(&buf); err != nil {
			t.Fatalf("encode an accepted manifest: %v", err)
		}
		again, err := DecodeManifest(&buf)
		if err != nil || len(again.Entries) != len(m.Entries) {
			t.Fatalf("an accepted manifest does not read back: %v", err)
		}
		for i := range m.Entries {
			if again.Entries[i] != m.Entries[i] {
				t.Fatalf("entry %d reads back as %+v, was %+v", i, again.Entries[i], m.Entries[i])
			}
		}
	})
}
