package deploy

import (
	"maps"
	"strings"
	"testing"

	"github.com/skiffdeploy/skiff/inventory"
)

func TestRenderEnv(t *testing.T) {
	env := &inventory.EnvFile{File: ".env", Values: map[string]string{"B": "two words", "A": "x=y"}, SecretEnv: []string{"DB"}}
	tests := []struct {
		name    string
		secrets map[string]string
		want    string
		err     string
	}{
		{"sorted literal lines", map[string]string{"DB": "pw"}, "A=x=y\nB=two words\nDB=pw\n", ""},
		{"missing secret", nil, "", "secret_env DB is not set"},
		{"secret with a newline", map[string]string{"DB": "a\nB=evil"}, "", "the value of DB contains a newline"},
	}
	for _, tc := range tests {
		t.Run(tc.name, func(t *testing.T) {
			got, err := RenderEnv(env, func(k string) string { return tc.secrets[k] })
			if tc.err != "" {
				if err == nil || !strings.Contains(err.Error(), tc.err) || strings.Contains(err.Error(), "evil") {
					t.Fatalf("err = %v, want %q without the value", err, tc.err)
				}
				return
			}
			if err != nil || string(got) != tc.want {
				t.Fatalf("RenderEnv = %q, %v; want %q", got, err, tc.want)
			}
		})
	}
}

func TestParseEnv(t *testing.T) {
	tests := []struct {
		name string
		in   string
		want map[string]string
		err  string
	}{
		{"lines", "A=1\n\n# comment\nB==2\nC=\n", map[string]string{"A": "1", "B": "=2", "C": ""}, ""},
		{"no equals", "A=1\nBROKEN\n", nil, "line 2 is not KEY=value"},
		{"space in key", "A B=1\n", nil, "line 1 is not KEY=value"},
		{"empty key", "=1\n", nil, "line 1 is not KEY=value"},
	}
	for _, tc := range tests {
		t.Run(tc.name, func(t *testing.T) {
			got, err := ParseEnv([]byte(tc.in))
			if tc.err != "" {
				if err == nil || err.Error() != tc.err {
					t.Fatalf("err = %v, want %q", err, tc.err)
				}
				return
			}
			if err != nil || !maps.Equal(got, tc.want) {
				t.Fatalf("ParseEnv = %v, %v; want %v", got, err, tc.want)
			}
		})
	}
}

// FuzzParseEnv: whatever a target's env file holds, parsing neither panics nor yields a key that could not
// be written back as one line.
func FuzzParseEnv(f *testing.F) {
	f.Add([]byte("A=1\nB=2\n"))
	f.Add([]byte("# c\n\nX==\x00\r\n"))
	f.Fuzz(func(t *testing.T, data []byte) {
		values, err := ParseEnv(data)
		if err != nil {
			return
		}
		for k, v := range values {
			if k == "" || strings.ContainsAny(k, "= \t\n") || strings.Contains(v, "\n") {
				t.Fatalf("parsed %q=%q from %q", k, v, data)
			}
		}
	})
}

func TestTailLines_BoundsAndCleans(t *testing.T) {
	var b strings.Builder
	for i := 0; i < 30; i++ {
		b.WriteString("line\n")
	}
	b.WriteString("\x1b[2Jclear\r" + strings.Repeat("x", 2000) + "\n")
	got := TailLines(b.String(), 20)
	if len(got) != 20 {
		t.Fatalf("%d lines, want 20", len(got))
	}
	last := got[19]
	if strings.ContainsAny(last, "\x1b\r") || len(last) > logTailLineMax+len("…") || !strings.HasPrefix(last, "?[2Jclear?") {
		t.Errorf("last line %q not cleaned and bounded", last[:40])
	}
	if TailLines("\n\n", 20) != nil {
		t.Error("an empty log gave lines")
	}
}
