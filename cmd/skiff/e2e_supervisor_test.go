package main

import (
	"io/fs"
	"os"
	"path/filepath"
	"strings"
	"testing"
)

// TestDeploy_SupervisorTransportsAndAuth deploys through supervisords reached over a unix socket and over TCP,
// with and without a password. The password comes from the variable that supervisor.password_env names and
// must not show up in any output, log or file skiff writes. Not parallel: it sets environment variables.
func TestDeploy_SupervisorTransportsAndAuth(t *testing.T) {
	const (
		envName  = "E2E_SUPERVISOR_PASSWORD"
		password = `Sup3r'S3cr3t $(x) "pw"`
		wrong    = `Wr0ng'Pa55 $(y)`
	)
	for _, tc := range []struct {
		name     string
		kind     supervisorKind
		auth     bool
		envValue string
		wantCode int
		wantErr  string
	}{
		{name: "unix socket with password", kind: supervisorUnix, auth: true, envValue: password},
		{name: "tcp with password", kind: supervisorTCP, auth: true, envValue: password},
		{name: "tcp without auth", kind: supervisorTCP},
		{name: "wrong password", kind: supervisorUnix, auth: true, envValue: wrong, wantCode: exitFailed, wantErr: "401"},
		{name: "password variable unset", kind: supervisorTCP, auth: true, envValue: "", wantCode: exitUsage,
			wantErr: "supervisor.password_env names " + envName + ", which is not set"},
	} {
		t.Run(tc.name, func(t *testing.T) {
			opts := appOptions{supervisor: tc.kind}
			if tc.auth {
				opts.username, opts.password, opts.passwordEnv = "deployer", password, envName
			}
			t.Setenv(envName, tc.envValue)
			a := newE2EApp(t, "sv"+strings.ReplaceAll(tc.name, " ", ""), opts)
			var outputs []string
			record := func(r e2eResult) e2eResult { outputs = append(outputs, r.stdout, r.stderr); return r }

			r := record(a.skiff("-v", "deploy", a.name, "--source", e2eAppTree(t, "a1", nil)))
			if r.code != tc.wantCode || !strings.Contains(r.all(), tc.wantErr) {
				t.Fatalf("deploy: want exit %d with %q, got %s", tc.wantCode, tc.wantErr, r)
			}
			if tc.wantCode == exitUsage && a.current() != "" {
				t.Errorf("a deploy refused for a missing secret changed current to %s", a.current())
			}
			if tc.wantCode == 0 {
				a.wantServing("a1")
				r = record(a.skiff("--json", "deploy", a.name, "--source", e2eAppTree(t, "a2", nil)))
				if r.code != 0 || !strings.Contains(r.stdout, `"restarted"`) {
					t.Fatalf("second deploy: want a restart, got %s", r)
				}
				a.wantServing("a2")
				st := record(a.mustSkiff(0, "--json", "status", a.name))
				if !strings.Contains(st.stdout, `"state": "RUNNING"`) {
					t.Errorf("status does not show the program RUNNING:\n%s", st)
				}
			} else {
				record(a.skiff("--json", "status", a.name))
			}
			record(a.skiff("--json", "releases", a.name))

			for _, out := range outputs {
				for _, secret := range []string{password, wrong} {
					if strings.Contains(out, secret) {
						t.Fatalf("the supervisord password appears in skiff's output:\n%s", out)
					}
				}
			}
			for _, dir := range []string{a.path, filepath.Join(a.host.Root, "sv-"+a.name)} {
				if f := fileContaining(t, dir, password, wrong); f != "" {
					t.Errorf("the supervisord password is in %s", f)
				}
			}
		})
	}
}

// fileContaining returns the first regular file under root that contains one of needles, or "".
func fileContaining(t *testing.T, root string, needles ...string) string {
	t.Helper()
	found := ""
	err := filepath.WalkDir(root, func(p string, d fs.DirEntry, err error) error {
		if err != nil || found != "" || !d.Type().IsRegular() {
			return err
		}
		data, err := os.ReadFile(p)
		if err != nil {
			return err
		}
		for _, n := range needles {
			if strings.Contains(string(data), n) {
				found = p
			}
		}
		return nil
	})
	if err != nil && !os.IsNotExist(err) {
		t.Fatal(err)
	}
	return found
}
