package ship

import (
	"archive/tar"
	"bytes"
	"errors"
	"os"
	"os/exec"
	"path/filepath"
	"strings"
	"testing"
)

// TestPreparedExtract_RunsScriptThenTar runs preparedExtract with the local shell, with GNU tar and with a tar
// that is not, and with a prepare script that fails.
func TestPreparedExtract_RunsScriptThenTar(t *testing.T) {
	if got := tarProbeHere(t); !IsGNUTar(got) {
		t.Fatalf("the tar probe printed %q on this machine, whose tar is GNU tar", got)
	}
	var stream bytes.Buffer
	tw := tar.NewWriter(&stream)
	if err := tw.WriteHeader(&tar.Header{Name: "sub/file", Mode: 0o644, Size: 2, Typeflag: tar.TypeReg}); err != nil {
		t.Fatal(err)
	}
	tw.Write([]byte("hi"))
	tw.Close()
	fakeTar := t.TempDir()
	if err := os.WriteFile(filepath.Join(fakeTar, "tar"), []byte("#!/bin/sh\necho 'tar (busybox) 1.36'\n"), 0o755); err != nil {
		t.Fatal(err)
	}
	tests := []struct {
		name     string
		wrapper  string // preparedExtract unless set
		path     string // prepended to PATH
		script   string // the prepare script; %s is the release directory
		status   int
		prepared bool
		file     bool
	}{
		{name: "GNU tar", script: "set -e\nmkdir -p %s/sub\ncd %s", prepared: true, file: true},
		{name: "another tar", path: fakeTar, script: "set -e\nmkdir -p %s/sub\ncd %s", status: noGNUTar},
		{name: "prepare fails", script: "set -e\nfalse\nmkdir -p %s/sub\ncd %s", status: 1},
		{name: "GNU tar known", wrapper: preparedExtractKnown, script: "set -e\nmkdir -p %s/sub\ncd %s", prepared: true, file: true},
	}
	for _, tc := range tests {
		t.Run(tc.name, func(t *testing.T) {
			rel := filepath.Join(t.TempDir(), "rel")
			script := strings.ReplaceAll(tc.script, "%s", rel)
			wrapper := preparedExtract
			if tc.wrapper != "" {
				wrapper = tc.wrapper
			}
			cmd := exec.Command("sh", append([]string{"-c", wrapper, "skiff", script}, tarExtract...)...)
			cmd.Stdin = bytes.NewReader(stream.Bytes())
			cmd.Env = append(os.Environ(), "PATH="+tc.path+":"+os.Getenv("PATH"))
			out, err := cmd.Output()
			status := 0
			var ee *exec.ExitError
			if errors.As(err, &ee) {
				status = ee.ExitCode()
			} else if err != nil {
				t.Fatal(err)
			}
			if status != tc.status || strings.Contains(string(out), preparedMarker) != tc.prepared {
				t.Errorf("status %d, output %q; want status %d, prepared %v", status, out, tc.status, tc.prepared)
			}
			if _, err := os.Stat(filepath.Join(rel, "sub/file")); (err == nil) != tc.file {
				t.Errorf("extracted file: %v, want it there: %v", err, tc.file)
			}
		})
	}
}

// tarProbeHere runs TarProbeCommand with the local shell.
func tarProbeHere(t *testing.T) []byte {
	t.Helper()
	cmd := TarProbeCommand()
	out, err := exec.Command(cmd.Argv[0], cmd.Argv[1:]...).Output()
	if err != nil {
		t.Fatal(err)
	}
	return out
}
