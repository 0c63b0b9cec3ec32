package ship

import (
	"bytes"
	"fmt"
	"strings"
	"testing"
)

// encodedLines is Encode's output for entries of every kind, plain and awkward names alike.
func encodedLines(tb testing.TB) []string {
	tb.Helper()
	sum := strings.Repeat("ab", 32)
	m, err := NewManifest([]Entry{
		{Path: "d q'$(x)", Type: TypeDir, Mode: 0o755},
		{Path: "d q'$(x)/f.txt", Type: TypeFile, Mode: 0o644, Size: 12345, SHA256: sum},
		{Path: "d q'$(x)/empty", Type: TypeFile, Mode: 0o600, Size: 0, SHA256: sum},
		{Path: "d q'$(x)/link", Type: TypeSymlink, Mode: 0o777, Link: "f.txt"},
		{Path: "bad\xffname", Type: TypeFile, Mode: 0o644, Size: 1, SHA256: sum},
		{Path: "quote\"d", Type: TypeFile, Mode: 0o644, Size: 2, SHA256: sum},
		{Path: "tab\there", Type: TypeSymlink, Mode: 0o777, Link: "bad\xffname"},
		{Path: "ünïcode\u2028", Type: TypeFile, Mode: 0o755, Size: 1 << 40, SHA256: sum},
	})
	if err != nil {
		tb.Fatal(err)
	}
	var b bytes.Buffer
	if err := m.Encode(&b); err != nil {
		tb.Fatal(err)
	}
	return strings.Split(strings.TrimSuffix(b.String(), "\n"), "\n")
}

func TestDecodeEntry_FastPathAgreesWithJSON(t *testing.T) {
	fast := 0
	for _, line := range encodedLines(t) {
		want, err := decodeEntryJSON([]byte(line))
		if err != nil {
			t.Fatalf("%s: %v", line, err)
		}
		got, err := decodeEntry([]byte(line))
		if err != nil || got != want {
			t.Errorf("%s: decodeEntry = %+v, %v; want %+v", line, got, err, want)
		}
		if _, ok := decodeEntryFast([]byte(line)); ok {
			fast++
		}
	}
	if fast < 4 {
		t.Errorf("the fast path took %d lines, want at least the 4 with plain names", fast)
	}
}

func TestDecodeEntryFast_LeavesTheRestToJSON(t *testing.T) {
	cases := []struct{ name, line string }{
		{name: "escape", line: `{"path":"a\u0062","type":"file","mode":"0644","size":1,"sha256":"x"}`},
		{name: "keys reordered", line: `{"type":"file","path":"a","mode":"0644","size":1,"sha256":"x"}`},
		{name: "unknown key", line: `{"path":"a","type":"file","mode":"0644","size":1,"sha256":"x","evil":1}`},
		{name: "leading zero", line: `{"path":"a","type":"file","mode":"0644","size":01,"sha256":"x"}`},
		{name: "negative size", line: `{"path":"a","type":"file","mode":"0644","size":-1,"sha256":"x"}`},
		{name: "fraction", line: `{"path":"a","type":"file","mode":"0644","size":1.5,"sha256":"x"}`},
		{name: "huge size", line: `{"path":"a","type":"file","mode":"0644","size":99999999999999999999,"sha256":"x"}`},
		{name: "trailing data", line: `{"path":"a","type":"dir","mode":"0755","size":0}{}`},
		{name: "trailing space", line: `{"path":"a","type":"dir","mode":"0755","size":0} `},
		{name: "base64 name", line: `{"path64":"YQ==","type":"dir","mode":"0755","size":0}`},
		{name: "bad mode", line: `{"path":"a","type":"dir","mode":"755","size":0}`},
		{name: "empty path", line: `{"path":"","type":"dir","mode":"0755","size":0}`},
		{name: "invalid UTF-8", line: "{\"path\":\"a\xff\",\"type\":\"dir\",\"mode\":\"0755\",\"size\":0}"},
		{name: "control character", line: "{\"path\":\"a\tb\",\"type\":\"dir\",\"mode\":\"0755\",\"size\":0}"},
	}
	for _, tc := range cases {
		t.Run(tc.name, func(t *testing.T) {
			if e, ok := decodeEntryFast([]byte(tc.line)); ok {
				t.Errorf("fast path took %s as %+v", tc.line, e)
			}
		})
	}
}

// FuzzDecodeEntry holds that the fast path never reads a line differently from encoding/json.
func FuzzDecodeEntry(f *testing.F) {
	for _, line := range encodedLines(f) {
		f.Add([]byte(line))
	}
	f.Fuzz(func(t *testing.T, line []byte) {
		got, ok := decodeEntryFast(line)
		if !ok {
			return
		}
		want, err := decodeEntryJSON(line)
		if err != nil || got != want {
			t.Fatalf("%q: fast path = %+v, encoding/json = %+v, %v", line, got, want, err)
		}
	})
}

// BenchmarkDecodeEntry reads the lines of a 10,000-file manifest with the fast path and, side by side, with
// encoding/json alone.
func BenchmarkDecodeEntry(b *testing.B) {
	var entries []Entry
	for d := 0; d < 100; d++ {
		dir := fmt.Sprintf("src/d%03d", d)
		entries = append(entries, Entry{Path: dir, Type: TypeDir, Mode: 0o755})
		for f := 0; f < 100; f++ {
			entries = append(entries, Entry{Path: fmt.Sprintf("%s/f%05d.txt", dir, d*100+f), Type: TypeFile,
				Mode: 0o644, Size: 4096, SHA256: strings.Repeat("0f", 32)})
		}
	}
	entries = append(entries, Entry{Path: "src", Type: TypeDir, Mode: 0o755})
	m, err := NewManifest(entries)
	if err != nil {
		b.Fatal(err)
	}
	var buf bytes.Buffer
	if err := m.Encode(&buf); err != nil {
		b.Fatal(err)
	}
	lines := bytes.Split(bytes.TrimSuffix(buf.Bytes(), []byte("\n")), []byte("\n"))
	for _, bc := range []struct {
		name   string
		decode func([]byte) (Entry, error)
	}{{"fast", decodeEntry}, {"json", decodeEntryJSON}} {
		b.Run(bc.name, func(b *testing.B) {
			b.SetBytes(int64(buf.Len()))
			for i := 0; i < b.N; i++ {
				for _, l := range lines {
					if _, err := bc.decode(l); err != nil {
						b.Fatal(err)
					}
				}
			}
		})
	}
}
